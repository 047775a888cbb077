#include "tls/client_tls_context.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include <string>

#include "tls/context_options.h"
#include "tls/ssl_ex_data.h"

namespace needle::tls {
namespace {

bool is_ip_literal(const std::string& host) {
  unsigned char address[16];
  return inet_pton(AF_INET, host.c_str(), address) == 1 ||
         inet_pton(AF_INET6, host.c_str(), address) == 1;
}

std::string without_brackets(std::string_view host) {
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  return std::string(host);
}

}  // namespace

ClientTlsContext::Created ClientTlsContext::create(const ClientTlsSettings& settings,
                                                   WallTime now) {
  Created created;
  if (!settings.ca.empty()) {
    if (auto error = check_ca_file(settings.ca)) created.errors.push_back(*error);
  }
  if (!alpn_wire_format(settings.alpn)) {
    created.errors.push_back({"", "alpn", "each protocol name must be 1 to 255 bytes"});
  }
  std::optional<LoadedCertificate> client_certificate;
  if (!settings.cert.empty() || !settings.key.empty()) {
    auto result = load_certificate({settings.cert, settings.key}, now);
    if (auto* error = std::get_if<TlsError>(&result)) {
      created.errors.push_back(*error);
    } else {
      client_certificate = std::move(std::get<LoadedCertificate>(result));
    }
  }
  if (!created.errors.empty()) return created;

  std::unique_ptr<ClientTlsContext> context(new ClientTlsContext(settings));
  if (auto error = context->configure(client_certificate ? &*client_certificate : nullptr)) {
    created.errors.push_back(*error);
    return created;
  }
  created.context = std::move(context);
  return created;
}

std::optional<TlsError> ClientTlsContext::configure(const LoadedCertificate* client_certificate) {
  ctx_.reset(SSL_CTX_new(TLS_client_method()));
  if (!ctx_) return TlsError{"", "", "SSL_CTX_new failed: " + drain_openssl_errors()};
  SSL_CTX* ctx = ctx_.get();
  if (auto error = apply_protocol_options(ctx, settings_.min_version, settings_.ciphers,
                                          settings_.ciphersuites)) {
    return error;
  }
  if (settings_.verify) {
    const bool loaded = settings_.ca.empty()
                            ? SSL_CTX_set_default_verify_paths(ctx) == 1
                            : SSL_CTX_load_verify_file(ctx, settings_.ca.c_str()) == 1;
    if (!loaded) {
      return TlsError{settings_.ca, settings_.ca.empty() ? "ca" : "",
                      "cannot load the CA certificates: " + drain_openssl_errors()};
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  } else {
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
  }
  if (client_certificate != nullptr &&
      SSL_CTX_use_cert_and_key(ctx, client_certificate->leaf.get(), client_certificate->key.get(),
                               client_certificate->chain.get(), 1) != 1) {
    return TlsError{client_certificate->cert_file, "",
                    "OpenSSL refused the certificate: " + drain_openssl_errors()};
  }
  if (!settings_.alpn.empty()) {
    const std::string wire = *alpn_wire_format(settings_.alpn);
    if (SSL_CTX_set_alpn_protos(ctx, reinterpret_cast<const unsigned char*>(wire.data()),
                                static_cast<unsigned>(wire.size())) != 0) {
      return TlsError{"", "alpn", "rejected by OpenSSL: " + drain_openssl_errors()};
    }
  }
  // Sessions go to the host's slot only (no internal store, which would be shared by all hosts).
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
  SSL_CTX_sess_set_new_cb(ctx, &ClientTlsContext::on_new_session);
  SSL_CTX_set_info_callback(ctx, &ClientTlsContext::on_info);
  ERR_clear_error();
  return std::nullopt;
}

SslPtr ClientTlsContext::new_ssl(std::string_view host, ClientSessionSlot* slot) const {
  SslPtr ssl(SSL_new(ctx_.get()));
  if (!ssl) return ssl;
  const std::string name = settings_.sni.empty() ? without_brackets(host) : settings_.sni;
  const bool ip = is_ip_literal(name);
  bool ok = true;
  if (!ip) ok = SSL_set_tlsext_host_name(ssl.get(), name.c_str()) == 1;
  if (ok && settings_.verify) {
    ok = ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl.get()), name.c_str()) == 1
            : SSL_set1_host(ssl.get(), name.c_str()) == 1;
  }
  if (!ok) {
    ERR_clear_error();
    return SslPtr();
  }
  if (slot != nullptr) {
    SSL_set_ex_data(ssl.get(), session_slot_ex_index(), slot);
    slot->offer_to(ssl.get());
  }
  SSL_set_connect_state(ssl.get());
  return ssl;
}

// The slot keeps a copy: OpenSSL marks the SSL's own session not resumable when the SSL is
// freed without having sent close_notify (SSL_free -> SSL_CTX_remove_session), which an
// upstream connection closed by the pool or the peer usually is; the copy stays good. Returns
// 0: OpenSSL keeps (and frees) its own reference.
int ClientTlsContext::on_new_session(SSL* ssl, SSL_SESSION* session) {
  auto* slot = static_cast<ClientSessionSlot*>(SSL_get_ex_data(ssl, session_slot_ex_index()));
  if (slot == nullptr) return 0;
  if (SSL_SESSION* copy = SSL_SESSION_dup(session)) slot->keep(copy);
  return 0;
}

// A TLS 1.2 server may renew the ticket of a resumed session (RFC 5077 3.3); OpenSSL calls the
// new-session callback only after full handshakes, so the renewed session is taken here.
void ClientTlsContext::on_info(const SSL* ssl, int where, int ret) {
  if ((where & SSL_CB_HANDSHAKE_DONE) == 0 || SSL_version(ssl) >= TLS1_3_VERSION) return;
  if (SSL_session_reused(ssl) != 1) return;
  auto* slot = static_cast<ClientSessionSlot*>(SSL_get_ex_data(ssl, session_slot_ex_index()));
  SSL_SESSION* session = SSL_get0_session(ssl);
  if (slot == nullptr || session == nullptr) return;
  if (SSL_SESSION* copy = SSL_SESSION_dup(session)) slot->keep(copy);
}

}  // namespace needle::tls
