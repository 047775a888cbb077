#pragma once
// Contexts the tls tests build again and again, from the TestPki certificates.
#include <gtest/gtest.h>

#include <memory>

#include "test_pki.h"
#include "tls/client_tls_context.h"
#include "tls/server_tls_context.h"

namespace needle::tls::testing {

// default.test (the default), api.example.com, *.example.com.
inline ServerTlsSettings three_certificate_settings() {
  const TestPki& pki = TestPki::get();
  ServerTlsSettings settings;
  settings.certificates = {{pki.default_cert(), pki.default_key()},
                           {pki.api_cert(), pki.api_key()},
                           {pki.wildcard_cert(), pki.wildcard_key()}};
  return settings;
}

inline std::unique_ptr<ServerTlsContext> make_server(
    const ServerTlsSettings& settings, std::shared_ptr<TicketKeyRing> tickets = nullptr) {
  auto created = ServerTlsContext::create(settings, std::move(tickets));
  for (const TlsError& error : created.errors) ADD_FAILURE() << error.to_string();
  return std::move(created.context);
}

// Verifies against the test CA.
inline ClientTlsSettings trusting_client_settings() {
  ClientTlsSettings settings;
  settings.ca = TestPki::get().ca();
  return settings;
}

inline std::unique_ptr<ClientTlsContext> make_client(const ClientTlsSettings& settings) {
  auto created = ClientTlsContext::create(settings);
  for (const TlsError& error : created.errors) ADD_FAILURE() << error.to_string();
  return std::move(created.context);
}

}  // namespace needle::tls::testing
