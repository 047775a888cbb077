#include "tls/tls_settings.h"

namespace needle::tls {

std::optional<TlsVersion> parse_tls_version(std::string_view text) {
  if (text == "1.2") return TlsVersion::tls1_2;
  if (text == "1.3") return TlsVersion::tls1_3;
  return std::nullopt;
}

}  // namespace needle::tls
