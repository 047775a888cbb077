#include "proxy/tunnel.h"

namespace needle::proxy {

std::string_view tunnel_closer_name(TunnelCloser closer) {
  switch (closer) {
    case TunnelCloser::client: return "client";
    case TunnelCloser::upstream: return "upstream";
    case TunnelCloser::idle_timeout: return "idle_timeout";
    case TunnelCloser::drain: return "drain";
  }
  return "unknown";
}

}  // namespace needle::proxy
