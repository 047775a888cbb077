#include "proxy/real_ip.h"

namespace needle::proxy {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

std::string_view real_client_address(std::string_view peer_ip, bool peer_trusted,
                                     const http::HeaderList& headers,
                                     const config::CidrSet& trusted) {
  if (!peer_trusted || !headers.has(http::FieldId::x_forwarded_for)) return peer_ip;
  std::string_view client = peer_ip;
  const auto items = headers.items();
  // Field lines right to left, elements right to left (RFC 9110 5.3: the lines are one list).
  for (size_t line = items.size(); line-- > 0;) {
    if (items[line].id != http::FieldId::x_forwarded_for) continue;
    std::string_view list = items[line].value;
    while (!list.empty()) {
      const size_t comma = list.rfind(',');
      const std::string_view element =
          trim(comma == std::string_view::npos ? list : list.substr(comma + 1));
      list = comma == std::string_view::npos ? std::string_view() : list.substr(0, comma);
      if (element.empty()) continue;
      const auto address = config::parse_ip(element);
      if (!address) return client;  // not an address: keep the last hop walked
      client = element;
      if (!trusted.contains(*address)) return client;
    }
  }
  return client;
}

}  // namespace needle::proxy
