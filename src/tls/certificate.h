#pragma once
// Loading and checking one {cert, key} pair or a CA file. Every check that can be made before a
// handshake is made here, so a bad file is refused at load (and, on reload, the old context
// stays): unreadable, not PEM, key not matching the certificate, expired, not yet valid.
#include <chrono>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "tls/openssl_handles.h"
#include "tls/tls_error.h"
#include "tls/tls_settings.h"

namespace needle::tls {

using WallTime = std::chrono::system_clock::time_point;

struct LoadedCertificate {
  std::string cert_file;
  X509Ptr leaf;
  X509StackPtr chain;  // intermediates after the leaf (may be empty)
  EvpPkeyPtr key;
  std::vector<std::string> dns_names;  // SAN dNSName entries, lower case, as written
  WallTime not_before;
  WallTime not_after;
};

// Reads and checks the pair at `now`. Returns the error of the first check that fails.
std::variant<LoadedCertificate, TlsError> load_certificate(const CertificateFiles& files,
                                                           WallTime now);

// Checks that `path` is a readable PEM file holding at least one certificate (a CA bundle).
std::optional<TlsError> check_ca_file(const std::string& path);

// The SAN dNSName entries of `cert` (RFC 5280 4.2.1.6), lower-cased. The subject CN is not
// used (RFC 6125 6.4.4: only when there is no SAN; needle requires one).
std::vector<std::string> san_dns_names(X509* cert);

}  // namespace needle::tls
