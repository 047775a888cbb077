// Client-side TLS termination through the real binary (issue 18): curl and `openssl s_client`
// against a [listener.tls] listener in front of nginx. Certificates: tests/support/test_pki.h.
#include <gtest/gtest.h>

#include <string>

#include "proxy_harness.h"
#include "support/free_port.h"
#include "support/nginx_fixture.h"
#include "support/tls_tools.h"

namespace needle::test {
namespace {

using namespace proxy;
using tls::testing::TestPki;

// nginx answering every request with the X-Forwarded-Proto it received.
std::string echo_proto_config() {
  return "server { listen 127.0.0.1:@PORT@; location / { return 200 "
         "\"proto=$http_x_forwarded_proto\\n\"; } }";
}

std::string tls_section(const std::string& extra = {}) {
  const auto& pki = TestPki::get();
  return "[listener.tls]\ncertificates = [ { cert = \"" + pki.default_cert() + "\", key = \"" +
         pki.default_key() + "\" },\n  { cert = \"" + pki.api_cert() + "\", key = \"" +
         pki.api_key() + "\" },\n  { cert = \"" + pki.wildcard_cert() + "\", key = \"" +
         pki.wildcard_key() + "\" } ]\n" + extra;
}

class TlsListener : public ::testing::Test {
 protected:
  void start(const std::string& tls_extra = {}, int admin_port = 0) {
    nginx_ = std::make_unique<NginxFixture>(echo_proto_config());
    ConfigSpec spec;
    spec.listener_extra = tls_section(tls_extra);
    spec.clusters.push_back(ClusterSpec{"app", {nginx_->port()}, {}});
    spec.admin_port = admin_port;
    needle_ = start_needle(spec);
  }
  std::string curl(const std::string& host, const std::string& options = {}) {
    const auto& pki = TestPki::get();
    const std::string port = std::to_string(needle_->port());
    return run_shell("curl -sS --cacert " + pki.ca() + " --resolve " + host + ":" + port +
                     ":127.0.0.1 " + options + " https://" + host + ":" + port + "/")
        .output;
  }

  std::unique_ptr<NginxFixture> nginx_;
  std::unique_ptr<NeedleProcess> needle_;
};

TEST_F(TlsListener, Tls12AndTls13ServeRequestsAndForwardHttps) {
  start();
  EXPECT_EQ(curl("default.test", "--tlsv1.3"), "proto=https\n");
  EXPECT_EQ(curl("default.test", "--tlsv1.2 --tls-max 1.2"), "proto=https\n");
  const auto lines = wait_log_lines(*needle_, 2);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(json_field(lines[0], "tls_version"), "TLSv1.3");
  EXPECT_EQ(json_field(lines[1], "tls_version"), "TLSv1.2");
  EXPECT_EQ(json_field(lines[0], "sni"), "default.test");
  EXPECT_FALSE(json_field(lines[1], "tls_cipher").empty());
  EXPECT_EQ(json_field(lines[0], "tls_resumed"), "false");
}

TEST_F(TlsListener, SniPicksTheCertificateExactWildcardAndDefault) {
  start();
  const int port = needle_->port();
  auto api = s_client_get(port, "-servername api.example.com");
  EXPECT_NE(api.output.find("CN = api"), std::string::npos) << api.output;
  EXPECT_NE(api.output.find("Verify return code: 0 (ok)"), std::string::npos) << api.output;
  auto wild = s_client_get(port, "-servername www.example.com");
  EXPECT_NE(wild.output.find("CN = wild"), std::string::npos) << wild.output;
  auto none = s_client_get(port, "-noservername");
  EXPECT_NE(none.output.find("CN = default"), std::string::npos) << none.output;
  EXPECT_NE(none.output.find("proto=https"), std::string::npos) << none.output;
}

TEST_F(TlsListener, Tls11IsRefusedAndCounted) {
  const int admin = free_port();
  start({}, admin);
  auto old = s_client_get(needle_->port(), "-tls1_1 -cipher DEFAULT:@SECLEVEL=0");
  EXPECT_EQ(old.output.find("proto=https"), std::string::npos) << old.output;
  EXPECT_NE(old.status, 0) << old.output;
  const auto metrics = run_shell("curl -sS http://127.0.0.1:" + std::to_string(admin) + "/metrics");
  EXPECT_NE(
      metrics.output.find("needle_tls_handshake_failures_total{reason=\"protocol_version\"} 1"),
      std::string::npos)
      << metrics.output;
}

TEST_F(TlsListener, MinVersion13RefusesTls12) {
  start("min_version = \"1.3\"\n");
  EXPECT_EQ(curl("default.test", "--tlsv1.3"), "proto=https\n");
  EXPECT_EQ(curl("default.test", "--tlsv1.2 --tls-max 1.2").find("proto="), std::string::npos);
}

TEST_F(TlsListener, MutualTlsRequiresAndVerifiesTheClientCertificate) {
  const auto& pki = TestPki::get();
  start("client_ca = \"" + pki.ca() + "\"\n");
  const int port = needle_->port();
  auto without = s_client_get(port, "-servername default.test");
  EXPECT_EQ(without.output.find("proto=https"), std::string::npos) << without.output;
  auto rogue = s_client_get(port, "-servername default.test -cert " + pki.rogue_client_cert() +
                                      " -key " + pki.rogue_client_key());
  EXPECT_EQ(rogue.output.find("proto=https"), std::string::npos) << rogue.output;
  auto good = s_client_get(
      port, "-servername default.test -cert " + pki.client_cert() + " -key " + pki.client_key());
  EXPECT_NE(good.output.find("proto=https"), std::string::npos) << good.output;
}

TEST_F(TlsListener, SessionResumptionIsReportedAsReused) {
  start();
  TempDir dir("needle-tls-sess");
  const std::string session = dir.file("session.pem").string();
  for (const std::string version : {"-tls1_3", "-tls1_2"}) {
    auto first =
        s_client_get(needle_->port(), version + " -servername default.test -sess_out " + session);
    EXPECT_NE(first.output.find("New, TLSv1."), std::string::npos) << first.output;
    auto second =
        s_client_get(needle_->port(), version + " -servername default.test -sess_in " + session);
    EXPECT_NE(second.output.find("Reused, TLSv1."), std::string::npos) << second.output;
    EXPECT_NE(second.output.find("proto=https"), std::string::npos) << second.output;
  }
  const auto lines = wait_log_lines(*needle_, 4);
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_EQ(json_field(lines[1], "tls_resumed"), "true");
  EXPECT_EQ(json_field(lines[3], "tls_resumed"), "true");
}

TEST_F(TlsListener, PlainHttpOnTheTlsPortGetsAClear400) {
  start();
  auto plain = run_shell("curl -sS -i http://127.0.0.1:" + std::to_string(needle_->port()) + "/");
  EXPECT_NE(plain.output.find("HTTP/1.1 400 Bad Request"), std::string::npos) << plain.output;
  EXPECT_NE(plain.output.find("HTTPS port"), std::string::npos) << plain.output;
  // The port still serves TLS afterwards.
  EXPECT_EQ(curl("default.test"), "proto=https\n");
}

}  // namespace
}  // namespace needle::test
