// Upstream health through the real binary (issue 20): active health checks, outlier detection
// and panic mode against real nginx upstreams and scripted ones.
//   - a host killed under load: no GET fails (retried on another host), and once the check
//     has taken it out no attempt goes to it at all;
//   - a host restarted: back in rotation after healthy_threshold passing checks;
//   - every host down: panic mode (metric and log line), then 503 no_healthy_host;
//   - a host answering 500s: ejected after consecutive_5xx, back after base_ejection_time;
//   - the health check's kept-alive connection closed by the host while idle: the idle age is
//     in /pools and reaches the workers' idle-timeout estimators.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "race_support.h"
#include "support/eventually.h"
#include "support/free_port.h"
#include "support/http_client.h"
#include "support/json_reader.h"
#include "support/nginx_fixture.h"
#include "support/scripted_upstream.h"
#include "support/time_scale.h"

namespace needle::test {
namespace {

using namespace std::chrono_literals;
using namespace race;

constexpr std::string_view kFastChecks = R"(
[cluster.app.health_check]
path = "/healthz"
interval = "200ms"
timeout = "150ms"
healthy_threshold = 2
unhealthy_threshold = 2
)";

NginxAppServer app_server(std::string keepalive_timeout = "75s") {
  NginxAppServer app;
  app.routes = {{"/healthz", "ok\n"}, {"/get", "hello\n"}};
  app.keepalive_timeout = std::move(keepalive_timeout);
  return app;
}

// The "health" entry of `host` in /pools, or a null Json.
Json host_health(int admin_port, const std::string& host) {
  auto doc = JsonReader::parse(admin_get(admin_port, "/pools"));
  if (!doc) return {};
  for (const Json& cluster : (*doc)["health"].items) {
    for (const Json& h : cluster["hosts"].items) {
      if (h["host"].str() == host) return h;
    }
  }
  return {};
}

bool state_is(int admin_port, const std::string& host, std::string_view state) {
  return host_health(admin_port, host)["state"].str() == state;
}

// Starts nginx again on its config (same port) after it was stopped.
std::unique_ptr<ChildProcess> start_again(NginxFixture& nginx) {
  ChildOptions child;
  child.name = "nginx-again";
  child.output_dir = nginx.dir();
  child.argv = {nginx_binary(), "-p", nginx.dir().string(), "-c", nginx.config_path().string()};
  auto process = std::make_unique<ChildProcess>(child);
  EXPECT_TRUE(wait_for_port(nginx.port(), scaled(5000ms), process.get()));
  return process;
}

// `clients` threads, each sending `requests` GETs on its own keep-alive connection with a
// `gap` between them; a failure is a missing response or a non-2xx status.
DriveResult drive_gets(int port, int clients, int requests, milliseconds gap) {
  std::mutex mutex;
  DriveResult total;
  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&, c] {
      HttpClient client;
      DriveResult mine;
      for (int i = 0; i < requests; ++i) {
        std::this_thread::sleep_for(gap);
        ++mine.sent;
        if (!client.connected() && !client.connect(port)) {
          ++mine.client_errors;
          mine.failures.push_back("connect failed");
          continue;
        }
        auto r = client.get("/get", {}, 5000ms);
        if (!r) {
          ++mine.client_errors;
          mine.failures.push_back("client " + std::to_string(c) + " #" + std::to_string(i) + ": " +
                                  to_string(client.last_error()));
          client.close();
          continue;
        }
        if (r->status == 200) {
          ++mine.ok_2xx;
        } else {
          ++mine.non_2xx;
          mine.failures.push_back(std::to_string(r->status) + " " + r->body);
        }
        if (!r->keep_alive) client.close();
      }
      std::lock_guard lock(mutex);
      total.sent += mine.sent;
      total.ok_2xx += mine.ok_2xx;
      total.non_2xx += mine.non_2xx;
      total.client_errors += mine.client_errors;
      for (auto& f : mine.failures) total.failures.push_back(std::move(f));
    });
  }
  for (auto& t : threads) t.join();
  return total;
}

// SIGTERM: nginx's fast shutdown, connections closed at once (a crash, as the clients see it).
void kill_nginx(NginxFixture& nginx) {
  nginx.process().terminate(SIGTERM);
  ASSERT_TRUE(nginx.process().wait_exit(scaled(5000ms)).has_value()) << "nginx did not exit";
}

