#pragma once
// Session ticket keys shared by every worker's ServerTlsContext (docs/decisions/
// 0007-tls-contexts.md). A ticket sealed by one worker opens on any other, so a client resumes
// whichever worker accepts its next connection. The current key seals new tickets; the
// previous ones (up to `decrypt_only_keys`) still open tickets they sealed, which the server
// then renews under the current key. Rotation happens on a period, lazily when a ticket is
// sealed or opened, or explicitly (rotate()).
//
// Thread-safety: workers seal and open tickets concurrently (OpenSSL calls on_ticket_key from
// the handshake); a mutex guards the key list. It is taken once per full handshake or
// resumption, never per byte.
#include <array>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>

#include <openssl/evp.h>
#include <openssl/ssl.h>

#include "base/clock.h"

namespace needle::tls {

class TicketKeyRing {
 public:
  struct Key {
    std::array<unsigned char, 16> name;      // sent in clear in the ticket (RFC 5077 4)
    std::array<unsigned char, 32> aes_key;   // AES-256-CBC
    std::array<unsigned char, 32> hmac_key;  // HMAC-SHA256
  };

  // `clock` must outlive the ring. Keys are random (RAND_bytes) and never leave the process.
  TicketKeyRing(const Clock& clock, Duration rotation_period, size_t decrypt_only_keys);

  // A ticket opens for as long as its key is kept: the period times the number of keys.
  Duration ticket_lifetime() const;
  // Makes a new current key; the oldest beyond the kept ones is forgotten. False (keys kept as
  // they were) only when the random source fails.
  bool rotate();
  size_t rotations() const;

  // The SSL_CTX_set_tlsext_ticket_key_evp_cb contract: enc=1 seals (fills name and iv), enc=0
  // opens by name. Returns 1 (ok), 2 (ok, renew the ticket: it was sealed by an older key),
  // 0 (unknown key: full handshake), -1 (failure).
  int on_ticket_key(unsigned char name[16], unsigned char iv[EVP_MAX_IV_LENGTH],
                    EVP_CIPHER_CTX* cipher, EVP_MAC_CTX* mac, int enc);

 private:
  // Makes a new current key when the current one's period is over. Requires mutex_.
  void rotate_if_due_locked();
  bool push_new_key_locked();

  const Clock& clock_;
  const Duration rotation_period_;
  const size_t decrypt_only_keys_;
  mutable std::mutex mutex_;
  std::deque<Key> keys_;  // front is the current key; the rest only open tickets
  TimePoint current_since_;
  size_t rotations_ = 0;
};

}  // namespace needle::tls
