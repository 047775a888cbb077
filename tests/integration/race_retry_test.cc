// Retry rules of the race-free pool (DESIGN.md rule 5) against the real needle binary
// (workers = 1): a request that died on a reused connection before any response byte is
// retried once on a fresh connection when it is safe to replay, never after response bytes,
// never past the retry budget; a connect failure moves any method to another host.
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "race_support.h"
#include "support/eventually.h"
#include "support/scripted_upstream.h"
#include "support/time_scale.h"

namespace needle::test::race {
namespace {

using namespace std::chrono_literals;

// Every connection: "Keep-Alive: timeout=5" on each response (so the idle limit is trusted and
// non-replayable requests may reuse: non_replayable_limit == effective_limit == 4.5 s), and the
// 2nd request on the connection is reset before any response byte.
ConnectionScript reset_second_request() {
  ConnectionScript script;
  script.otherwise.keep_alive_hint = 5;
  script.reset_request(2);
  return script;
}

struct Scenario {
  ScriptedUpstream upstream;
  RaceConfig cfg;
  std::unique_ptr<NeedleProcess> needle;
  HttpClient client;

  explicit Scenario(ConnectionScript script, std::string cluster_extra = {})
      : upstream(std::move(script)) {
    cfg.hosts = {upstream.port()};
    cfg.cluster_extra = std::move(cluster_extra);
    needle = start_needle(cfg);
    if (!client.connect(needle->port())) throw std::runtime_error("cannot connect to needle");
  }

  // The warm-up GET (fresh connection, teaches the hint), then `method` at once: it finds the
  // connection idle for a few ms, well under every limit, so it goes down the reused one.
  std::optional<Response> second_request(std::string_view method,
                                         std::vector<std::pair<std::string, std::string>> headers) {
    auto first = client.get("/warm-up");
    if (!first || first->status != 200) return std::nullopt;
    if (method == "GET") return client.get("/second", headers);
    headers.emplace_back("Content-Type", "application/json");
    return client.request(method, "/second", "{\"order\":7}", headers);
  }

