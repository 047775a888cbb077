#pragma once
// The upstream-side TLS context of one cluster on one worker: verification (chain against `ca`
// or the system store, and the host name: RFC 6125 through SSL_set1_host), SNI, optional client
// certificate, and resumption through each host's ClientSessionSlot.
#include <memory>
#include <string_view>
#include <vector>

#include "tls/certificate.h"
#include "tls/client_session_slot.h"
#include "tls/openssl_handles.h"
#include "tls/tls_error.h"
#include "tls/tls_settings.h"

namespace needle::tls {

class ClientTlsContext {
 public:
  struct Created {
    std::unique_ptr<ClientTlsContext> context;  // set iff errors is empty
    std::vector<TlsError> errors;
  };

  static Created create(const ClientTlsSettings& settings,
                        WallTime now = std::chrono::system_clock::now());
  ClientTlsContext(const ClientTlsContext&) = delete;
  ClientTlsContext& operator=(const ClientTlsContext&) = delete;

  // A client SSL in connect state for `host` (the name or address connected to; an IPv6
  // literal with or without brackets). The name sent as SNI and verified is settings.sni when
  // set, else `host`; an IP address is verified against the SAN iPAddress entries and sent
  // without SNI (RFC 6066 3). `slot` (may be null) must outlive the SSL.
  SslPtr new_ssl(std::string_view host, ClientSessionSlot* slot) const;
  SSL_CTX* native_handle() const { return ctx_.get(); }
  bool verifies() const { return settings_.verify; }

 private:
  explicit ClientTlsContext(const ClientTlsSettings& settings) : settings_(settings) {}
  std::optional<TlsError> configure(const LoadedCertificate* client_certificate);
  static int on_new_session(SSL* ssl, SSL_SESSION* session);
  static void on_info(const SSL* ssl, int where, int ret);

  const ClientTlsSettings settings_;
  SslCtxPtr ctx_;
};

}  // namespace needle::tls
