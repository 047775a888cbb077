#include "net/stream.h"

#include <openssl/err.h>
#include <openssl/ssl.h>

namespace needle::net {

void SslFree::operator()(SSL* ssl) const {
  SSL_free(ssl);
}

Stream::Stream(Socket socket, SslHandle ssl) : socket_(std::move(socket)), ssl_(std::move(ssl)) {
  if (!ssl_) return;
  SSL_set_fd(ssl_.get(), static_cast<int>(socket_.native_handle()));
  // A retried write passes the same bytes from a scratch that may have moved (socket_io.cc).
  SSL_set_mode(ssl_.get(), SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  // A peer that closes without close_notify ends the stream like a FIN on plain TCP: HTTP
  // framing, not TLS, tells a complete message from a truncated one (RFC 9112 8).
  SSL_set_options(ssl_.get(), SSL_OP_IGNORE_UNEXPECTED_EOF);
}

bool Stream::has_buffered_input() const {
  return ssl_ != nullptr && (SSL_has_pending(ssl_.get()) != 0);
}

TlsSessionFacts Stream::tls_facts() const {
  TlsSessionFacts facts;
  if (!ssl_) return facts;
  facts.version = SSL_get_version(ssl_.get());
  if (const char* cipher = SSL_get_cipher_name(ssl_.get())) facts.cipher = cipher;
  if (const char* name = SSL_get_servername(ssl_.get(), TLSEXT_NAMETYPE_host_name)) {
    facts.sni = name;
  }
  facts.resumed = SSL_session_reused(ssl_.get()) == 1;
  return facts;
}

void Stream::shutdown(asio::socket_base::shutdown_type what, std::error_code& ec) {
  if (ssl_ && socket_.is_open() && SSL_is_init_finished(ssl_.get()) &&
      (SSL_get_shutdown(ssl_.get()) & SSL_SENT_SHUTDOWN) == 0) {
    // Best effort, never waits: a full send buffer drops the alert, as a plain close would.
    (void)SSL_shutdown(ssl_.get());
    ERR_clear_error();
  }
  socket_.shutdown(what, ec);
}

}  // namespace needle::net
