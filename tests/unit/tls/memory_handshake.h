#pragma once
// Drives a client SSL and a server SSL against each other in memory (a BIO pair), without
// sockets: each side steps until both finished or failed, and a side that fails is classified
// at once (OpenSSL's error queue is per thread, shared by both sides here).
#include <openssl/err.h>

#include <string>

#include "tls/certificate.h"
#include "tls/handshake_failure.h"
#include "tls/openssl_handles.h"

namespace needle::tls::testing {

struct SideOutcome {
  bool done = false;
  bool failed = false;
  HandshakeFailure failure = HandshakeFailure::other;
};

class MemoryHandshake {
 public:
  MemoryHandshake(SslPtr client, SslPtr server);

  // True when both sides completed. Bounded: stops when neither side can make progress.
  bool run();
  // Sends one message each way, so post-handshake messages (TLS 1.3 tickets) are processed.
  bool exchange_data();
  // Sends close_notify both ways. A client SSL freed without having sent one marks its session
  // not resumable (OpenSSL's guard against truncation), so a test that resumes closes first.
  void close();

  SSL* client() const { return client_.get(); }
  SSL* server() const { return server_.get(); }
  const SideOutcome& client_outcome() const { return client_outcome_; }
  const SideOutcome& server_outcome() const { return server_outcome_; }
  // The negotiated ALPN protocol ("" when none).
  std::string alpn() const;
  // The DNS names of the certificate the server holds after the SNI callback.
  std::string served_names() const;

 private:
  SslPtr client_;
  SslPtr server_;
  SideOutcome client_outcome_;
  SideOutcome server_outcome_;
};

// A server SSL fed `bytes` as the client's first flight (and nothing else). Returns the
// classification of the failed handshake with `first_bytes` given to the classifier.
HandshakeFailure handshake_on_bytes(SslPtr server, const std::string& bytes,
                                    const std::string& first_bytes);

namespace detail {

// One handshake step of one side; false when it made no progress (waiting on the other side).
inline bool step(SSL* ssl, SideOutcome& outcome) {
  if (outcome.done || outcome.failed) return false;
  ERR_clear_error();
  const int rc = SSL_do_handshake(ssl);
  if (rc == 1) {
    outcome.done = true;
    return true;
  }
  const int error = SSL_get_error(ssl, rc);
  if (error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE) return false;
  outcome.failed = true;
  outcome.failure = classify_handshake_failure(ssl, {});
  return true;
}

// Any bytes waiting in either direction of the pair mean the other side can progress.
inline bool bytes_pending(SSL* ssl) {
  return BIO_ctrl_pending(SSL_get_wbio(ssl)) > 0;
}

}  // namespace detail

inline MemoryHandshake::MemoryHandshake(SslPtr client, SslPtr server)
    : client_(std::move(client)), server_(std::move(server)) {
  BIO* client_end = nullptr;
  BIO* server_end = nullptr;
  BIO_new_bio_pair(&client_end, 0, &server_end, 0);
  SSL_set_bio(client_.get(), client_end, client_end);
  SSL_set_bio(server_.get(), server_end, server_end);
}

inline bool MemoryHandshake::run() {
  for (int round = 0; round < 100; ++round) {
    const bool client_moved = detail::step(client_.get(), client_outcome_);
    const bool server_moved = detail::step(server_.get(), server_outcome_);
    const bool finished = (client_outcome_.done || client_outcome_.failed) &&
                          (server_outcome_.done || server_outcome_.failed);
    if (finished) break;
    if (!client_moved && !server_moved && !detail::bytes_pending(client_.get()) &&
        !detail::bytes_pending(server_.get())) {
      break;
    }
  }
  return client_outcome_.done && server_outcome_.done;
}

inline bool MemoryHandshake::exchange_data() {
  char buffer[16];
  if (SSL_write(client_.get(), "ping", 4) != 4) return false;
  if (SSL_read(server_.get(), buffer, sizeof buffer) != 4) return false;
  if (SSL_write(server_.get(), "pong", 4) != 4) return false;
  return SSL_read(client_.get(), buffer, sizeof buffer) == 4;
}

inline void MemoryHandshake::close() {
  SSL_shutdown(client_.get());
  SSL_shutdown(server_.get());
  SSL_shutdown(client_.get());
}

inline std::string MemoryHandshake::alpn() const {
  const unsigned char* data = nullptr;
  unsigned int length = 0;
  SSL_get0_alpn_selected(client_.get(), &data, &length);
  return std::string(reinterpret_cast<const char*>(data), length);
}

inline std::string MemoryHandshake::served_names() const {
  X509* cert = SSL_get_certificate(server_.get());
  if (cert == nullptr) return "";
  std::string joined;
  for (const std::string& name : san_dns_names(cert)) {
    joined += joined.empty() ? name : "," + name;
  }
  return joined;
}

inline HandshakeFailure handshake_on_bytes(SslPtr server, const std::string& bytes,
                                           const std::string& first_bytes) {
  BIO* in = BIO_new(BIO_s_mem());
  BIO* out = BIO_new(BIO_s_mem());
  BIO_write(in, bytes.data(), static_cast<int>(bytes.size()));
  SSL_set_bio(server.get(), in, out);
  ERR_clear_error();
  const int rc = SSL_do_handshake(server.get());
  if (rc == 1) return HandshakeFailure::other;
  return classify_handshake_failure(server.get(), first_bytes);
}

}  // namespace needle::tls::testing
