// The upstream side: the server's chain and name are verified unless verify is off, and a
// failure is classified as verify_failed (the cause upstream_tls_verify_failed, issue 18).
#include <gtest/gtest.h>

#include "memory_handshake.h"
#include "tls_test_util.h"

namespace needle::tls {
namespace {

using testing::make_client;
using testing::make_server;
using testing::MemoryHandshake;
using testing::TestPki;
using testing::three_certificate_settings;
using testing::trusting_client_settings;

class ClientVerify : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = make_server(three_certificate_settings());
    ASSERT_TRUE(server_);
  }
  MemoryHandshake connect(const ClientTlsSettings& settings, std::string_view host) {
    client_ = make_client(settings);
    return MemoryHandshake(client_->new_ssl(host, nullptr), server_->new_ssl());
  }
  std::unique_ptr<ServerTlsContext> server_;
  std::unique_ptr<ClientTlsContext> client_;
};

TEST_F(ClientVerify, ChainAndNameVerify) {
  MemoryHandshake handshake = connect(trusting_client_settings(), "api.example.com");
  ASSERT_TRUE(handshake.run());
  EXPECT_EQ(SSL_get_verify_result(handshake.client()), X509_V_OK);
}

TEST_F(ClientVerify, UntrustedChainFails) {
  ClientTlsSettings settings;
  settings.ca = TestPki::get().rogue_ca();
  MemoryHandshake handshake = connect(settings, "api.example.com");
  EXPECT_FALSE(handshake.run());
  EXPECT_EQ(handshake.client_outcome().failure, HandshakeFailure::verify_failed);
}

TEST_F(ClientVerify, SystemStoreDoesNotTrustTheTestCa) {
  MemoryHandshake handshake = connect(ClientTlsSettings{}, "api.example.com");
  EXPECT_FALSE(handshake.run());
  EXPECT_EQ(handshake.client_outcome().failure, HandshakeFailure::verify_failed);
}

TEST_F(ClientVerify, WrongNameFails) {
  // The server has a certificate for default.test (served for this unknown name), but the
  // client connects as other.test.
  MemoryHandshake handshake = connect(trusting_client_settings(), "other.test");
  EXPECT_FALSE(handshake.run());
  EXPECT_EQ(handshake.client_outcome().failure, HandshakeFailure::verify_failed);
  EXPECT_EQ(SSL_get_verify_result(handshake.client()), X509_V_ERR_HOSTNAME_MISMATCH);
}

TEST_F(ClientVerify, SniSettingOverridesTheHostConnectedTo) {
  ClientTlsSettings settings = trusting_client_settings();
  settings.sni = "api.example.com";
  MemoryHandshake handshake = connect(settings, "10.0.0.7");
  ASSERT_TRUE(handshake.run());
  EXPECT_EQ(handshake.served_names(), "api.example.com");
}

TEST_F(ClientVerify, IpAddressIsVerifiedAgainstIpSansAndSendsNoSni) {
  // No certificate has an iPAddress SAN: the default is served (no SNI) and does not verify.
  MemoryHandshake handshake = connect(trusting_client_settings(), "[::1]");
  EXPECT_FALSE(handshake.run());
  EXPECT_EQ(SSL_get_servername(handshake.server(), TLSEXT_NAMETYPE_host_name), nullptr);
  EXPECT_EQ(handshake.client_outcome().failure, HandshakeFailure::verify_failed);
  EXPECT_EQ(SSL_get_verify_result(handshake.client()), X509_V_ERR_IP_ADDRESS_MISMATCH);
}

TEST_F(ClientVerify, VerifyOffAcceptsAnything) {
  ClientTlsSettings settings;
  settings.verify = false;
  settings.ca = TestPki::get().rogue_ca();
  MemoryHandshake handshake = connect(settings, "other.test");
  ASSERT_TRUE(handshake.run());
  EXPECT_FALSE(client_->verifies());
}

}  // namespace
}  // namespace needle::tls
