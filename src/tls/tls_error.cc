#include "tls/tls_error.h"

namespace needle::tls {

std::string TlsError::to_string() const {
  if (!file.empty()) return file + ": " + message;
  if (!setting.empty()) return setting + ": " + message;
  return message;
}

}  // namespace needle::tls
