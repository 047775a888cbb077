#include "tls/client_session_slot.h"

namespace needle::tls {

void ClientSessionSlot::offer_to(SSL* ssl) {
  if (!session_) return;
  if (SSL_SESSION_is_resumable(session_.get()) != 1) {
    session_.reset();
    return;
  }
  if (SSL_SESSION_get_protocol_version(session_.get()) >= TLS1_3_VERSION) {
    SSL_set_session(ssl, session_.get());  // takes its own reference
    session_.reset();
    return;
  }
  // TLS 1.2: the SSL gets a copy. OpenSSL marks the SSL's session not resumable when the SSL
  // is freed without having sent close_notify, or when the server renews the ticket; the
  // slot's own stays good.
  SslSessionPtr copy(SSL_SESSION_dup(session_.get()));
  if (copy) SSL_set_session(ssl, copy.get());
}

void ClientSessionSlot::keep(SSL_SESSION* session) {
  session_.reset(session);
}

}  // namespace needle::tls
