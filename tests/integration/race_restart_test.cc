// Learning that survives restarts (DESIGN.md rule 4, docs/decisions/0006-idle-close-evidence.md):
// an upstream that closes idle connections for a reason other than its idle timeout (a restart,
// a graceful shutdown, a per-connection request cap, a redeploy with another timeout) must not
// turn pooling off. Each scenario measures the reuse ratio under steady load before the event
// and requires it back within a few seconds after, with 0 failed requests across the event.
#include <gtest/gtest.h>

#include <csignal>
#include <iostream>
#include <memory>
#include <string>
#include <thread>

#include "race_support.h"
#include "support/child_process.h"
#include "support/nginx_fixture.h"
#include "support/scripted_upstream.h"
#include "support/time_scale.h"

namespace needle::test::race {
namespace {

using namespace std::chrono_literals;

struct PoolCounts {
  long long opened = 0, reused = 0;
};

PoolCounts pool_counts(int admin_port) {
  auto pool = pool_snapshot(admin_port);
  if (!pool) return {};
  return {(*pool)["opened"].integer(), (*pool)["reused"].integer()};
}

// Reused checkouts over all checkouts between two readings.
double reuse_ratio(const PoolCounts& before, const PoolCounts& after) {
  const double reused = static_cast<double>(after.reused - before.reused);
  const double opened = static_cast<double>(after.opened - before.opened);
  return reused + opened > 0 ? reused / (reused + opened) : 0.0;
}

// Four clients, a request every 5-15 ms each, GET and POST alternating: connections stay
// busy or idle for milliseconds, so reuse is near 1 whenever the pool's limit allows it.
DriveResult steady_load(int port, int requests_per_client, uint32_t seed) {
  DriveOptions o;
  o.port = port;
  o.clients = 4;
  o.requests_per_client = requests_per_client;
  o.gap_min = 5ms;
  o.gap_max = 15ms;
  o.seed = seed;
  // Replayable POSTs: without a key a POST only reuses a connection below a proven-safe age
  // (non_replayable_limit), which would halve the ratio for a reason this test is not about.
  o.post_headers.emplace_back("Idempotency-Key", "race-restart");
  return drive(o);
}

// One scenario's bookkeeping: every load round's result adds up to the failure total.
struct Scenario {
  int needle_port = 0;
  int admin_port = 0;
  DriveResult total;
  uint32_t seed = 1;

  double round(int requests_per_client = 40) {
    const PoolCounts before = pool_counts(admin_port);
    DriveResult r = steady_load(needle_port, requests_per_client, ++seed);
    const PoolCounts after = pool_counts(admin_port);
    total.sent += r.sent;
    total.ok_2xx += r.ok_2xx;
    total.non_2xx += r.non_2xx;
    total.client_errors += r.client_errors;
    for (auto& f : r.failures) {
      if (total.failures.size() < 10) total.failures.push_back(std::move(f));
    }
    return reuse_ratio(before, after);
  }

