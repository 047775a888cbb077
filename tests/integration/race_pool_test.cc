// The keep-alive close race against the real needle binary (workers = 1): the pool must stop
// reusing a connection before the upstream closes it, whether the upstream says when
// (Keep-Alive: timeout=N) or not (needle learns it), and must evict an idle connection as soon
// as the upstream's FIN arrives. Scripts read like a timeline; every wait is bounded.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <iostream>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "race_support.h"
#include "support/delay_line.h"
#include "support/scripted_upstream.h"

namespace needle::test::race {
namespace {

using namespace std::chrono_literals;

// Reused attempts of every access-log line, as (idle_age_ms, line index).
struct ReusedAttempt {
  long long idle_age_ms;
  size_t line;
  std::string cause;
  std::string method;
};

std::vector<ReusedAttempt> reused_attempts(const std::vector<Json>& log) {
  std::vector<ReusedAttempt> out;
  for (size_t i = 0; i < log.size(); ++i) {
    for (const Json& a : log[i]["attempts"].items) {
      if (a["reused"].b) {
        out.push_back({a["idle_age_ms"].integer(), i, a["cause"].str(), log[i]["method"].str()});
      }
    }
  }
  return out;
}

size_t count_attempt_cause(const std::vector<Json>& log, std::string_view cause) {
  size_t n = 0;
  for (const Json& line : log) {
    for (const Json& a : line["attempts"].items) n += a["cause"].str() == cause ? 1 : 0;
  }
  return n;
}

// Upstream: "Keep-Alive: timeout=1" on every response and closes idle connections at exactly
// 1 s. Path: needle -> 2 ms delay line (each way) -> upstream. The client sends 12 requests,
// GET and POST alternating, 0.9-1.1 s apart: needle's limit is 1 s - max(100 ms, 10%) = 900 ms,
// so none of them may go down a connection idle for 900 ms or more, and none may fail. Two more
// requests 400 ms apart then show that the pool does reuse below the limit.
TEST(RacePool, KeepAliveHintIsHonoured) {
  ConnectionScript script;
  script.otherwise.keep_alive_hint = 1;
  script.close_when_idle(1000ms, CloseHow::fin);
  ScriptedUpstream upstream(script);
  DelayLine line(upstream.port(), 2ms);
  RaceConfig cfg;
  cfg.hosts = {line.port()};
  auto needle = start_needle(cfg);

  HttpClient client;
  ASSERT_TRUE(client.connect(needle->port()));
  const std::vector<int> gaps_ms = {0, 900, 1100, 950, 1050, 1000, 905, 1095, 990, 1010, 920,
                                    1080, 400, 400};
  int ok = 0;
  for (size_t i = 0; i < gaps_ms.size(); ++i) {
    std::this_thread::sleep_for(milliseconds(gaps_ms[i]));
    auto r = (i % 2 == 1) ? client.request("POST", "/orders", "{\"n\":1}",
                                           {{"Content-Type", "application/json"}})
                          : client.get("/hello");
    ASSERT_TRUE(r.has_value()) << "request " << i << ": " << to_string(client.last_error());
    EXPECT_EQ(r->status, 200) << "request " << i;
    ok += r->status == 200;
  }
  EXPECT_EQ(ok, static_cast<int>(gaps_ms.size()));

  const auto log = wait_access_log(*needle, gaps_ms.size());
  ASSERT_EQ(log.size(), gaps_ms.size()) << needle->access_log();
  for (const auto& a : reused_attempts(log)) {
    EXPECT_LT(a.idle_age_ms, 900) << "line " << a.line << " reused a connection idle "
                                  << a.idle_age_ms << " ms: " << needle->access_log();
  }
  // The race never even happened (not merely hidden by a retry).
  EXPECT_EQ(count_attempt_cause(log, "reset_before_response_on_reused"), 0u)
      << needle->access_log();
  for (const Json& l : log) EXPECT_EQ(l["attempts"].size(), 1u) << needle->access_log();
  // The two requests 400 ms apart: the last one went down a pooled connection.
  EXPECT_TRUE(log.back()["attempts"][0]["reused"].b) << needle->access_log();

  auto pool = pool_snapshot(cfg.admin_port);
  ASSERT_TRUE(pool.has_value());
  EXPECT_EQ((*pool)["limit_source"].str(), "hint");
  EXPECT_EQ((*pool)["hint_ms"].integer(), 1000);
  EXPECT_EQ((*pool)["effective_limit_ms"].integer(), 900);
}

// Upstream: no hint, closes idle connections at 300 ms (FIN), behind a 1 ms delay line. Eight
// clients send 63 requests each (504, GET and POST alternating) with gaps of 250-350 ms, so
// connections keep meeting the upstream's timeout. needle must learn it (its default guess,
// 1.5 s, is far too long) without a single client-visible failure, and once learned it must
// never reuse a connection at or past the learned limit.
TEST(RacePool, LearnsTheIdleTimeoutWithoutAHint) {
  ConnectionScript script;
  script.close_when_idle(300ms, CloseHow::fin);
  ScriptedUpstream upstream(script);
  DelayLine line(upstream.port(), 1ms);
  RaceConfig cfg;
  cfg.hosts = {line.port()};
  auto needle = start_needle(cfg);

  DriveOptions o;
  o.port = needle->port();
  o.clients = 8;
  o.requests_per_client = 63;
  o.gap_min = 250ms;
  o.gap_max = 350ms;
  // Watches /pools for the moment needle first learns the timeout (the first idle close it
  // sees), then, once the access log has been flushed (every 100 ms), notes how many lines were
  // written: every request logged after those started after the learning.
  std::atomic<bool> done{false};
  std::atomic<long> lines_when_learned{-1};
  std::atomic<long long> first_limit{-1};  // the limit right after the first learning
  std::thread watcher([&] {
    while (!done.load()) {
      auto pool = pool_snapshot(cfg.admin_port);
      if (pool && (*pool)["learned_ms"].type == Json::Type::number) {
        first_limit = (*pool)["effective_limit_ms"].integer();
        std::this_thread::sleep_for(250ms);
        lines_when_learned = static_cast<long>(needle->access_log_lines().size());
        return;
      }
      std::this_thread::sleep_for(20ms);
    }
  });
  const auto started = Clock::now();
  const DriveResult result = drive(o);
  done = true;
  watcher.join();
  const auto took = std::chrono::duration_cast<milliseconds>(Clock::now() - started);
  EXPECT_EQ(result.sent, 504);
  EXPECT_EQ(result.failed(), 0) << describe(result);
  EXPECT_LT(took, 28s);

  auto pool = pool_snapshot(cfg.admin_port);
  ASSERT_TRUE(pool.has_value());
  EXPECT_EQ((*pool)["limit_source"].str(), "learned");
  ASSERT_TRUE((*pool)["learned_ms"].type == Json::Type::number) << admin_get(cfg.admin_port, "/pools");
  const long long learned = (*pool)["learned_ms"].integer();
  const long long limit = (*pool)["effective_limit_ms"].integer();
  // The upstream closes at 300 ms. Learning keeps the smallest close age seen, and a stall on the
  // path (a loaded machine delaying the response but not the FIN) makes a close look earlier,
  // never later: a learned value below 300 costs reuse, not requests; above it would be unsafe.
  EXPECT_GE(learned, 100);
  EXPECT_LE(learned, 330);
  EXPECT_EQ(limit, learned - 100);

  const auto log = wait_access_log(*needle, 504, 5000ms);
  ASSERT_EQ(log.size(), 504u);
  const auto reused = reused_attempts(log);
  EXPECT_GT(reused.size(), 100u) << "the pool should still be reusing connections";
  // Every POST that was answered came back 2xx; none was sent down a connection the upstream had
  // closed (a non-replayable request only reuses below a proven-safe idle age).
  size_t late = 0, post_races = 0;
  for (const auto& a : reused) {
    // The upstream closes at 300 ms: no request may reach a connection that old.
    // A request that cannot be replayed never goes down a connection idle for as long as the
    // upstream's timeout (a GET may, before learning, in the FIN's flight time: it is retried).
    if (a.method == "POST") EXPECT_LT(a.idle_age_ms, 300) << "line " << a.line;
    // Once learned, the learned limit holds (limits only shrink: the first one bounds them all).
    if (lines_when_learned >= 0 && static_cast<long>(a.line) >= lines_when_learned &&
        a.idle_age_ms >= first_limit) {
      ++late;
    }
    if (a.method == "POST" && a.cause == "reset_before_response_on_reused") ++post_races;
  }
  EXPECT_GE(lines_when_learned.load(), 0) << "needle never saw the upstream close";
  EXPECT_GT(first_limit.load(), 0);
  EXPECT_LE(first_limit.load(), 230);  // ~300 ms learned - 100 ms margin
  EXPECT_EQ(late, 0u) << "reused at or past the learned limit " << first_limit << " ms after line "
                      << lines_when_learned.load();
  EXPECT_EQ(post_races, 0u);
  std::cout << "[ info ] reused attempts " << reused.size() << ", races hidden by a retry "
            << count_attempt_cause(log, "reset_before_response_on_reused") << ", upstream "
            << "connections " << upstream.connections_accepted() << ", learned " << learned
            << " ms (first limit " << first_limit.load() << " ms) after " << lines_when_learned.load() << " requests, took " << took.count() << " ms\n";
}

// Back-to-back requests on one client connection: each checkout finds the pooled connection idle
// for far less than 100 ms, with nothing arrived since its response left it empty, so the real
// binary hands it out without the recv(MSG_PEEK) probe (docs/decisions/0004): TCP_INQ on the
// upstream socket, draining response reads and the reactor's flag working together. /pools
// counts the skipped probes (a few may be probed if the machine stalls a request past 100 ms).
TEST(RacePool, BackToBackReusesSkipTheCheckoutProbe) {
  ConnectionScript script;
  script.otherwise.keep_alive_hint = 5;
  ScriptedUpstream upstream(script);
  RaceConfig cfg;
  cfg.hosts = {upstream.port()};
  auto needle = start_needle(cfg);

  HttpClient client;
  ASSERT_TRUE(client.connect(needle->port()));
  for (int i = 0; i < 20; ++i) {
    auto r = client.get("/hello");
    ASSERT_TRUE(r.has_value()) << to_string(client.last_error());
    ASSERT_EQ(r->status, 200);
  }
  auto pool = pool_snapshot(cfg.admin_port);
  ASSERT_TRUE(pool.has_value());
  EXPECT_EQ((*pool)["opened"].integer(), 1) << admin_get(cfg.admin_port, "/pools");
  EXPECT_EQ((*pool)["reused"].integer(), 19) << admin_get(cfg.admin_port, "/pools");
  EXPECT_GE((*pool)["probes_skipped"].integer(), 10) << admin_get(cfg.admin_port, "/pools");
  EXPECT_LE((*pool)["probes_skipped"].integer(), 19);
}

// After a response the upstream closes the idle connection at 200 ms (FIN). The idle watch
// must evict it within 10 ms: at 215 ms after the client got its response, /pools shows no
// idle connection and one upstream_closed_idle eviction, and the metric says the same.
TEST(RacePool, IdleFinEvictsWithin10ms) {
  ConnectionScript script;
  script.close_when_idle(200ms, CloseHow::fin);
  ScriptedUpstream upstream(script);
  RaceConfig cfg;
  cfg.hosts = {upstream.port()};
  auto needle = start_needle(cfg);

  HttpClient client;
  ASSERT_TRUE(client.connect(needle->port()));
  auto r = client.get("/hello");
  const auto t0 = Clock::now();
  ASSERT_TRUE(r.has_value()) << to_string(client.last_error());
  ASSERT_EQ(r->status, 200);

  std::this_thread::sleep_until(t0 + 100ms);
  auto before = pool_snapshot(cfg.admin_port);
  ASSERT_TRUE(before.has_value());
  EXPECT_EQ((*before)["idle"].integer(), 1) << "the connection should be pooled at 100 ms";
  EXPECT_EQ((*before)["evicted"]["upstream_closed_idle"].integer(), 0);

  std::this_thread::sleep_until(t0 + 215ms);
  auto after = pool_snapshot(cfg.admin_port);
  ASSERT_TRUE(after.has_value());
  EXPECT_EQ((*after)["idle"].integer(), 0) << admin_get(cfg.admin_port, "/pools");
  EXPECT_EQ((*after)["evicted"]["upstream_closed_idle"].integer(), 1)
      << admin_get(cfg.admin_port, "/pools");
  EXPECT_GE((*after)["learned_ms"].integer(), 190);
  EXPECT_LE((*after)["learned_ms"].integer(), 215);

  const std::string metrics = admin_get(cfg.admin_port, "/metrics");
  bool found = false;
  for (size_t at = metrics.find("needle_upstream_connections_evicted_total{");
       at != std::string::npos;
       at = metrics.find("needle_upstream_connections_evicted_total{", at + 1)) {
    const std::string line = metrics.substr(at, metrics.find('\n', at) - at);
    if (line.find("upstream_closed_idle") != std::string::npos) {
      found = true;
      EXPECT_EQ(line.substr(line.rfind(' ') + 1), "1") << line;
    }
  }
  EXPECT_TRUE(found) << metrics;
}

}  // namespace
}  // namespace needle::test::race
