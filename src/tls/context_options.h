#pragma once
// Settings both sides apply the same way to an SSL_CTX: protocol floor, cipher lists, ALPN
// wire format. Errors name the setting.
#include <optional>
#include <string>
#include <vector>

#include "tls/openssl_handles.h"
#include "tls/tls_error.h"
#include "tls/tls_settings.h"

namespace needle::tls {

std::optional<TlsError> apply_protocol_options(SSL_CTX* ctx, TlsVersion min_version,
                                               const std::string& ciphers,
                                               const std::string& ciphersuites);

// RFC 7301 3.1 ProtocolNameList without its length: each name prefixed by its length byte.
// nullopt when a name is empty or longer than 255 bytes.
std::optional<std::string> alpn_wire_format(const std::vector<std::string>& protocols);

// The whole OpenSSL error queue of this thread as one line (and the queue cleared).
std::string drain_openssl_errors();

}  // namespace needle::tls