TEST(UpstreamHealth, HostKilledUnderLoadFailsNoGetAndIsThenAvoided) {
  NginxFixture a(app_server()), b(app_server()), c(app_server());
  RaceConfig cfg;
  cfg.hosts = {a.port(), b.port(), c.port()};
  cfg.cluster_extra = std::string(kFastChecks) +
                      "[cluster.app.outlier_detection]\nconsecutive_gateway_failure = 2\n";
  auto needle = start_needle(cfg);
  const std::string killed = host_name(b.port());
  ASSERT_TRUE(eventually(scaled(3000ms), [&] {
    return state_is(cfg.admin_port, killed, "healthy");
  })) << admin_get(cfg.admin_port, "/pools");

  DriveResult result;
  std::thread driver([&] { result = drive_gets(needle->port(), 4, 60, 10ms); });
  std::this_thread::sleep_for(300ms);
  kill_nginx(b);
  driver.join();
  EXPECT_EQ(result.failed(), 0) << describe(result);
  EXPECT_GT(result.ok_2xx, 0);

  // Out of rotation (the check, or outlier detection first): from then on no attempt goes to it.
  ASSERT_TRUE(eventually(scaled(3000ms), [&] {
    return !host_health(cfg.admin_port, killed)["state"].str().empty() &&
           !state_is(cfg.admin_port, killed, "healthy");
  })) << admin_get(cfg.admin_port, "/pools");
  const size_t before = needle->access_log_lines().size();
  for (int i = 0; i < 30; ++i) {
    auto r = get(needle->port(), "/get");
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->status, 200);
  }
  const auto lines = wait_access_log(*needle, before + 30);
  ASSERT_GE(lines.size(), before + 30);
  for (size_t i = before; i < lines.size(); ++i) {
    const Json& attempts = lines[i]["attempts"];
    EXPECT_EQ(attempts.size(), 1u) << needle->access_log_lines()[i];
    for (const Json& attempt : attempts.items) EXPECT_NE(attempt["upstream"].str(), killed);
  }
  EXPECT_NE(needle->operational_log().find("upstream " + killed + " of cluster app"),
            std::string::npos)
      << needle->operational_log();
}

TEST(UpstreamHealth, RestartedHostRejoinsAfterHealthyThreshold) {
  NginxFixture a(app_server()), b(app_server());
  RaceConfig cfg;
  cfg.hosts = {a.port(), b.port()};
  cfg.cluster_extra = std::string(kFastChecks);
  auto needle = start_needle(cfg);
  const std::string host_b = host_name(b.port());
  ASSERT_TRUE(
      eventually(scaled(3000ms), [&] { return state_is(cfg.admin_port, host_b, "healthy"); }));

  kill_nginx(b);
  ASSERT_TRUE(eventually(scaled(3000ms), [&] {
    return state_is(cfg.admin_port, host_b, "unhealthy");
  })) << admin_get(cfg.admin_port, "/pools");
  EXPECT_TRUE(needle->wait_for_log("upstream " + host_b + " of cluster app is unhealthy", 1000ms));
  const long long failed_checks = host_health(cfg.admin_port, host_b)["checks_failed"].integer();
  EXPECT_GE(failed_checks, 2);

  auto again = start_again(b);
  const auto restarted_at = Clock::now();
  ASSERT_TRUE(eventually(scaled(3000ms), [&] {
    return state_is(cfg.admin_port, host_b, "healthy");
  })) << admin_get(cfg.admin_port, "/pools");
  // healthy_threshold = 2 passes, 200 ms apart: not before the second check.
  EXPECT_GE(Clock::now() - restarted_at, 150ms);
  EXPECT_TRUE(needle->wait_for_log("upstream " + host_b + " of cluster app is healthy: 2", 1000ms))
      << needle->operational_log();

  // Round robin reaches it again.
  const size_t before = needle->access_log_lines().size();
  for (int i = 0; i < 6; ++i) {
    auto r = get(needle->port(), "/get");
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->status, 200);
  }
  const auto lines = wait_access_log(*needle, before + 6);
  int on_b = 0;
  for (size_t i = before; i < lines.size(); ++i) {
    for (const Json& attempt : lines[i]["attempts"].items)
      on_b += attempt["upstream"].str() == host_b;
  }
  EXPECT_GE(on_b, 2);
}

TEST(UpstreamHealth, EveryHostDownIsPanicModeThen503NoHealthyHost) {
  RaceConfig cfg;
  cfg.hosts = {free_port(), free_port()};  // nothing listens
  cfg.cluster_extra = std::string(kFastChecks);
  auto needle = start_needle(cfg);
  EXPECT_TRUE(needle->wait_for_log("cluster app: panic mode: every host is out", scaled(3000ms)))
      << needle->operational_log();
  ASSERT_TRUE(eventually(scaled(2000ms), [&] {
    return admin_get(cfg.admin_port, "/metrics")
               .find("needle_upstream_panic_mode{cluster=\"app\"} 1") != std::string::npos;
  })) << admin_get(cfg.admin_port, "/metrics");

  auto r = get(needle->port(), "/get");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 503);
  const auto lines = wait_access_log(*needle, 1);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0]["cause"].str(), "no_healthy_host") << needle->access_log();
  // Panic mode tried the hosts anyway (they might have answered).
  EXPECT_GE(lines[0]["attempts"].size(), 1u);
  EXPECT_NE(lines[0]["detail"].str().find("panic mode"), std::string::npos);
  EXPECT_NE(admin_get(cfg.admin_port, "/metrics")
                .find("needle_upstream_panic_picks_total{cluster=\"app\"}"),
            std::string::npos);
}

