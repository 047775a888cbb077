#pragma once
// The tls layer's slots in OpenSSL's per-object extra data, allocated once per process.
// SSL_CTX: the owning ServerTlsContext (callbacks that have no user argument find it there).
// SSL: notes a callback leaves for the failure classifier, and the client's session slot.
#include <openssl/ssl.h>

namespace needle::tls {

int server_context_ex_index();  // SSL_CTX -> ServerTlsContext*
int handshake_note_ex_index();  // SSL -> HandshakeNote bits (stored as a pointer-sized integer)
int session_slot_ex_index();    // SSL -> ClientSessionSlot*

enum HandshakeNote : unsigned {
  kNoteUnknownSniRejected = 1u << 0,  // the strict SNI check refused the ClientHello
};

void add_handshake_note(SSL* ssl, HandshakeNote note);
unsigned handshake_notes(const SSL* ssl);

}  // namespace needle::tls
