// DNS discovery end to end (docs/architecture.md "Discovery by DNS"): the real binary resolves
// a cluster's host name through a test DNS server (tests/support/dns_test_server.py, dnslib) on
// a loopback UDP port, against HTTP upstreams on 127.0.0.1-3 with one port
// (tests/support/http_test_upstreams.py). Scripts: an answer that changes under load (hosts
// added and drained, no failed request), the resolver going down (the last answer kept, the
// failure counted), and re-resolution at the TTL within dns_refresh_min/max.
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "proxy_harness.h"
#include "support/child_process.h"
#include "support/free_port.h"

namespace needle::test::proxy {
namespace {

std::string script(std::string_view name) {
  return std::string(NEEDLE_SOURCE_DIR) + "/tests/support/" + std::string(name);
}

// Starts a python helper that prints "ready" once it listens.
std::unique_ptr<ChildProcess> start_ready(const TempDir& dir, std::string name,
                                          std::vector<std::string> argv) {
  ChildOptions options;
  options.argv = std::move(argv);
  options.output_dir = dir.path();
  options.name = std::move(name);
  auto child = std::make_unique<ChildProcess>(options);
  const bool ready = eventually(
      [&] { return child->stdout_text().find("ready") != std::string::npos || !child->running(); },
      milliseconds(5000));
  if (!ready || !child->running()) {
    ADD_FAILURE() << child->describe();
    return nullptr;
  }
  return child;
}

class DnsDiscovery : public ::testing::Test {
 protected:
  void SetUp() override {
    dns_port_ = free_port();
    upstream_port_ = free_port();
    set_answer("app.test.", {"127.0.0.1", "127.0.0.2"}, 1);
    dns_ = start_ready(dir_, "dns",
                       {"/usr/bin/python3", script("dns_test_server.py"), std::to_string(dns_port_),
                        answers_path(), dir_.file("queries.log").string()});
    upstreams_ =
        start_ready(dir_, "upstreams",
                    {"/usr/bin/python3", script("http_test_upstreams.py"),
                     std::to_string(upstream_port_), "127.0.0.1", "127.0.0.2", "127.0.0.3"});
    ASSERT_TRUE(dns_ && upstreams_);
    admin_port_ = free_port();
  }

  std::string answers_path() const { return dir_.file("answers.json").string(); }

  // Rewritten whole and renamed into place: the server never reads half a file.
  void set_answer(const std::string& name, const std::vector<std::string>& addresses, int ttl) {
    answers_[name] = {addresses, ttl};
    std::ostringstream json;
    json << "{";
    bool first = true;
    for (const auto& [n, answer] : answers_) {
      json << (first ? "" : ",") << "\"" << n << "\": {\"ttl\": " << answer.second << ", \"a\": [";
      for (size_t i = 0; i < answer.first.size(); ++i) {
        json << (i ? "," : "") << "\"" << answer.first[i] << "\"";
      }
      json << "]}";
      first = false;
    }
    json << "}";
    const auto tmp = dir_.file("answers.tmp");
    std::ofstream(tmp) << json.str();
    std::filesystem::rename(tmp, answers_path());
  }

  std::unique_ptr<NeedleProcess> start(const std::string& cluster_extra,
                                       const std::string& host = "app.test") {
    ConfigSpec spec;
    spec.admin_port = admin_port_;
    spec.clusters.push_back(ClusterSpec{"app", {}, ""});
    auto render = [=, this](int port) {
      std::string toml = spec.render(port);
      // hosts = [] -> the name, with the resolver and refresh keys.
      const std::string empty = "hosts = []\n";
      toml.replace(toml.find(empty), empty.size(),
                   "hosts = [\"" + host + ":" + std::to_string(upstream_port_) + "\"]\n" +
                       "resolver = \"127.0.0.1:" + std::to_string(dns_port_) + "\"\n" +
                       cluster_extra + "\n");
      return toml;
    };
    NeedleOptions options;
    options.also_wait_for.push_back(admin_port_);
    return NeedleProcess::start(render, options);
  }

  std::string admin(std::string_view path) {
    HttpClient client;
    if (!client.connect(admin_port_)) return {};
    auto response = client.get(path);
    return response ? response->body : std::string();
  }

  // The value of one sample line "name{labels} value" on /metrics, -1 if absent.
  double metric(const std::string& series) {
    const std::string text = admin("/metrics");
    const size_t at = text.find(series + " ");
    if (at == std::string::npos) return -1;
    return std::stod(text.substr(at + series.size() + 1));
  }

  // Monotonic times of the A queries for `name` the DNS server received.
  std::vector<double> query_times(const std::string& name) {
    std::ifstream in(dir_.file("queries.log"));
    std::vector<double> times;
    double t = 0;
    std::string n;
    std::string type;
    while (in >> t >> n >> type) {
      if (n == name && type == "A") times.push_back(t);
    }
    return times;
  }

