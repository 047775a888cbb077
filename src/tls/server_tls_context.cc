#include "tls/server_tls_context.h"

#include <openssl/err.h>

#include <chrono>

#include "tls/context_options.h"
#include "tls/dns_name_match.h"
#include "tls/ssl_ex_data.h"

namespace needle::tls {
namespace {

// Sessions resume only into a context with the same id (RFC 5246 7.4.1.2 session_id scope);
// every certificate's SSL_CTX uses this one, so SNI switching keeps resumption working.
constexpr unsigned char kSessionIdContext[] = "needle-server";

ServerTlsContext* owner_of(SSL* ssl) {
  return static_cast<ServerTlsContext*>(
      SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), server_context_ex_index()));
}

}  // namespace

ServerTlsContext::Created ServerTlsContext::create(const ServerTlsSettings& settings,
                                                   std::shared_ptr<TicketKeyRing> tickets,
                                                   WallTime now) {
  Created created;
  if (settings.certificates.empty()) {
    created.errors.push_back({"", "certificates", "at least one {cert, key} is required"});
  }
  if (!settings.client_ca.empty()) {
    if (auto error = check_ca_file(settings.client_ca)) created.errors.push_back(*error);
  }
  if (!alpn_wire_format(settings.alpn)) {
    created.errors.push_back({"", "alpn", "each protocol name must be 1 to 255 bytes"});
  }
  std::vector<LoadedCertificate> loaded;
  for (size_t i = 0; i < settings.certificates.size(); ++i) {
    auto result = load_certificate(settings.certificates[i], now);
    if (auto* error = std::get_if<TlsError>(&result)) {
      created.errors.push_back(*error);
      continue;
    }
    auto& certificate = std::get<LoadedCertificate>(result);
    if (i > 0 && certificate.dns_names.empty()) {  // only the default is served without a name
      created.errors.push_back(
          {certificate.cert_file, "", "no DNS name in subjectAltName: SNI can never select it"});
      continue;
    }
    loaded.push_back(std::move(certificate));
  }
  if (!created.errors.empty()) return created;

  std::unique_ptr<ServerTlsContext> context(new ServerTlsContext(settings, std::move(tickets)));
  for (LoadedCertificate& certificate : loaded) {
    if (auto error = context->add_certificate(std::move(certificate), settings.client_ca)) {
      created.errors.push_back(*error);
      return created;
    }
  }
  created.context = std::move(context);
  return created;
}

ServerTlsContext::ServerTlsContext(const ServerTlsSettings& settings,
                                   std::shared_ptr<TicketKeyRing> tickets)
    : settings_(settings), tickets_(std::move(tickets)) {}

ServerTlsContext::~ServerTlsContext() = default;

std::optional<TlsError> ServerTlsContext::add_certificate(LoadedCertificate certificate,
                                                          const std::string& client_ca) {
  SslCtxPtr ctx(SSL_CTX_new(TLS_server_method()));
  if (!ctx) return TlsError{"", "", "SSL_CTX_new failed: " + drain_openssl_errors()};
  if (auto error = configure(ctx.get(), client_ca)) return error;
  if (SSL_CTX_use_cert_and_key(ctx.get(), certificate.leaf.get(), certificate.key.get(),
                               certificate.chain.get(), 1) != 1) {
    return TlsError{certificate.cert_file, "",
                    "OpenSSL refused the certificate: " + drain_openssl_errors()};
  }
  certificates_.push_back(CertificateInfo{certificate.cert_file, std::move(certificate.dns_names),
                                          certificate.not_after});
  contexts_.push_back(std::move(ctx));
  return std::nullopt;
}

std::optional<TlsError> ServerTlsContext::configure(SSL_CTX* ctx, const std::string& client_ca) {
  if (auto error = apply_protocol_options(ctx, settings_.min_version, settings_.ciphers,
                                          settings_.ciphersuites)) {
    return error;
  }
  SSL_CTX_set_dh_auto(ctx, 1);  // DHE suites of the intermediate list (RFC 7919 groups)
  SSL_CTX_set_ex_data(ctx, server_context_ex_index(), this);
  SSL_CTX_set_session_id_context(ctx, kSessionIdContext, sizeof kSessionIdContext - 1);
  // Resumption is stateless only: a per-worker session cache would resume on one worker alone.
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  if (tickets_) {
    const auto lifetime =
        std::chrono::duration_cast<std::chrono::seconds>(tickets_->ticket_lifetime());
    SSL_CTX_set_timeout(ctx, static_cast<long>(lifetime.count()));
    SSL_CTX_set_num_tickets(ctx, 1);  // one connection, one resumption (RFC 8446 C.4)
    SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, &ServerTlsContext::on_ticket_key);
  } else {
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    SSL_CTX_set_num_tickets(ctx, 0);
  }
  if (!client_ca.empty()) {
    if (SSL_CTX_load_verify_file(ctx, client_ca.c_str()) != 1) {
      return TlsError{client_ca, "", "cannot load the client CA: " + drain_openssl_errors()};
    }
    STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(client_ca.c_str());
    if (names == nullptr) {
      return TlsError{client_ca, "", "no CA name in the client CA file"};
    }
    SSL_CTX_set_client_CA_list(ctx, names);  // takes ownership
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  }
  SSL_CTX_set_tlsext_servername_callback(ctx, &ServerTlsContext::on_server_name);
  SSL_CTX_set_tlsext_servername_arg(ctx, this);
  if (!settings_.alpn.empty()) SSL_CTX_set_alpn_select_cb(ctx, &ServerTlsContext::on_alpn, this);
  ERR_clear_error();
  return std::nullopt;
}