TEST(UpstreamHealth, HostAnswering500sIsEjectedThenComesBack) {
  ConnectionScript failing;
  failing.otherwise = ScriptedStep::respond(500, "broken\n");
  failing.otherwise.connection_close = true;  // every request on a new connection
  ScriptedUpstream bad(failing);
  NginxFixture good(app_server());
  RaceConfig cfg;
  cfg.hosts = {bad.port(), good.port()};
  cfg.cluster_extra = R"(
[cluster.app.outlier_detection]
consecutive_5xx = 3
base_ejection_time = "1s"
)";
  auto needle = start_needle(cfg);
  const std::string bad_host = host_name(bad.port());

  // Round robin: every other request reaches the failing host; its 500s are relayed (a 5xx
  // answer is not retried) until the third in a row ejects it.
  int errors = 0;
  for (int i = 0; i < 6; ++i) {
    auto r = get(needle->port(), "/get");
    ASSERT_TRUE(r.has_value());
    errors += r->status == 500;
  }
  EXPECT_EQ(errors, 3);
  ASSERT_TRUE(eventually(scaled(1000ms), [&] {
    return state_is(cfg.admin_port, bad_host, "ejected");
  })) << admin_get(cfg.admin_port, "/pools");
  const auto ejected_at = Clock::now();
  for (int i = 0; i < 10; ++i) {
    auto r = get(needle->port(), "/get");
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->status, 200) << "request " << i << " while the host is ejected";
  }
  EXPECT_NE(admin_get(cfg.admin_port, "/metrics")
                .find("needle_upstream_ejections_total{cluster=\"app\",host=\"" + bad_host +
                      "\",reason=\"consecutive_5xx\"} 1"),
            std::string::npos)
      << admin_get(cfg.admin_port, "/metrics");
  EXPECT_TRUE(needle->wait_for_log("ejected for 1000 ms: consecutive_5xx (ejection #1)", 1000ms))
      << needle->operational_log();

  // Back after base_ejection_time, now answering 200.
  ConnectionScript fixed;
  fixed.otherwise = ScriptedStep::respond(200, "fixed\n");
  bad.set_script(fixed);
  ASSERT_TRUE(eventually(scaled(3000ms), [&] {
    return state_is(cfg.admin_port, bad_host, "healthy");
  })) << admin_get(cfg.admin_port, "/pools");
  EXPECT_GE(Clock::now() - ejected_at, 800ms);  // ejected_at is a little late
  int fixed_answers = 0;
  for (int i = 0; i < 4; ++i) {
    auto r = get(needle->port(), "/get");
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->status, 200);
    fixed_answers += r->body == "fixed\n";
  }
  EXPECT_EQ(fixed_answers, 2);
}

TEST(UpstreamHealth, CheckerIdleCloseIsShownAndReachesThePools) {
  NginxFixture nginx(app_server("1s"));  // closes idle keep-alive connections at 1 s
  RaceConfig cfg;
  cfg.hosts = {nginx.port()};
  cfg.cluster_extra = R"(
[cluster.app.health_check]
path = "/healthz"
interval = "3s"
timeout = "1s"
)";
  auto needle = start_needle(cfg);
  const std::string host = host_name(nginx.port());
  ASSERT_TRUE(eventually(scaled(4000ms), [&] {
    return host_health(cfg.admin_port, host)["checker_idle_close_ms"].type == Json::Type::number;
  })) << admin_get(cfg.admin_port, "/pools");
  const long long age = host_health(cfg.admin_port, host)["checker_idle_close_ms"].integer();
  EXPECT_GE(age, 950);
  EXPECT_LT(age, scaled_ms(1500));
  // The workers' estimators took it as evidence: the pool learned the timeout without a request.
  ASSERT_TRUE(eventually(scaled(1000ms), [&] {
    auto pool = pool_snapshot(cfg.admin_port, host);
    return pool && (*pool)["learned_ms"].type == Json::Type::number;
  })) << admin_get(cfg.admin_port, "/pools");
  auto pool = pool_snapshot(cfg.admin_port, host);
  EXPECT_NEAR(static_cast<double>((*pool)["learned_ms"].integer()), static_cast<double>(age), 1.0);
  EXPECT_EQ((*pool)["last_close_verdict"].str(), "idle_timeout");
  EXPECT_EQ((*pool)["health"].str(), "healthy");
  EXPECT_NE(admin_get(cfg.admin_port, "/metrics")
                .find("needle_upstream_health_check_idle_close_seconds{cluster=\"app\",host=\"" +
                      host + "\"}"),
            std::string::npos);
}

}  // namespace
}  // namespace needle::test
