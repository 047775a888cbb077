#pragma once
// The downstream (client-facing) TLS context of one listener on one worker: its certificates
// chosen by SNI, protocol and cipher floor, ALPN, optional mTLS, and session resumption through
// a TicketKeyRing that the workers share (docs/decisions/0007-tls-contexts.md).
//
// One SSL_CTX per certificate, configured identically; a handshake starts on the first (the
// default) and the SNI callback moves it to the certificate the name selects (SSL_set_SSL_CTX),
// so a connection only ever holds the one certificate chosen for it. Immutable once built: a
// reload builds a new context and new connections use it, while existing ones keep the old.
#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tls/certificate.h"
#include "tls/openssl_handles.h"
#include "tls/ticket_key_ring.h"
#include "tls/tls_error.h"
#include "tls/tls_settings.h"

namespace needle::tls {

// What a metric or admin page needs about a served certificate.
struct CertificateInfo {
  std::string cert_file;
  std::vector<std::string> dns_names;
  WallTime not_after;  // needle_tls_certificate_expiry_seconds (issue 18)
};

class ServerTlsContext {
 public:
  struct Created {
    std::unique_ptr<ServerTlsContext> context;  // set iff errors is empty
    std::vector<TlsError> errors;               // every problem found, in settings order
  };

  // Loads and checks every file at `now`. `tickets` may be null: then no ticket is issued and
  // nothing resumes. The ring is shared (workers, reloads); the context keeps it alive.
  static Created create(const ServerTlsSettings& settings, std::shared_ptr<TicketKeyRing> tickets,
                        WallTime now = std::chrono::system_clock::now());
  ServerTlsContext(const ServerTlsContext&) = delete;  // the SSL_CTXs point back at it
  ServerTlsContext& operator=(const ServerTlsContext&) = delete;
  ~ServerTlsContext();

  // A server-side SSL in accept state on the default certificate; the caller sets its BIO or
  // hands it to a stream.
  SslPtr new_ssl() const;
  SSL_CTX* default_native_handle() const { return contexts_.front().get(); }

  // The certificate for an SNI name: exact names first, then wildcards, in settings order;
  // nullopt when none matches (the caller uses the default, or refuses when strict).
  std::optional<size_t> select_certificate(std::string_view server_name) const;
  const std::vector<CertificateInfo>& certificates() const { return certificates_; }
  // ClientHellos refused because strict SNI found no certificate for their name.
  uint64_t unknown_sni_rejections() const {
    return unknown_sni_rejections_.load(std::memory_order_relaxed);
  }

 private:
  ServerTlsContext(const ServerTlsSettings& settings, std::shared_ptr<TicketKeyRing> tickets);
  std::optional<TlsError> add_certificate(LoadedCertificate certificate, const std::string& ca);
  std::optional<TlsError> configure(SSL_CTX* ctx, const std::string& client_ca);

  static int on_server_name(SSL* ssl, int* alert, void* arg);
  static int on_alpn(SSL* ssl, const unsigned char** out, unsigned char* out_length,
                     const unsigned char* in, unsigned int in_length, void* arg);
  static int on_ticket_key(SSL* ssl, unsigned char name[16], unsigned char iv[EVP_MAX_IV_LENGTH],
                           EVP_CIPHER_CTX* cipher, EVP_MAC_CTX* mac, int enc);

  const ServerTlsSettings settings_;
  const std::shared_ptr<TicketKeyRing> tickets_;
  std::vector<SslCtxPtr> contexts_;  // one per certificate, same order; [0] is the default
  std::vector<CertificateInfo> certificates_;
  std::atomic<uint64_t> unknown_sni_rejections_{0};
};

}  // namespace needle::tls
