#include "tls/handshake_failure.h"

#include <openssl/err.h>
#include <openssl/x509_vfy.h>

#include "tls/ssl_ex_data.h"

namespace needle::tls {

std::string_view handshake_failure_name(HandshakeFailure failure) {
  switch (failure) {
    case HandshakeFailure::no_shared_cipher:
      return "no_shared_cipher";
    case HandshakeFailure::unknown_sni:
      return "unknown_sni";
    case HandshakeFailure::bad_client_certificate:
      return "bad_client_certificate";
    case HandshakeFailure::plain_http_on_tls_port:
      return "plain_http_on_tls_port";
    case HandshakeFailure::protocol_version:
      return "protocol_version";
    case HandshakeFailure::verify_failed:
      return "verify_failed";
    case HandshakeFailure::other:
      return "other";
  }
  return "other";
}

bool looks_like_plain_http(std::string_view first_bytes) {
  // A method is a token (RFC 9110 9.1); the registered ones are upper-case letters and '-'.
  size_t length = 0;
  while (length < first_bytes.size() && length <= 20) {
    const char c = first_bytes[length];
    if (c == ' ') return length > 0;
    if (!((c >= 'A' && c <= 'Z') || c == '-')) return false;
    ++length;
  }
  return false;
}

HandshakeFailure classify_error_code(unsigned long code, bool is_server) {
  if (ERR_GET_LIB(code) != ERR_LIB_SSL) return HandshakeFailure::other;
  switch (ERR_GET_REASON(code)) {
    case SSL_R_HTTP_REQUEST:
    case SSL_R_HTTPS_PROXY_REQUEST:
      return HandshakeFailure::plain_http_on_tls_port;
    case SSL_R_NO_SHARED_CIPHER:
    case SSL_R_NO_SHARED_GROUPS:
    case SSL_R_NO_SUITABLE_SIGNATURE_ALGORITHM:
    case SSL_R_NO_CIPHERS_AVAILABLE:
      return HandshakeFailure::no_shared_cipher;
    case SSL_R_UNSUPPORTED_PROTOCOL:
    case SSL_R_VERSION_TOO_LOW:
    case SSL_R_VERSION_TOO_HIGH:
    case SSL_R_NO_PROTOCOLS_AVAILABLE:
    case SSL_R_TLSV1_ALERT_PROTOCOL_VERSION:
      return HandshakeFailure::protocol_version;
    case SSL_R_TLSV1_UNRECOGNIZED_NAME:
      return HandshakeFailure::unknown_sni;
    case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE:
    case SSL_R_NO_CERTIFICATES_RETURNED:
    case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED:
      return HandshakeFailure::bad_client_certificate;
    case SSL_R_CERTIFICATE_VERIFY_FAILED:
      // The side that verified: a server verifies client certificates.
      return is_server ? HandshakeFailure::bad_client_certificate : HandshakeFailure::verify_failed;
    case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
    case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN:
      // The peer refused our certificate: only a client has one the server checks.
      return is_server ? HandshakeFailure::other : HandshakeFailure::bad_client_certificate;
    default:
      return HandshakeFailure::other;
  }
}

HandshakeFailure classify_handshake_failure(const SSL* ssl, std::string_view first_bytes) {
  const bool is_server = SSL_is_server(ssl) == 1;
  if (is_server && looks_like_plain_http(first_bytes)) {
    ERR_clear_error();
    return HandshakeFailure::plain_http_on_tls_port;
  }
  if (handshake_notes(ssl) & kNoteUnknownSniRejected) {
    ERR_clear_error();
    return HandshakeFailure::unknown_sni;
  }
  HandshakeFailure found = HandshakeFailure::other;
  while (unsigned long code = ERR_get_error()) {
    if (found != HandshakeFailure::other) continue;  // keep draining
    found = classify_error_code(code, is_server);
  }
  if (found == HandshakeFailure::other && !is_server && SSL_get_verify_result(ssl) != X509_V_OK) {
    return HandshakeFailure::verify_failed;
  }
  return found;
}

}  // namespace needle::tls
