#include "tls/ticket_key_ring.h"

#include <openssl/core_names.h>
#include <openssl/rand.h>

#include <algorithm>
#include <cstring>

namespace needle::tls {
namespace {

// Keys the cipher and the MAC; false on any OpenSSL failure.
bool init_ticket_crypto(const TicketKeyRing::Key& key, const unsigned char* iv,
                        EVP_CIPHER_CTX* cipher, EVP_MAC_CTX* mac, bool seal) {
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
      OSSL_PARAM_construct_end(),
  };
  if (EVP_MAC_init(mac, key.hmac_key.data(), key.hmac_key.size(), params) != 1) return false;
  int ok = seal ? EVP_EncryptInit_ex(cipher, EVP_aes_256_cbc(), nullptr, key.aes_key.data(), iv)
                : EVP_DecryptInit_ex(cipher, EVP_aes_256_cbc(), nullptr, key.aes_key.data(), iv);
  return ok == 1;
}

}  // namespace

TicketKeyRing::TicketKeyRing(const Clock& clock, Duration rotation_period, size_t decrypt_only_keys)
    : clock_(clock), rotation_period_(rotation_period), decrypt_only_keys_(decrypt_only_keys) {
  std::lock_guard lock(mutex_);
  push_new_key_locked();
}

Duration TicketKeyRing::ticket_lifetime() const {
  return rotation_period_ * static_cast<int64_t>(decrypt_only_keys_ + 1);
}

bool TicketKeyRing::rotate() {
  std::lock_guard lock(mutex_);
  if (!push_new_key_locked()) return false;
  ++rotations_;
  return true;
}

size_t TicketKeyRing::rotations() const {
  std::lock_guard lock(mutex_);
  return rotations_;
}

bool TicketKeyRing::push_new_key_locked() {
  Key key;
  // RAND_bytes fails only without an entropy source: then the ring keeps what it has (with no
  // key at all, no ticket is issued and every handshake is a full one).
  if (RAND_bytes(key.name.data(), key.name.size()) != 1 ||
      RAND_bytes(key.aes_key.data(), key.aes_key.size()) != 1 ||
      RAND_bytes(key.hmac_key.data(), key.hmac_key.size()) != 1) {
    return false;
  }
  keys_.push_front(key);
  while (keys_.size() > decrypt_only_keys_ + 1) keys_.pop_back();
  current_since_ = clock_.now();
  return true;
}

void TicketKeyRing::rotate_if_due_locked() {
  if (clock_.now() - current_since_ >= rotation_period_ && push_new_key_locked()) ++rotations_;
}

int TicketKeyRing::on_ticket_key(unsigned char name[16], unsigned char iv[EVP_MAX_IV_LENGTH],
                                 EVP_CIPHER_CTX* cipher, EVP_MAC_CTX* mac, int enc) {
  std::lock_guard lock(mutex_);
  rotate_if_due_locked();  // on opening too: a ticket of the expired key is then renewed
  if (enc == 1) {
    if (keys_.empty()) return 0;  // no ticket
    const Key* key = &keys_.front();
    const int iv_length = EVP_CIPHER_get_iv_length(EVP_aes_256_cbc());
    if (RAND_bytes(iv, iv_length) != 1) return -1;
    std::memcpy(name, key->name.data(), key->name.size());
    return init_ticket_crypto(*key, iv, cipher, mac, true) ? 1 : -1;
  }
  auto found = std::find_if(keys_.begin(), keys_.end(), [&](const Key& key) {
    return std::memcmp(key.name.data(), name, key.name.size()) == 0;
  });
  if (found == keys_.end()) return 0;
  if (!init_ticket_crypto(*found, iv, cipher, mac, false)) return -1;
  return found == keys_.begin() ? 1 : 2;
}

}  // namespace needle::tls
