#pragma once
// The last resumable session of one upstream host, for one worker (issue 18: one cache per host
// per worker). The host's pool owns the slot; every TLS connection to the host offers the
// slot's session and the new tickets the host sends land back in it.
//
// TLS 1.3 tickets are used once (RFC 8446 C.4: reuse lets an observer link connections), so
// offering one takes it out; the host sends a fresh one on the new connection. A TLS 1.2
// session stays until replaced. Not thread-safe: one worker's.
#include "tls/openssl_handles.h"

namespace needle::tls {

class ClientSessionSlot {
 public:
  // Sets the slot's session on `ssl` (before its handshake) when it has a resumable one.
  void offer_to(SSL* ssl);
  // Takes ownership of a session the peer issued (a copy of the new-session callback's).
  void keep(SSL_SESSION* session);
  bool has_session() const { return session_ != nullptr; }
  void clear() { session_.reset(); }

 private:
  SslSessionPtr session_;
};

}  // namespace needle::tls
