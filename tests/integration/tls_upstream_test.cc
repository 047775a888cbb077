// TLS to the upstream through the real binary (issue 18): nginx with `ssl` as the upstream,
// needle's [cluster.app.tls] verifying it. Certificates: tests/support/test_pki.h.
#include <gtest/gtest.h>

#include <string>

#include "proxy_harness.h"
#include "support/http_client.h"
#include "support/nginx_fixture.h"
#include "support/tls_tools.h"

namespace needle::test {
namespace {

using namespace proxy;
using tls::testing::TestPki;

// nginx over TLS with the localhost certificate (DNS:localhost, IP:127.0.0.1).
std::string nginx_ssl_config(const std::string& keepalive_timeout = "75s") {
  const auto& pki = TestPki::get();
  return "server { listen 127.0.0.1:@PORT@ ssl; ssl_certificate " + pki.localhost_cert() +
         "; ssl_certificate_key " + pki.localhost_key() + "; keepalive_timeout " +
         keepalive_timeout + "; location / { return 200 \"ok\\n\"; } }";
}

std::string cluster_tls(const std::string& lines) {
  return "[cluster.app.tls]\n" + lines;
}

std::unique_ptr<NeedleProcess> needle_for(const NginxFixture& nginx, const std::string& tls,
                                          const std::string& cluster_extra = {},
                                          int admin_port = 0) {
  ConfigSpec spec;
  spec.clusters.push_back(ClusterSpec{"app", {nginx.port()}, cluster_extra + "\n" + tls});
  spec.admin_port = admin_port;
  return start_needle(spec);
}

TEST(TlsUpstream, PooledReuseOverTlsUsesOneConnection) {
  const auto& pki = TestPki::get();
  NginxOptions options;
  options.log_connections = true;
  NginxFixture nginx(nginx_ssl_config(), options);
  auto needle = needle_for(nginx, cluster_tls("ca = \"" + pki.ca() + "\"\nsni = \"localhost\"\n"));
  HttpClient client;
  ASSERT_TRUE(client.connect(needle->port()));
  for (int i = 0; i < 20; ++i) {
    auto r = client.get("/n" + std::to_string(i));
    ASSERT_TRUE(r) << to_string(client.last_error());
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->body, "ok\n");
  }
  ASSERT_TRUE(nginx.wait_for_access_log_lines(20, scaled(std::chrono::milliseconds(3000))));
  EXPECT_EQ(nginx.distinct_connections(), 1u);
  const auto lines = wait_log_lines(*needle, 20);
  ASSERT_EQ(lines.size(), 20u);
  EXPECT_NE(lines[19].find("\"reused\":true"), std::string::npos) << lines[19];
}

TEST(TlsUpstream, ACertificateThatDoesNotVerifyIsItsOwnCause) {
  const auto& pki = TestPki::get();
  NginxFixture nginx(nginx_ssl_config());
  auto needle = needle_for(nginx, cluster_tls("ca = \"" + pki.rogue_ca() + "\"\n"));
  auto r = get(needle->port(), "/");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 502);
  const auto lines = wait_log_lines(*needle, 1);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(json_field(lines[0], "cause"), "upstream_tls_verify_failed") << lines[0];
}

TEST(TlsUpstream, TheHostNameIsChecked) {
  const auto& pki = TestPki::get();
  NginxFixture nginx(nginx_ssl_config());
  auto wrong = needle_for(nginx, cluster_tls("ca = \"" + pki.ca() + "\"\nsni = \"api.test\"\n"));
  auto refused = get(wrong->port(), "/");
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 502);
  const auto lines = wait_log_lines(*wrong, 1);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(json_field(lines[0], "cause"), "upstream_tls_verify_failed") << lines[0];
  // The host is an IP address: verified against the certificate's IP SAN, no SNI sent.
  auto by_ip = needle_for(nginx, cluster_tls("ca = \"" + pki.ca() + "\"\n"));
  auto ok = get(by_ip->port(), "/");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200);
}

TEST(TlsUpstream, ANewConnectionResumesTheHostsSession) {
  const auto& pki = TestPki::get();
  NginxFixture nginx(nginx_ssl_config());
  const int admin = free_port();
  auto needle = needle_for(nginx, cluster_tls("ca = \"" + pki.ca() + "\"\nsni = \"localhost\"\n"),
                           "max_requests_per_connection = 1", admin);
  for (int i = 0; i < 3; ++i) {
    auto r = get(needle->port(), "/");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
  }
  auto metrics = get(admin, "/metrics");
  ASSERT_TRUE(metrics);
  const std::string resumed =
      "needle_upstream_tls_resumed_total{cluster=\"app\",host=\"127.0.0.1:" +
      std::to_string(nginx.port()) + "\"} 2";
  EXPECT_NE(metrics->body.find(resumed), std::string::npos) << metrics->body;
}

}  // namespace
}  // namespace needle::test
