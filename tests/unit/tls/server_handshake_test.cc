// Server-side handshakes driven in memory: versions, SNI selection, ALPN, ciphers, mTLS, and
// the reason each refused handshake is counted under.
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

// A raw client context, for what ClientTlsContext will not do (old versions, odd ciphers).
SslCtxPtr raw_client(int min_version, int max_version, const char* ciphers) {
  SslCtxPtr ctx(SSL_CTX_new(TLS_client_method()));
  SSL_CTX_set_security_level(ctx.get(), 0);  // let OpenSSL offer TLS 1.0/1.1 at all
  SSL_CTX_set_min_proto_version(ctx.get(), min_version);
  SSL_CTX_set_max_proto_version(ctx.get(), max_version);
  if (ciphers != nullptr) SSL_CTX_set_cipher_list(ctx.get(), ciphers);
  return ctx;
}

SslPtr raw_ssl(const SslCtxPtr& ctx, const char* sni) {
  SslPtr ssl(SSL_new(ctx.get()));
  if (sni != nullptr) SSL_set_tlsext_host_name(ssl.get(), sni);
  SSL_set_connect_state(ssl.get());
  return ssl;
}

class ServerHandshake : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = make_server(three_certificate_settings());
    client_ = make_client(trusting_client_settings());
    ASSERT_TRUE(server_ && client_);
  }
  MemoryHandshake connect(std::string_view host) {
    return MemoryHandshake(client_->new_ssl(host, nullptr), server_->new_ssl());
  }
  std::unique_ptr<ServerTlsContext> server_;
  std::unique_ptr<ClientTlsContext> client_;
};

TEST_F(ServerHandshake, Tls13ByDefaultWithAlpn) {
  MemoryHandshake handshake = connect("api.example.com");
  ASSERT_TRUE(handshake.run());
  EXPECT_EQ(SSL_version(handshake.server()), TLS1_3_VERSION);
  EXPECT_EQ(handshake.alpn(), "");  // the client offered none
  EXPECT_TRUE(handshake.exchange_data());
}

TEST_F(ServerHandshake, Tls12WhenTheClientStopsThere) {
  ClientTlsSettings settings = trusting_client_settings();
  settings.alpn = {"h2", "http/1.1"};
  auto client = make_client(settings);
  SslPtr ssl = client->new_ssl("api.example.com", nullptr);
  SSL_set_max_proto_version(ssl.get(), TLS1_2_VERSION);
  MemoryHandshake handshake(std::move(ssl), server_->new_ssl());
  ASSERT_TRUE(handshake.run());
  EXPECT_EQ(SSL_version(handshake.server()), TLS1_2_VERSION);
  EXPECT_EQ(handshake.alpn(), "http/1.1");  // the server's only protocol
  EXPECT_TRUE(handshake.exchange_data());
}

TEST_F(ServerHandshake, AlpnWithNothingInCommonIsRefused) {
  ClientTlsSettings settings = trusting_client_settings();
  settings.alpn = {"h2"};
  auto client = make_client(settings);
  MemoryHandshake handshake(client->new_ssl("api.example.com", nullptr), server_->new_ssl());
  EXPECT_FALSE(handshake.run());
  EXPECT_TRUE(handshake.server_outcome().failed);
}

TEST_F(ServerHandshake, SniPicksTheExactCertificate) {
  MemoryHandshake handshake = connect("api.example.com");
  ASSERT_TRUE(handshake.run());  // the client verified api.example.com against it
  EXPECT_EQ(handshake.served_names(), "api.example.com");
}

TEST_F(ServerHandshake, SniPicksTheWildcardForOneLabel) {
  MemoryHandshake handshake = connect("www.example.com");
  ASSERT_TRUE(handshake.run());
  EXPECT_EQ(handshake.served_names(), "*.example.com");
}

TEST_F(ServerHandshake, UnknownNameGetsTheDefault) {
  // Two labels under the wildcard: no certificate matches, so the default is served, and
  // a verifying client refuses it.
  MemoryHandshake handshake = connect("a.b.example.com");
  EXPECT_FALSE(handshake.run());
  EXPECT_EQ(handshake.served_names(), "default.test");
  EXPECT_EQ(handshake.client_outcome().failure, HandshakeFailure::verify_failed);
  EXPECT_EQ(server_->unknown_sni_rejections(), 0u);
}

TEST_F(ServerHandshake, NoSniGetsTheDefault) {
  SslCtxPtr ctx = raw_client(TLS1_2_VERSION, TLS1_3_VERSION, nullptr);
  MemoryHandshake handshake(raw_ssl(ctx, nullptr), server_->new_ssl());
  ASSERT_TRUE(handshake.run());
  EXPECT_EQ(handshake.served_names(), "default.test");
}

TEST_F(ServerHandshake, ExactNameWinsOverAnEarlierWildcard) {
  const TestPki& pki = TestPki::get();
  ServerTlsSettings settings;
  settings.certificates = {{pki.default_cert(), pki.default_key()},
                           {pki.wildcard_cert(), pki.wildcard_key()},
                           {pki.api_cert(), pki.api_key()}};
  auto server = make_server(settings);
  EXPECT_EQ(server->select_certificate("api.example.com"), 2u);
  EXPECT_EQ(server->select_certificate("API.example.com"), 2u);
  EXPECT_EQ(server->select_certificate("web.example.com"), 1u);
  EXPECT_EQ(server->select_certificate("default.test"), 0u);
  EXPECT_EQ(server->select_certificate("example.com"), std::nullopt);
}

