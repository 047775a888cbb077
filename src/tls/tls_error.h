#pragma once
// A TLS set-up problem, named by the file it concerns and what is wrong with it. The config
// layer adds file:line:key of the setting that named the file (docs/architecture.md, src/tls/).
#include <string>

namespace needle::tls {

struct TlsError {
  std::string file;     // the certificate, key or CA file; empty for a setting (e.g. ciphers)
  std::string setting;  // the setting at fault when no file is: "ciphers", "min_version", ...
  std::string message;  // what is wrong: "private key does not match the certificate"
  std::string to_string() const;
};

}  // namespace needle::tls