SslPtr ServerTlsContext::new_ssl() const {
  SslPtr ssl(SSL_new(contexts_.front().get()));
  if (ssl) SSL_set_accept_state(ssl.get());
  return ssl;
}

std::optional<size_t> ServerTlsContext::select_certificate(std::string_view server_name) const {
  for (size_t i = 0; i < certificates_.size(); ++i) {
    for (const std::string& name : certificates_[i].dns_names) {
      if (!name.starts_with("*.") && dns_name_matches(name, server_name)) return i;
    }
  }
  for (size_t i = 0; i < certificates_.size(); ++i) {
    for (const std::string& name : certificates_[i].dns_names) {
      if (name.starts_with("*.") && dns_name_matches(name, server_name)) return i;
    }
  }
  return std::nullopt;
}

// RFC 6066 3: no SNI, or a name with no certificate, gets the default; strict refuses the
// latter with unrecognized_name. A client that sends no SNI (an IP address, an old client)
// always gets the default.
int ServerTlsContext::on_server_name(SSL* ssl, int* alert, void* arg) {
  auto* self = static_cast<ServerTlsContext*>(arg);
  const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  if (name == nullptr) return SSL_TLSEXT_ERR_OK;
  std::optional<size_t> index = self->select_certificate(name);
  if (!index) {
    if (!self->settings_.strict_sni) return SSL_TLSEXT_ERR_OK;
    self->unknown_sni_rejections_.fetch_add(1, std::memory_order_relaxed);
    add_handshake_note(ssl, kNoteUnknownSniRejected);
    *alert = SSL_AD_UNRECOGNIZED_NAME;
    return SSL_TLSEXT_ERR_ALERT_FATAL;
  }
  if (*index != 0 && SSL_set_SSL_CTX(ssl, self->contexts_[*index].get()) == nullptr) {
    *alert = SSL_AD_INTERNAL_ERROR;
    return SSL_TLSEXT_ERR_ALERT_FATAL;
  }
  return SSL_TLSEXT_ERR_OK;
}

// Server preference order. RFC 7301 3.2: no protocol in common is a fatal
// no_application_protocol alert.
int ServerTlsContext::on_alpn(SSL* ssl, const unsigned char** out, unsigned char* out_length,
                              const unsigned char* in, unsigned int in_length, void* arg) {
  auto* self = static_cast<ServerTlsContext*>(arg);
  for (const std::string& ours : self->settings_.alpn) {
    for (unsigned int at = 0; at < in_length;) {
      const unsigned int length = in[at];
      if (at + 1 + length > in_length) break;  // malformed list: OpenSSL checked; be safe
      const std::string_view theirs(reinterpret_cast<const char*>(in + at + 1), length);
      if (theirs == ours) {
        *out = in + at + 1;
        *out_length = static_cast<unsigned char>(length);
        return SSL_TLSEXT_ERR_OK;
      }
      at += 1 + length;
    }
  }
  return SSL_TLSEXT_ERR_ALERT_FATAL;
}

int ServerTlsContext::on_ticket_key(SSL* ssl, unsigned char name[16],
                                    unsigned char iv[EVP_MAX_IV_LENGTH], EVP_CIPHER_CTX* cipher,
                                    EVP_MAC_CTX* mac, int enc) {
  ServerTlsContext* self = owner_of(ssl);
  if (self == nullptr || !self->tickets_) return 0;
  const int result = self->tickets_->on_ticket_key(name, iv, cipher, mac, enc);
  // TLS 1.3 tickets are single use (RFC 8446 C.4): a resumption gets a fresh one, which OpenSSL
  // sends only when the ticket is to be renewed.
  if (enc == 0 && result == 1 && SSL_version(ssl) >= TLS1_3_VERSION) return 2;
  return result;
}

}  // namespace needle::tls
