// Overload protection end to end (docs/config.md "Circuit breakers", "Rate limiting"): the real
// binary (one worker, so per-worker limits are the configured ones) in front of a scripted
// upstream that answers late. Requests over a breaker get 503 upstream_overflow at once; a
// burst over a route's rate limit gets 429 with Retry-After; the counts are exact.
#include <map>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "proxy_harness.h"
#include "support/scripted_upstream.h"

namespace needle::test::proxy {
namespace {

ConnectionScript slow_answers(milliseconds delay) {
  ConnectionScript script;
  script.otherwise = ScriptedStep::respond(200, "slow\n");
  script.otherwise.delay = delay;
  return script;
}

std::string admin_get(int port, std::string_view path) {
  HttpClient client;
  if (!client.connect(port)) return {};
  auto response = client.get(path);
  return response ? response->body : std::string();
}

// The value of sample `series` on /metrics, -1 if absent.
double metric(int admin_port, const std::string& series) {
  const std::string text = admin_get(admin_port, "/metrics");
  const size_t at = text.find(series + " ");
  if (at == std::string::npos) return -1;
  return std::stod(text.substr(at + series.size() + 1));
}

// Sends `first` requests and waits until the upstream holds them all, then `more` requests,
// each on its own connection; returns every status (the held ones last).
std::map<int, int> statuses_over_held(ScriptedUpstream& upstream, int port, int first, int more,
                                      std::vector<std::string>* overflow_bodies) {
  std::vector<std::unique_ptr<HttpClient>> held;
  for (int i = 0; i < first; ++i) {
    auto client = std::make_unique<HttpClient>();
    EXPECT_TRUE(client->connect(port));
    EXPECT_TRUE(client->send_raw(HttpClient::format_request("GET", "/held", {}, {}, port)));
    held.push_back(std::move(client));
  }
  EXPECT_TRUE(upstream.wait_for_requests(first, scaled(milliseconds(3000))));
  std::map<int, int> statuses;
  for (int i = 0; i < more; ++i) {
    HttpClient client;
    EXPECT_TRUE(client.connect(port));
    auto response = client.get("/over");
    ++statuses[response ? response->status : 0];
    if (response && response->status == 503) overflow_bodies->push_back(response->body);
  }
  for (auto& client : held) {
    auto response = client->read_response(scaled(milliseconds(5000)));
    ++statuses[response ? response->status : 0];
  }
  return statuses;
}

TEST(OverloadProtection, MaxRequestsAnswers503AtOnceOverTheBound) {
  ScriptedUpstream upstream(slow_answers(milliseconds(800)));
  ConfigSpec spec;
  spec.admin_port = free_port();
  spec.clusters.push_back(ClusterSpec{"app", {upstream.port()}, "max_requests = 3"});
  auto needle = start_needle(spec);
  std::vector<std::string> bodies;
  const auto started = Clock::now();
  const auto statuses = statuses_over_held(upstream, needle->port(), 3, 5, &bodies);
  EXPECT_EQ(statuses.at(200), 3);
  EXPECT_EQ(statuses.at(503), 5);
  EXPECT_EQ(statuses.size(), 2u);
  // The 503s did not wait for the held requests (800 ms each, in parallel).
  EXPECT_LT(Clock::now() - started, scaled(milliseconds(2500)));
  ASSERT_FALSE(bodies.empty());
  EXPECT_NE(bodies[0].find("circuit breaker max_requests is full"), std::string::npos);
  EXPECT_EQ(upstream.requests_received(), 3u);
  EXPECT_EQ(metric(spec.admin_port,
                   "needle_upstream_overflow_total{cluster=\"app\",breaker=\"max_requests\"}"),
            5);
  EXPECT_EQ(metric(spec.admin_port, "needle_responses_5xx_total{cause=\"upstream_overflow\"}"), 5);
  const auto lines = wait_log_lines(*needle, 8);
  int overflow_lines = 0;
  for (const auto& line : lines) overflow_lines += json_field(line, "cause") == "upstream_overflow";
  EXPECT_EQ(overflow_lines, 5);
}

TEST(OverloadProtection, MaxConnectionsPerHost) {
  ScriptedUpstream upstream(slow_answers(milliseconds(600)));
  ConfigSpec spec;
  spec.admin_port = free_port();
  spec.clusters.push_back(ClusterSpec{"app", {upstream.port()}, "max_connections = 2"});
  auto needle = start_needle(spec);
  std::vector<std::string> bodies;
  const auto statuses = statuses_over_held(upstream, needle->port(), 2, 4, &bodies);
  EXPECT_EQ(statuses.at(200), 2);
  EXPECT_EQ(statuses.at(503), 4);
  EXPECT_EQ(upstream.connections_accepted(), 2u);
  EXPECT_EQ(metric(spec.admin_port,
                   "needle_upstream_overflow_total{cluster=\"app\",breaker=\"max_connections\"}"),
            4);
  // The two connections are idle again: a request reuses one instead of overflowing.
  HttpClient client;
  ASSERT_TRUE(client.connect(needle->port()));
  auto response = client.get("/after");
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(upstream.connections_accepted(), 2u);
}

std::string rate_limited_config(int upstream_port, int admin_port, int listen_port) {
  return "[server]\nworkers = 2\naccess_log = \"stdout\"\n"
         "[[listener]]\naddress = " +
         quoted_addr(listen_port) + "\n" + "[admin]\naddress = " + quoted_addr(admin_port) + "\n" +
         "[[route]]\npath_prefix = \"/keyed\"\ncluster = \"app\"\n"
         "[route.rate_limit]\nrate = 0.1\nburst = 3\nkey = \"header\"\nheader = \"X-Api-Key\"\n"
         "[[route]]\npath_prefix = \"/\"\ncluster = \"app\"\n"
         "[route.rate_limit]\nrate = 0.1\nburst = 5\n"
         "[cluster.app]\nhosts = [" +
         quoted_addr(upstream_port) + "]\n";
}

TEST(OverloadProtection, RateLimitAnswers429WithRetryAfterForTheBurstExcess) {
  ScriptedUpstream upstream;
  const int admin_port = free_port();
  NeedleOptions options;
  options.also_wait_for.push_back(admin_port);
  auto needle = NeedleProcess::start(
      [&](int port) { return rate_limited_config(upstream.port(), admin_port, port); }, options);
  // Two workers share the bucket: requests on several connections (SO_REUSEPORT spreads them).
  std::map<int, int> statuses;
  std::string retry_after;
  for (int i = 0; i < 12; ++i) {
    HttpClient client;
    ASSERT_TRUE(client.connect(needle->port()));
    auto response = client.get("/");
    ASSERT_TRUE(response);
    ++statuses[response->status];
    if (response->status == 429) retry_after = response->headers.get("Retry-After");
  }
  EXPECT_EQ(statuses[200], 5);
  EXPECT_EQ(statuses[429], 7);
  ASSERT_FALSE(retry_after.empty());
  EXPECT_GE(std::stoi(retry_after), 1);
  EXPECT_LE(std::stoi(retry_after), 10);  // 1 token at 0.1/s

  // Keyed by a header: each key has its own burst.
  std::map<std::string, std::map<int, int>> by_key;
  HttpClient client;
  ASSERT_TRUE(client.connect(needle->port()));
  for (int i = 0; i < 10; ++i) {
    for (const std::string key : {"alice", "bob"}) {
      auto response = client.get("/keyed", {{"X-Api-Key", key}});
      ASSERT_TRUE(response);
      ++by_key[key][response->status];
    }
  }
  EXPECT_EQ(by_key["alice"][200], 3);
  EXPECT_EQ(by_key["alice"][429], 7);
  EXPECT_EQ(by_key["bob"][200], 3);
  EXPECT_EQ(by_key["bob"][429], 7);
  EXPECT_EQ(upstream.requests_received(), 11u);
  EXPECT_EQ(metric(admin_port, "needle_rate_limited_total{route=\"/\"}"), 7);
  EXPECT_EQ(metric(admin_port, "needle_rate_limited_total{route=\"/keyed\"}"), 14);
  const auto lines = wait_log_lines(*needle, 32);
  int limited = 0;
  for (const auto& line : lines) limited += json_field(line, "cause") == "rate_limited";
  EXPECT_EQ(limited, 21);
}

}  // namespace
}  // namespace needle::test::proxy
