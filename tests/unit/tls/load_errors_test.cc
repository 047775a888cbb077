// Every bad file or setting is refused at load with an error naming the file (or setting) and
// what is wrong; nothing half-built comes out.
#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "tls_test_util.h"

namespace needle::tls {
namespace {

using namespace std::chrono_literals;
using testing::TestPki;

// The one error of building a server from `settings` at `now`.
std::string server_error(const ServerTlsSettings& settings,
                         WallTime now = std::chrono::system_clock::now()) {
  auto created = ServerTlsContext::create(settings, nullptr, now);
  EXPECT_FALSE(created.context);
  EXPECT_EQ(created.errors.size(), 1u);
  return created.errors.empty() ? "" : created.errors.front().to_string();
}

ServerTlsSettings one_certificate(const std::string& cert, const std::string& key) {
  ServerTlsSettings settings;
  settings.certificates = {{cert, key}};
  return settings;
}

TEST(TlsLoadErrors, GoodFilesLoadAndExposeTheirExpiry) {
  const TestPki& pki = TestPki::get();
  auto created = ServerTlsContext::create(testing::three_certificate_settings(), nullptr);
  ASSERT_TRUE(created.context);
  const auto& certificates = created.context->certificates();
  ASSERT_EQ(certificates.size(), 3u);
  EXPECT_EQ(certificates[1].cert_file, pki.api_cert());
  EXPECT_EQ(certificates[1].dns_names, std::vector<std::string>{"api.example.com"});
  // Made with -days 2 a moment ago.
  const auto left = certificates[0].not_after - std::chrono::system_clock::now();
  EXPECT_GT(left, 47h);
  EXPECT_LE(left, 48h);
}

TEST(TlsLoadErrors, UnreadableCertificateFile) {
  const TestPki& pki = TestPki::get();
  const std::string error = server_error(one_certificate(pki.missing(), pki.api_key()));
  EXPECT_EQ(error, pki.missing() + ": cannot read certificate file: No such file or directory");
}

TEST(TlsLoadErrors, UnreadableKeyFile) {
  const TestPki& pki = TestPki::get();
  const std::string error = server_error(one_certificate(pki.api_cert(), pki.missing()));
  EXPECT_EQ(error, pki.missing() + ": cannot read key file: No such file or directory");
}

TEST(TlsLoadErrors, CertificateFileThatIsNotPem) {
  const TestPki& pki = TestPki::get();
  const std::string error = server_error(one_certificate(pki.not_pem(), pki.api_key()));
  EXPECT_EQ(error, pki.not_pem() + ": no PEM certificate in the file");
}

TEST(TlsLoadErrors, KeyFileThatIsNotPemOrIsACertificate) {
  const TestPki& pki = TestPki::get();
  EXPECT_EQ(server_error(one_certificate(pki.api_cert(), pki.not_pem())),
            pki.not_pem() + ": no PEM private key in the file");
  EXPECT_EQ(server_error(one_certificate(pki.api_cert(), pki.api_cert())),
            pki.api_cert() + ": no PEM private key in the file");
}

TEST(TlsLoadErrors, KeyNotMatchingTheCertificate) {
  const TestPki& pki = TestPki::get();
  const std::string error = server_error(one_certificate(pki.api_cert(), pki.wildcard_key()));
  EXPECT_EQ(error,
            pki.wildcard_key() + ": private key does not match the certificate " + pki.api_cert());
}

TEST(TlsLoadErrors, ExpiredCertificate) {
  const TestPki& pki = TestPki::get();
  const std::string error = server_error(one_certificate(pki.expired_cert(), pki.expired_key()));
  EXPECT_TRUE(error.starts_with(pki.expired_cert() + ": certificate expired (notAfter 20"))
      << error;
}

TEST(TlsLoadErrors, CertificateNotYetValid) {
  const TestPki& pki = TestPki::get();
  const std::string error = server_error(one_certificate(pki.api_cert(), pki.api_key()),
                                         std::chrono::system_clock::now() - 24h);
  EXPECT_TRUE(error.starts_with(pki.api_cert() + ": certificate not yet valid (notBefore 20"))
      << error;
  EXPECT_EQ(server_error(one_certificate(pki.api_cert(), pki.api_key()),
                         std::chrono::system_clock::now() + 72h)
                .find(pki.api_cert() + ": certificate expired"),
            0u);
}

TEST(TlsLoadErrors, ClientCaThatIsMissingOrNotPem) {
  const TestPki& pki = TestPki::get();
  ServerTlsSettings settings = one_certificate(pki.api_cert(), pki.api_key());
  settings.client_ca = pki.not_pem();
  EXPECT_EQ(server_error(settings), pki.not_pem() + ": no PEM certificate in the CA file");
  settings.client_ca = pki.missing();
  EXPECT_EQ(server_error(settings),
            pki.missing() + ": cannot read CA file: No such file or directory");
}

TEST(TlsLoadErrors, SettingsWithoutAFileNameTheSetting) {
  const TestPki& pki = TestPki::get();
  EXPECT_EQ(server_error(ServerTlsSettings{}),
            "certificates: at least one {cert, key} is required");
  ServerTlsSettings settings = one_certificate(pki.api_cert(), pki.api_key());
  settings.ciphers = "NOT-A-CIPHER";
  EXPECT_EQ(server_error(settings), "ciphers: no usable TLS 1.2 cipher in \"NOT-A-CIPHER\"");
  settings = one_certificate(pki.api_cert(), pki.api_key());
  settings.ciphersuites = "TLS_NOT_A_SUITE";
  EXPECT_EQ(server_error(settings), "ciphersuites: no usable TLS 1.3 suite in \"TLS_NOT_A_SUITE\"");
  settings = one_certificate(pki.api_cert(), pki.api_key());
  settings.alpn = {"http/1.1", ""};
  EXPECT_EQ(server_error(settings), "alpn: each protocol name must be 1 to 255 bytes");
}

TEST(TlsLoadErrors, EveryBadCertificateIsReportedNotOnlyTheFirst) {
  const TestPki& pki = TestPki::get();
  ServerTlsSettings settings;
  settings.certificates = {{pki.expired_cert(), pki.expired_key()},
                           {pki.api_cert(), pki.api_key()},
                           {pki.not_pem(), pki.wildcard_key()}};
  auto created = ServerTlsContext::create(settings, nullptr);
  EXPECT_FALSE(created.context);
  ASSERT_EQ(created.errors.size(), 2u);
  EXPECT_EQ(created.errors[0].file, pki.expired_cert());
  EXPECT_EQ(created.errors[1].file, pki.not_pem());
}

TEST(TlsLoadErrors, ClientSideFilesAreCheckedToo) {
  const TestPki& pki = TestPki::get();
  ClientTlsSettings settings;
  settings.ca = pki.not_pem();
  settings.cert = pki.client_cert();
  settings.key = pki.api_key();
  auto created = ClientTlsContext::create(settings);
  EXPECT_FALSE(created.context);
  ASSERT_EQ(created.errors.size(), 2u);
  EXPECT_EQ(created.errors[0].to_string(), pki.not_pem() + ": no PEM certificate in the CA file");
  EXPECT_EQ(created.errors[1].to_string(),
            pki.api_key() + ": private key does not match the certificate " + pki.client_cert());
  settings = ClientTlsSettings{};
  settings.cert = pki.expired_cert();
  settings.key = pki.expired_key();
  created = ClientTlsContext::create(settings);
  ASSERT_EQ(created.errors.size(), 1u);
  EXPECT_TRUE(created.errors[0].message.starts_with("certificate expired"));
}

TEST(TlsVersionSetting, OnlyTwelveAndThirteen) {
  EXPECT_EQ(parse_tls_version("1.2"), TlsVersion::tls1_2);
  EXPECT_EQ(parse_tls_version("1.3"), TlsVersion::tls1_3);
  EXPECT_EQ(parse_tls_version("1.1"), std::nullopt);
  EXPECT_EQ(parse_tls_version("TLSv1.2"), std::nullopt);
}

}  // namespace
}  // namespace needle::tls