TEST(StrictSni, UnknownNameIsRefusedAndCounted) {
  ServerTlsSettings settings = three_certificate_settings();
  settings.strict_sni = true;
  auto server = make_server(settings);
  SslCtxPtr ctx = raw_client(TLS1_2_VERSION, TLS1_3_VERSION, nullptr);
  MemoryHandshake handshake(raw_ssl(ctx, "unknown.test"), server->new_ssl());
  EXPECT_FALSE(handshake.run());
  EXPECT_EQ(handshake.server_outcome().failure, HandshakeFailure::unknown_sni);
  EXPECT_EQ(handshake.client_outcome().failure, HandshakeFailure::unknown_sni);
  EXPECT_EQ(server->unknown_sni_rejections(), 1u);

  // A known name and no name at all still pass.
  MemoryHandshake known(raw_ssl(ctx, "www.example.com"), server->new_ssl());
  EXPECT_TRUE(known.run());
  MemoryHandshake nameless(raw_ssl(ctx, nullptr), server->new_ssl());
  EXPECT_TRUE(nameless.run());
  EXPECT_EQ(server->unknown_sni_rejections(), 1u);
}

// RFC 8996: TLS 1.0 and 1.1 are refused whatever the client's security level.
TEST_F(ServerHandshake, Tls10And11AreRefused) {
  for (int version : {TLS1_VERSION, TLS1_1_VERSION}) {
    SslCtxPtr ctx = raw_client(version, version, "DEFAULT:@SECLEVEL=0");
    MemoryHandshake handshake(raw_ssl(ctx, "api.example.com"), server_->new_ssl());
    EXPECT_FALSE(handshake.run());
    EXPECT_EQ(handshake.server_outcome().failure, HandshakeFailure::protocol_version) << version;
    EXPECT_EQ(handshake.client_outcome().failure, HandshakeFailure::protocol_version) << version;
  }
}

TEST(MinVersion, ThirteenRefusesATwelveOnlyClient) {
  ServerTlsSettings settings = three_certificate_settings();
  settings.min_version = TlsVersion::tls1_3;
  auto server = make_server(settings);
  SslCtxPtr ctx = raw_client(TLS1_2_VERSION, TLS1_2_VERSION, nullptr);
  MemoryHandshake handshake(raw_ssl(ctx, "api.example.com"), server->new_ssl());
  EXPECT_FALSE(handshake.run());
  EXPECT_EQ(handshake.server_outcome().failure, HandshakeFailure::protocol_version);
}

TEST_F(ServerHandshake, NoSharedCipher) {
  // An RSA key exchange cipher: not in the intermediate list (no forward secrecy).
  SslCtxPtr ctx = raw_client(TLS1_2_VERSION, TLS1_2_VERSION, "AES128-GCM-SHA256");
  MemoryHandshake handshake(raw_ssl(ctx, "api.example.com"), server_->new_ssl());
  EXPECT_FALSE(handshake.run());
  EXPECT_EQ(handshake.server_outcome().failure, HandshakeFailure::no_shared_cipher);
}

class MutualTls : public ::testing::Test {
 protected:
  void SetUp() override {
    ServerTlsSettings settings = three_certificate_settings();
    settings.client_ca = TestPki::get().ca();
    server_ = make_server(settings);
    ASSERT_TRUE(server_);
  }
  MemoryHandshake connect(const std::string& cert, const std::string& key) {
    ClientTlsSettings settings = trusting_client_settings();
    settings.cert = cert;
    settings.key = key;
    client_ = make_client(settings);
    return MemoryHandshake(client_->new_ssl("api.example.com", nullptr), server_->new_ssl());
  }
  std::unique_ptr<ServerTlsContext> server_;
  std::unique_ptr<ClientTlsContext> client_;
};

TEST_F(MutualTls, ClientCertificateSignedByTheCaIsAccepted) {
  const TestPki& pki = TestPki::get();
  MemoryHandshake handshake = connect(pki.client_cert(), pki.client_key());
  ASSERT_TRUE(handshake.run());
  ASSERT_TRUE(handshake.exchange_data());
  X509* peer = SSL_get0_peer_certificate(handshake.server());
  ASSERT_NE(peer, nullptr);
  EXPECT_EQ(san_dns_names(peer), std::vector<std::string>{"client.test"});
  EXPECT_EQ(SSL_get_verify_result(handshake.server()), X509_V_OK);
}

TEST_F(MutualTls, NoClientCertificateIsRefused) {
  MemoryHandshake handshake = connect("", "");
  EXPECT_FALSE(handshake.run());
  EXPECT_EQ(handshake.server_outcome().failure, HandshakeFailure::bad_client_certificate);
}

TEST_F(MutualTls, ClientCertificateFromAnotherCaIsRefused) {
  const TestPki& pki = TestPki::get();
  MemoryHandshake handshake = connect(pki.rogue_client_cert(), pki.rogue_client_key());
  EXPECT_FALSE(handshake.run());
  EXPECT_EQ(handshake.server_outcome().failure, HandshakeFailure::bad_client_certificate);
}

TEST_F(MutualTls, TheClientSeesItsCertificateRefusedOverTls12) {
  const TestPki& pki = TestPki::get();
  ClientTlsSettings settings = trusting_client_settings();
  settings.cert = pki.rogue_client_cert();
  settings.key = pki.rogue_client_key();
  client_ = make_client(settings);
  SslPtr ssl = client_->new_ssl("api.example.com", nullptr);
  SSL_set_max_proto_version(ssl.get(), TLS1_2_VERSION);  // 1.3 clients finish before the alert
  MemoryHandshake handshake(std::move(ssl), server_->new_ssl());
  EXPECT_FALSE(handshake.run());
  EXPECT_EQ(handshake.client_outcome().failure, HandshakeFailure::bad_client_certificate);
}

}  // namespace
}  // namespace needle::tls
