// [listener.tls] and [cluster.NAME.tls] (src/config/tls_section.cc): the keys, their defaults,
// and every bad file refused with file:line:key. Certificates: tests/support/test_pki.h.
#include <gtest/gtest.h>

#include <string>

#include "config/config.h"
#include "support/test_pki.h"

namespace needle::config {
namespace {

using tls::testing::TestPki;

std::string with_tls(const std::string& listener_tls, const std::string& cluster_tls = {}) {
  return "[[listener]]\naddress = \"127.0.0.1:8443\"\n" + listener_tls +
         "\n[[route]]\ncluster = \"app\"\n[cluster.app]\nhosts = [\"127.0.0.1:3000\"]\n" +
         cluster_tls;
}

std::string pair(const std::string& cert, const std::string& key) {
  return "{ cert = \"" + cert + "\", key = \"" + key + "\" }";
}

TEST(TlsSection, ListenerKeysAndDefaults) {
  const auto& pki = TestPki::get();
  const auto result = parse_config(
      with_tls("[listener.tls]\ncertificates = [ " + pair(pki.default_cert(), pki.default_key()) +
               ", " + pair(pki.api_cert(), pki.api_key()) +
               " ]\nmin_version = \"1.3\"\nclient_ca = \"" + pki.ca() +
               "\"\nstrict_sni = true\nhandshake_timeout = \"3s\"\n"),
      "needle.toml");
  ASSERT_TRUE(result.config) << (result.errors.empty() ? "" : result.errors[0].to_string());
  const auto& tls = result.config->listeners[0].tls;
  ASSERT_TRUE(tls);
  EXPECT_EQ(tls->settings.certificates.size(), 2u);
  EXPECT_EQ(tls->settings.certificates[1].cert, pki.api_cert());
  EXPECT_EQ(tls->settings.min_version, tls::TlsVersion::tls1_3);
  EXPECT_EQ(tls->settings.client_ca, pki.ca());
  EXPECT_TRUE(tls->settings.strict_sni);
  EXPECT_EQ(tls->handshake_timeout, Millis(3000));
  EXPECT_EQ(tls->settings.alpn, std::vector<std::string>{"http/1.1"});
  EXPECT_FALSE(result.config->clusters[0].tls);
}

TEST(TlsSection, BadFilesAreRefusedWithFileLineAndKey) {
  const auto& pki = TestPki::get();
  const auto result = parse_config(
      with_tls("[listener.tls]\ncertificates = [\n  " + pair(pki.default_cert(), pki.api_key()) +
               ",\n  " + pair(pki.expired_cert(), pki.expired_key()) + ",\n  " +
               pair(pki.missing(), pki.default_key()) + " ]\n"),
      "needle.toml");
  ASSERT_FALSE(result.config);
  ASSERT_EQ(result.errors.size(), 3u);
  EXPECT_EQ(result.errors[0].key, "listener[0].tls.certificates[0].key");
  EXPECT_EQ(result.errors[0].line, 5);
  EXPECT_NE(result.errors[0].message.find("does not match"), std::string::npos)
      << result.errors[0].to_string();
  EXPECT_EQ(result.errors[1].key, "listener[0].tls.certificates[1].cert");
  EXPECT_EQ(result.errors[1].line, 6);
  EXPECT_NE(result.errors[1].message.find("expired"), std::string::npos)
      << result.errors[1].to_string();
  EXPECT_EQ(result.errors[2].key, "listener[0].tls.certificates[2].cert");
  EXPECT_EQ(result.errors[2].line, 7);
}

TEST(TlsSection, UnknownKeysAndBadValuesAreReported) {
  const auto& pki = TestPki::get();
  const auto result = parse_config(
      with_tls("[listener.tls]\ncertificates = [ " + pair(pki.default_cert(), pki.default_key()) +
               " ]\nmin_version = \"1.1\"\ncipher = \"x\"\n"),
      "needle.toml");
  ASSERT_FALSE(result.config);
  ASSERT_EQ(result.errors.size(), 2u);
  EXPECT_EQ(result.errors[0].key, "listener[0].tls.min_version");
  EXPECT_EQ(result.errors[1].key, "listener[0].tls.cipher");
}

TEST(TlsSection, ClusterKeys) {
  const auto& pki = TestPki::get();
  const auto ok = parse_config(with_tls("", "[cluster.app.tls]\nsni = \"api.internal\"\nca = \"" +
                                                pki.ca() + "\"\nverify = false\n"),
                               "needle.toml");
  ASSERT_TRUE(ok.config) << (ok.errors.empty() ? "" : ok.errors[0].to_string());
  const auto& tls = ok.config->clusters[0].tls;
  ASSERT_TRUE(tls);
  EXPECT_EQ(tls->settings.sni, "api.internal");
  EXPECT_FALSE(tls->settings.verify);
  const auto bad = parse_config(with_tls("", "[cluster.app.tls]\nca = \"" + pki.not_pem() + "\"\n"),
                                "needle.toml");
  ASSERT_FALSE(bad.config);
  ASSERT_EQ(bad.errors.size(), 1u);
  EXPECT_EQ(bad.errors[0].key, "cluster.app.tls.ca");
  EXPECT_EQ(bad.errors[0].line, 9);
}

}  // namespace
}  // namespace needle::config