  // Load rounds until the ratio is back to `target` or the budget is spent; the seconds it took.
  std::optional<double> recover(double target, std::chrono::milliseconds budget) {
    const auto start = Clock::now();
    while (Clock::now() - start < scaled(budget)) {
      const double ratio = round(25);
      std::cout << "[ reuse    ] " << ratio << " after "
                << std::chrono::duration<double>(Clock::now() - start).count() << " s\n";
      if (ratio >= target) return std::chrono::duration<double>(Clock::now() - start).count();
    }
    return std::nullopt;
  }
};

// ---- nginx restarted right after the load ------------------------------------------------------

// SIGQUIT (graceful: nginx closes its idle keep-alive connections at once and finishes the
// busy ones), wait for the exit, start a new nginx on the same config and port.
std::unique_ptr<ChildProcess> restart_nginx(NginxFixture& nginx) {
  nginx.process().terminate(SIGQUIT);
  EXPECT_TRUE(nginx.process().wait_exit(scaled(5000ms)).has_value()) << "nginx did not quit";
  ChildOptions child;
  child.name = "nginx-restarted";
  child.output_dir = nginx.dir();
  child.argv = {nginx_binary(), "-p", nginx.dir().string(), "-c", nginx.config_path().string()};
  auto restarted = std::make_unique<ChildProcess>(child);
  const auto deadline = Clock::now() + scaled(5000ms);
  while (Clock::now() < deadline) {
    HttpClient probe;
    if (probe.connect(nginx.port())) break;
    std::this_thread::sleep_for(5ms);
  }
  return restarted;
}

void nginx_restart_scenario(const std::string& keepalive_timeout, bool expect_hint) {
  NginxAppServer app;
  app.routes = {{"/get", "ok\n"}, {"/post", "ok\n"}};
  app.keepalive_timeout = keepalive_timeout;
  NginxFixture nginx(app);
  RaceConfig cfg;
  cfg.hosts = {nginx.port()};
  auto needle = start_needle(cfg);
  Scenario s{needle->port(), cfg.admin_port};

  s.round(10);  // warm-up: the first connections are opened here
  const double before = s.round();
  std::cout << "[ reuse    ] before the restart: " << before << "\n";
  ASSERT_GT(before, 0.8) << describe(s.total) << admin_get(cfg.admin_port, "/pools");

  // The upstream restarts while needle's idle connections are tens of ms old (as a deploy does).
  std::this_thread::sleep_for(30ms);
  auto restarted = restart_nginx(nginx);
  std::this_thread::sleep_for(100ms);  // the idle watch has seen every close
  auto pool = pool_snapshot(cfg.admin_port);
  ASSERT_TRUE(pool.has_value());
  std::cout << "[ pool     ] after the restart: " << admin_get(cfg.admin_port, "/pools") << "\n";

  auto took = s.recover(before * 0.9, 5000ms);
  EXPECT_TRUE(took.has_value()) << "reuse did not come back: "
                                << admin_get(cfg.admin_port, "/pools");
  EXPECT_EQ(s.total.failed(), 0) << describe(s.total);
  pool = pool_snapshot(cfg.admin_port);
  ASSERT_TRUE(pool.has_value());
  EXPECT_FALSE((*pool)["reuse_stopped"].b);
  EXPECT_GE((*pool)["effective_limit_ms"].integer(), 100);
  if (expect_hint) EXPECT_EQ((*pool)["hint_ms"].integer(), 10000);
}

TEST(RaceRestart, NginxRestartWithoutHintDoesNotStopReuse) {
  nginx_restart_scenario("10s", false);
}

TEST(RaceRestart, NginxRestartWithHintDoesNotStopReuse) {
  nginx_restart_scenario("10s 10s", true);
}

// ---- a per-connection request cap ----------------------------------------------------------

// The upstream closes every connection right after its 5th response, without saying so. needle
// must learn the cap (retire connections at 5 requests), not a timeout of a few ms.
TEST(RaceRestart, RequestCapIsLearnedAsACapNotATimeout) {
  ConnectionScript script;
  for (int i = 0; i < 4; ++i) script.requests.push_back(ScriptedStep::respond(200, "ok\n"));
  ScriptedStep last = ScriptedStep::respond(200, "ok\n");
  last.close_after_response = true;
  script.requests.push_back(last);
  ScriptedUpstream upstream(script);
  RaceConfig cfg;
  cfg.hosts = {upstream.port()};
  auto needle = start_needle(cfg);
  Scenario s{needle->port(), cfg.admin_port};

  s.round(20);  // the closes happen here; the evidence accumulates
  auto took = s.recover(0.7, 5000ms);  // 4 of 5 requests reuse once the cap is known
  EXPECT_TRUE(took.has_value()) << admin_get(cfg.admin_port, "/pools");
  EXPECT_EQ(s.total.failed(), 0) << describe(s.total);
  auto pool = pool_snapshot(cfg.admin_port);
  ASSERT_TRUE(pool.has_value());
  EXPECT_EQ((*pool)["request_cap"].integer(), 5) << admin_get(cfg.admin_port, "/pools");
  EXPECT_FALSE((*pool)["reuse_stopped"].b);
}

// ---- an idle timeout that drops and rises again -----------------------------------------------

// Redeploys: the upstream's idle timeout is 600 ms, then 250 ms for connections accepted after
// the first redeploy, then 600 ms again. Between load rounds the clients pause 700 ms, so idle
// connections meet whichever timeout is current. needle follows it down (no failure) and back up.
TEST(RaceRestart, IdleTimeoutDropsAndRisesAgain) {
  ConnectionScript script;
  script.close_when_idle(600ms);
  ScriptedUpstream upstream(script);
  RaceConfig cfg;
  cfg.hosts = {upstream.port()};
  auto needle = start_needle(cfg);
  Scenario s{needle->port(), cfg.admin_port};

  s.round(10);  // warm-up
  const double before = s.round();
  ASSERT_GT(before, 0.8) << admin_get(cfg.admin_port, "/pools");
  for (auto timeout : {250ms, 600ms}) {
    ConnectionScript next;
    next.close_when_idle(timeout);
    upstream.set_script(next);
    std::this_thread::sleep_for(700ms);  // every pooled connection meets its upstream's timeout
    s.round(10);
    std::this_thread::sleep_for(700ms);
    auto took = s.recover(before * 0.9, 5000ms);
    EXPECT_TRUE(took.has_value()) << "timeout " << timeout.count() << " ms: "
                                  << admin_get(cfg.admin_port, "/pools");
  }
  EXPECT_EQ(s.total.failed(), 0) << describe(s.total);
  auto pool = pool_snapshot(cfg.admin_port);
  ASSERT_TRUE(pool.has_value());
  EXPECT_FALSE((*pool)["reuse_stopped"].b);
}

}  // namespace
}  // namespace needle::test::race
