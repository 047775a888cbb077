#pragma once
// Why a TLS handshake failed, as a small closed set with stable names (metric labels:
// needle_tls_handshake_failures_total{reason}, issue 18). Adding a reason means adding it here,
// to handshake_failure_name() and to kLastHandshakeFailure when it goes last.
#include <cstdint>
#include <string_view>

#include <openssl/ssl.h>

namespace needle::tls {

enum class HandshakeFailure : uint8_t {
  no_shared_cipher,        // no cipher suite or group in common
  unknown_sni,             // strict SNI refused the name, or the server refused ours
  bad_client_certificate,  // mTLS: none sent, or it did not verify (either side's view)
  plain_http_on_tls_port,  // the first bytes are an HTTP request line (nginx's 497)
  protocol_version,        // no TLS version in common (TLS 1.0/1.1 offered, or a 1.3 floor)
  verify_failed,           // client side: the server's chain or name did not verify
  other,
};
inline constexpr HandshakeFailure kLastHandshakeFailure = HandshakeFailure::other;

std::string_view handshake_failure_name(HandshakeFailure failure);

// True when `first_bytes` (the first bytes the client sent) start like an HTTP/1.x request line
// (RFC 9112 3: method SP) and not like a TLS record (content type 22, RFC 8446 5.1).
bool looks_like_plain_http(std::string_view first_bytes);

// The reason of one OpenSSL error code (ERR_get_error) as seen by a server or a client;
// `other` for codes with no reason of their own.
HandshakeFailure classify_error_code(unsigned long code, bool is_server);

// After a failed handshake on `ssl`: the notes the callbacks left, this thread's OpenSSL error
// queue (read and cleared) and the verification result. `first_bytes` are the first bytes read
// from the peer, when the caller kept them (the server side peeks them from the socket).
HandshakeFailure classify_handshake_failure(const SSL* ssl, std::string_view first_bytes);

}  // namespace needle::tls
