#include "tls/context_options.h"

#include <openssl/err.h>

namespace needle::tls {

std::optional<TlsError> apply_protocol_options(SSL_CTX* ctx, TlsVersion min_version,
                                               const std::string& ciphers,
                                               const std::string& ciphersuites) {
  const int floor = min_version == TlsVersion::tls1_3 ? TLS1_3_VERSION : TLS1_2_VERSION;
  if (SSL_CTX_set_min_proto_version(ctx, floor) != 1) {
    return TlsError{"", "min_version", "rejected by OpenSSL: " + drain_openssl_errors()};
  }
  // Renegotiation is a DoS lever and HTTP/1.1 over TLS never needs it (RFC 9113 9.2.1 forbids it
  // for h2 for the same reasons); compression invites CRIME.
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
  if (SSL_CTX_set_cipher_list(ctx, ciphers.c_str()) != 1) {
    return TlsError{"", "ciphers", "no usable TLS 1.2 cipher in \"" + ciphers + "\""};
  }
  if (SSL_CTX_set_ciphersuites(ctx, ciphersuites.c_str()) != 1) {
    return TlsError{"", "ciphersuites", "no usable TLS 1.3 suite in \"" + ciphersuites + "\""};
  }
  ERR_clear_error();
  return std::nullopt;
}

std::optional<std::string> alpn_wire_format(const std::vector<std::string>& protocols) {
  std::string wire;
  for (const std::string& protocol : protocols) {
    if (protocol.empty() || protocol.size() > 255) return std::nullopt;
    wire.push_back(static_cast<char>(protocol.size()));
    wire += protocol;
  }
  return wire;
}

std::string drain_openssl_errors() {
  std::string text;
  while (unsigned long code = ERR_get_error()) {
    char line[256];
    ERR_error_string_n(code, line, sizeof line);
    if (!text.empty()) text += "; ";
    text += line;
  }
  return text;
}

}  // namespace needle::tls
