#include "tls/ssl_ex_data.h"

#include <cstdint>

namespace needle::tls {

// Function-local statics: initialised once, thread-safe (C++11 6.7), before any context exists.
int server_context_ex_index() {
  static const int index = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

int handshake_note_ex_index() {
  static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

int session_slot_ex_index() {
  static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

void add_handshake_note(SSL* ssl, HandshakeNote note) {
  const unsigned notes = handshake_notes(ssl) | note;
  SSL_set_ex_data(ssl, handshake_note_ex_index(),
                  reinterpret_cast<void*>(static_cast<uintptr_t>(notes)));
}

unsigned handshake_notes(const SSL* ssl) {
  return static_cast<unsigned>(
      reinterpret_cast<uintptr_t>(SSL_get_ex_data(ssl, handshake_note_ex_index())));
}

}  // namespace needle::tls