  // The access-log line of the second request.
  Json second_line() {
    auto log = wait_access_log(*needle, 2);
    return log.size() >= 2 ? log[1] : Json{};
  }
};

void expect_retried_on_fresh(const Json& line, const std::string& log) {
  ASSERT_EQ(line["attempts"].size(), 2u) << log;
  const Json& first = line["attempts"][0];
  const Json& second = line["attempts"][1];
  EXPECT_EQ(first["cause"].str(), "reset_before_response_on_reused") << log;
  EXPECT_TRUE(first["reused"].b) << log;
  EXPECT_EQ(first["retry"].str(), "ok") << log;
  EXPECT_FALSE(second["reused"].b) << log;
  EXPECT_EQ(second["cause"].str(), "none") << log;
  EXPECT_EQ(second["status"].integer(), 200) << log;
  EXPECT_NE(first["connection_id"].integer(), second["connection_id"].integer()) << log;
  EXPECT_EQ(line["status"].integer(), 200) << log;
}

void expect_not_retried(const Json& line, std::string_view retry, const std::string& log) {
  ASSERT_EQ(line["attempts"].size(), 1u) << log;
  EXPECT_EQ(line["attempts"][0]["cause"].str(), "reset_before_response_on_reused") << log;
  EXPECT_TRUE(line["attempts"][0]["reused"].b) << log;
  EXPECT_EQ(line["attempts"][0]["retry"].str(), retry) << log;
  EXPECT_EQ(line["status"].integer(), 502) << log;
  EXPECT_EQ(line["cause"].str(), "reset_before_response_on_reused") << log;
}

TEST(RaceRetry, ResetGetOnReusedConnectionIsRetriedOnAFreshOne) {
  Scenario s(reset_second_request());
  auto r = s.second_request("GET", {});
  ASSERT_TRUE(r.has_value()) << to_string(s.client.last_error());
  EXPECT_EQ(r->status, 200);
  expect_retried_on_fresh(s.second_line(), s.needle->access_log());
  EXPECT_EQ(s.upstream.connections_accepted(), 2u);
}

TEST(RaceRetry, ResetPostWithoutIdempotencyKeyIs502) {
  Scenario s(reset_second_request());
  auto r = s.second_request("POST", {});
  ASSERT_TRUE(r.has_value()) << to_string(s.client.last_error());
  EXPECT_EQ(r->status, 502);
  expect_not_retried(s.second_line(), "not_replayable", s.needle->access_log());
  // The POST reached the upstream exactly once.
  size_t posts = 0;
  for (const auto& req : s.upstream.requests()) posts += req.method == "POST";
  EXPECT_EQ(posts, 1u);
}

TEST(RaceRetry, ResetPostWithIdempotencyKeyIsRetried) {
  Scenario s(reset_second_request());
  auto r = s.second_request("POST", {{"Idempotency-Key", "order-7"}});
  ASSERT_TRUE(r.has_value()) << to_string(s.client.last_error());
  EXPECT_EQ(r->status, 200);
  expect_retried_on_fresh(s.second_line(), s.needle->access_log());
}

TEST(RaceRetry, NeverModeDoesNotRetryAPostEvenWithAKey) {
  Scenario s(reset_second_request(), "retry_non_idempotent = \"never\"");
  auto r = s.second_request("POST", {{"Idempotency-Key", "order-7"}});
  ASSERT_TRUE(r.has_value()) << to_string(s.client.last_error());
  EXPECT_EQ(r->status, 502);
  expect_not_retried(s.second_line(), "not_replayable", s.needle->access_log());
}

TEST(RaceRetry, NeverModeStillRetriesAGet) {
  Scenario s(reset_second_request(), "retry_non_idempotent = \"never\"");
  auto r = s.second_request("GET", {});
  ASSERT_TRUE(r.has_value()) << to_string(s.client.last_error());
  EXPECT_EQ(r->status, 200);
  expect_retried_on_fresh(s.second_line(), s.needle->access_log());
}

TEST(RaceRetry, ReusedConnectionModeRetriesAPostWithoutAKey) {
  Scenario s(reset_second_request(), "retry_non_idempotent = \"reused-connection\"");
  auto r = s.second_request("POST", {});
  ASSERT_TRUE(r.has_value()) << to_string(s.client.last_error());
  EXPECT_EQ(r->status, 200);
  expect_retried_on_fresh(s.second_line(), s.needle->access_log());
}

// Without a hint or a proven reuse, a POST must not be sent down a pooled connection at all
// (non_replayable_limit is 0): the same reset script costs it nothing.
TEST(RaceRetry, PostWithoutTrustedLimitTakesAFreshConnection) {
  ConnectionScript script;
  script.reset_request(2);
  Scenario s(script);
  auto r = s.second_request("POST", {});
  ASSERT_TRUE(r.has_value()) << to_string(s.client.last_error());
  EXPECT_EQ(r->status, 200);
  const Json line = s.second_line();
  ASSERT_EQ(line["attempts"].size(), 1u) << s.needle->access_log();
  EXPECT_FALSE(line["attempts"][0]["reused"].b) << s.needle->access_log();
}

// Response bytes arrived (the head and part of the body), then the upstream closed: the client
// already has the head, so its connection is aborted; nothing is retried, even for a GET on a
// reused connection.
TEST(RaceRetry, NoRetryAfterResponseBytes) {
  ConnectionScript script;
  script.otherwise.keep_alive_hint = 5;
  const std::string body(1000, 'b');
  script.requests = {ScriptedStep::respond(200, "ok\n"),
                     ScriptedStep::partial_then_close(150, body)};
  script.requests[1].keep_alive_hint = 5;
  Scenario s(script);
  auto first = s.client.get("/warm-up");
  ASSERT_TRUE(first.has_value());
  ASSERT_EQ(first->status, 200);
  auto r = s.client.get("/partial");
  EXPECT_FALSE(r.has_value() && r->status == 200 && r->body.size() == body.size())
      << "a truncated response was passed off as complete";
  EXPECT_FALSE(r.has_value()) << "status " << (r ? r->status : 0);
  EXPECT_TRUE(s.client.last_error() == ClientError::incomplete ||
              s.client.last_error() == ClientError::reset ||
              s.client.last_error() == ClientError::eof)
      << to_string(s.client.last_error());

  const Json line = s.second_line();
  EXPECT_EQ(line["cause"].str(), "closed_mid_response") << s.needle->access_log();
  ASSERT_EQ(line["attempts"].size(), 1u) << s.needle->access_log();
  EXPECT_EQ(line["attempts"][0]["cause"].str(), "closed_mid_response");
  EXPECT_TRUE(line["attempts"][0]["reused"].b);
  EXPECT_EQ(s.upstream.requests_received(), 2u);
}

// The upstream resets the connection right behind its first response, with no Connection:
// close: the RST arrives with the response's last bytes, where the reactor's flag cannot see it
// (docs/decisions/0004), so the pool may hand the connection out unprobed. The POST's first
// write then fails before any byte leaves needle, and a request nobody received is sent again on
// a fresh connection whatever its method. Either way (probed and evicted, or retried) the POST
// gets its 200 and reaches the upstream exactly once.
TEST(RaceRetry, PostThatNeverLeftNeedleIsSentAgain) {
  ConnectionScript script;
  script.otherwise.keep_alive_hint = 5;
  script.requests = {ScriptedStep::respond(200, "ok\n")};
  script.requests[0].keep_alive_hint = 5;
  script.requests[0].close_after_response = true;
  script.requests[0].close_how = CloseHow::rst;
  Scenario s(script);
  auto first = s.client.get("/warm-up");
  ASSERT_TRUE(first.has_value() && first->status == 200) << to_string(s.client.last_error());
  // The RST must be in needle's receive queue before the POST leaves: one that comes after the
  // POST's bytes is a close of a request in flight, which no proxy can tell from a lost request
  // (502 for a POST, by the retry rules). The upstream's thread may close after needle relayed
  // the response, so wait for the close to have happened.
  ASSERT_TRUE(eventually(scaled(std::chrono::milliseconds(2000)),
                         [&] { return s.upstream.open_connections() == 0; }));
  auto r = s.client.request("POST", "/second", "{\"order\":7}",
                            {{"Content-Type", "application/json"}});
  ASSERT_TRUE(r.has_value()) << to_string(s.client.last_error());
  EXPECT_EQ(r->status, 200) << s.needle->access_log();
  size_t posts = 0;
  for (const auto& req : s.upstream.requests()) posts += req.method == "POST";
  EXPECT_EQ(posts, 1u);
  const Json line = s.second_line();
  const std::string log = s.needle->access_log();
  if (line["attempts"].size() == 2u) {  // handed out unprobed: the write failed, then the retry
    const Json& first = line["attempts"][0];
    EXPECT_TRUE(first["reused"].b) << log;
    EXPECT_EQ(first["bytes_written"].integer(), 0) << log;
    EXPECT_EQ(first["retry"].str(), "ok") << log;
    EXPECT_FALSE(line["attempts"][1]["reused"].b) << log;
  } else {  // the reactor saw the RST first: the checkout probed and evicted it
    ASSERT_EQ(line["attempts"].size(), 1u) << log;
    EXPECT_FALSE(line["attempts"][0]["reused"].b) << log;
  }
  EXPECT_EQ(line["status"].integer(), 200) << log;
}

// retry_budget_ratio = 0 and retry_budget_min_per_second = 0: the budget allows no retry. A GET
// reset on a reused connection is still retried once on a fresh connection: that retry stands
// in for an attempt the pool sent down a connection the upstream had closed, and it is exempt
// from the budget (retry_policy.h), so the idle-close race is never a 502.
TEST(RaceRetry, TheStaleConnectionRetryGoesWithNoBudget) {
  Scenario s(reset_second_request(),
             "retry_budget_ratio = 0\nretry_budget_min_per_second = 0");
  auto r = s.second_request("GET", {});
  ASSERT_TRUE(r.has_value()) << to_string(s.client.last_error());
  EXPECT_EQ(r->status, 200) << s.needle->access_log();
  expect_retried_on_fresh(s.second_line(), s.needle->access_log());
  EXPECT_EQ(s.upstream.connections_accepted(), 2u);
}

// Two hosts, the first refuses connections: round robin starts with it, so the first POST's
// first attempt is refused and the POST goes to the second host (no byte reached anyone).
TEST(RaceRetry, ConnectFailureRetriesAPostOnTheOtherHost) {
  ScriptedUpstream live;
  const int dead_port = free_port();  // nothing listens there
  RaceConfig cfg;
  cfg.hosts = {dead_port, live.port()};
  auto needle = start_needle(cfg);
  HttpClient client;
  ASSERT_TRUE(client.connect(needle->port()));
  auto r = client.request("POST", "/orders", "{\"order\":1}", {{"Content-Type", "application/json"}});
  ASSERT_TRUE(r.has_value()) << to_string(client.last_error());
  EXPECT_EQ(r->status, 200);

  const auto log = wait_access_log(*needle, 1);
  ASSERT_EQ(log.size(), 1u);
  const Json& line = log[0];
  const std::string text = needle->access_log();
  ASSERT_EQ(line["attempts"].size(), 2u) << text;
  EXPECT_EQ(line["attempts"][0]["cause"].str(), "connect_refused") << text;
  EXPECT_EQ(line["attempts"][0]["upstream"].str(), host_name(dead_port)) << text;
  EXPECT_EQ(line["attempts"][0]["retry"].str(), "ok") << text;
  EXPECT_EQ(line["attempts"][1]["cause"].str(), "none") << text;
  EXPECT_EQ(line["attempts"][1]["upstream"].str(), host_name(live.port())) << text;
  EXPECT_EQ(line["status"].integer(), 200);
  ASSERT_EQ(live.requests_received(), 1u);
  EXPECT_EQ(live.requests()[0].method, "POST");
  EXPECT_EQ(live.requests()[0].body, "{\"order\":1}");
}

}  // namespace
}  // namespace needle::test::race