  TempDir dir_{"needle-dns"};
  int dns_port_ = 0;
  int upstream_port_ = 0;
  int admin_port_ = 0;
  std::map<std::string, std::pair<std::vector<std::string>, int>> answers_;
  std::unique_ptr<ChildProcess> dns_;
  std::unique_ptr<ChildProcess> upstreams_;
};

TEST_F(DnsDiscovery, AnswerChangeAddsAndDrainsHostsWithoutAFailedRequest) {
  auto needle = start("dns_refresh_min = \"100ms\"\ndns_refresh_max = \"200ms\"");
  const std::string series = "needle_cluster_hosts{cluster=\"app\"}";
  ASSERT_TRUE(eventually([&] { return metric(series) == 2; }, milliseconds(3000)))
      << needle->operational_log();

  HttpClient client;
  ASSERT_TRUE(client.connect(needle->port()));
  std::map<std::string, int> served;  // by upstream address, after the change was published
  int failed = 0;
  bool changed = false;
  bool drained_seen = false;
  int after_drain = 0;
  for (int i = 0; i < 3000 && after_drain < 100; ++i) {
    if (i == 50) {
      set_answer("app.test.", {"127.0.0.2", "127.0.0.3"}, 1);
      changed = true;
    }
    auto response = client.get("/");
    if (!response || response->status != 200) {
      ++failed;
      client.close();
      ASSERT_TRUE(client.connect(needle->port()));
      continue;
    }
    if (!drained_seen && changed) {
      drained_seen = needle->operational_log().find("draining [127.0.0.1]") != std::string::npos;
      // A request already routed when the workers got the new hosts may still finish on .1.
      if (drained_seen) std::this_thread::sleep_for(milliseconds(50));
      continue;
    }
    if (drained_seen) {
      ++served[response->headers.get("X-Upstream")];
      ++after_drain;
    }
  }
  EXPECT_EQ(failed, 0);
  ASSERT_TRUE(drained_seen) << needle->operational_log();
  EXPECT_EQ(served["127.0.0.1"], 0);
  EXPECT_GT(served["127.0.0.2"], 0);
  EXPECT_GT(served["127.0.0.3"], 0);
  EXPECT_EQ(metric(series), 2);
  const std::string pools = admin("/pools");
  EXPECT_NE(pools.find("127.0.0.3:" + std::to_string(upstream_port_)), std::string::npos) << pools;
  EXPECT_EQ(pools.find("app.test"), std::string::npos) << pools;
}

TEST_F(DnsDiscovery, ResolverDownKeepsTheLastAnswerAndCountsTheFailure) {
  auto needle = start("dns_refresh = \"200ms\"");
  const std::string failures = "needle_dns_failures_total{cluster=\"app\",name=\"app.test\"}";
  ASSERT_TRUE(eventually([&] { return metric("needle_cluster_hosts{cluster=\"app\"}") == 2; },
                         milliseconds(3000)))
      << needle->operational_log();
  EXPECT_EQ(metric(failures), 0);
  dns_.reset();  // the resolver is gone: its port refuses
  ASSERT_TRUE(eventually([&] { return metric(failures) >= 2; }, milliseconds(8000)))
      << needle->operational_log();
  EXPECT_NE(needle->operational_log().find("keeping 2 address(es) of the last good answer"),
            std::string::npos)
      << needle->operational_log();
  EXPECT_EQ(metric("needle_cluster_hosts{cluster=\"app\"}"), 2);
  HttpClient client;
  ASSERT_TRUE(client.connect(needle->port()));
  std::map<std::string, int> served;
  for (int i = 0; i < 20; ++i) {
    auto response = client.get("/");
    ASSERT_TRUE(response && response->status == 200) << i;
    ++served[response->headers.get("X-Upstream")];
  }
  EXPECT_GT(served["127.0.0.1"], 0);  // both addresses of the last answer still serve
  EXPECT_GT(served["127.0.0.2"], 0);
  EXPECT_EQ(served["127.0.0.1"] + served["127.0.0.2"], 20);
}

TEST_F(DnsDiscovery, TtlIsHonouredWithinTheBounds) {
  // TTL 1 s between the bounds 200 ms..10 s: re-resolved every second.
  set_answer("app.test.", {"127.0.0.1"}, 1);
  // TTL 60 s above dns_refresh_max 400 ms: re-resolved every 400 ms.
  set_answer("capped.test.", {"127.0.0.2"}, 60);
  auto needle = start("dns_refresh_min = \"200ms\"\ndns_refresh_max = \"10s\"");
  std::this_thread::sleep_for(milliseconds(50));
  // The second cluster is added by a reload, with its own bounds.
  std::string toml;
  {
    std::ifstream in(needle->config_path());
    std::stringstream text;
    text << in.rdbuf();
    toml = text.str();
  }
  toml += "[cluster.capped]\nhosts = [\"capped.test:" + std::to_string(upstream_port_) +
          "\"]\nresolver = \"127.0.0.1:" + std::to_string(dns_port_) +
          "\"\ndns_refresh_min = \"100ms\"\ndns_refresh_max = \"400ms\"\n";
  needle->rewrite_config(toml);
  needle->reload();
  ASSERT_TRUE(needle->wait_for_log("reloaded", scaled(milliseconds(3000))))
      << needle->operational_log();
  std::this_thread::sleep_for(milliseconds(2600));
  const auto fast = query_times("app.test.");
  const auto capped = query_times("capped.test.");
  ASSERT_GE(fast.size(), 2u);
  ASSERT_GE(capped.size(), 4u);
  for (size_t i = 1; i < fast.size(); ++i) {
    EXPECT_GE(fast[i] - fast[i - 1], 0.95) << i;  // never before the TTL
    EXPECT_LE(fast[i] - fast[i - 1], 1.0 + scaled_ms(400) / 1000.0) << i;
  }
  for (size_t i = 1; i < capped.size(); ++i) {
    EXPECT_GE(capped[i] - capped[i - 1], 0.38) << i;  // dns_refresh_max, not the 60 s TTL
    EXPECT_LE(capped[i] - capped[i - 1], 0.4 + scaled_ms(400) / 1000.0) << i;
  }
  EXPECT_GE(metric("needle_dns_resolutions_total{cluster=\"capped\",name=\"capped.test\"}"), 4);
}

}  // namespace
}  // namespace needle::test::proxy
