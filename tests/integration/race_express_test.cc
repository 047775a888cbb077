// The 502 story with the real Express app (examples/app) behind needle's default cluster config
// (no idle_timeout): several clients send GET /hello and POST /orders with gaps around the app's
// keep-alive timeout. Not one response may be anything but 2xx, nor may a connection fail.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "race_support.h"
#include "support/express_fixture.h"

namespace needle::test::race {
namespace {

using namespace std::chrono_literals;

struct ExpressRun {
  DriveResult result;
  std::vector<Json> log;
  std::optional<Json> pool;
  std::optional<AppStats> stats;
};

ExpressRun run_against_express(int keep_alive_ms, int clients, int per_client, milliseconds gap_min,
                               milliseconds gap_max) {
  ensure_example_app_dependencies();
  ExpressFixture app(ExpressOptions{.keep_alive_timeout_ms = keep_alive_ms});
  RaceConfig cfg;
  cfg.hosts = {app.port()};
  auto needle = start_needle(cfg);

  DriveOptions o;
  o.port = needle->port();
  o.clients = clients;
  o.requests_per_client = per_client;
  o.gap_min = gap_min;
  o.gap_max = gap_max;
  o.get_path = "/hello";
  o.post_path = "/orders";
  o.post_body = "{\"item\":\"needle\",\"qty\":1}";
  ExpressRun run;
  run.result = drive(o);
  run.log = wait_access_log(*needle, static_cast<size_t>(clients * per_client), 5000ms);
  run.pool = pool_snapshot(cfg.admin_port);
  run.stats = app.stats();
  return run;
}

size_t count_reused(const std::vector<Json>& log, long long* max_idle_age) {
  size_t n = 0;
  *max_idle_age = 0;
  for (const Json& line : log) {
    for (const Json& a : line["attempts"].items) {
      if (!a["reused"].b) continue;
      ++n;
      *max_idle_age = std::max(*max_idle_age, a["idle_age_ms"].integer());
    }
  }
  return n;
}

// keepAliveTimeout 300 ms: Node says "Keep-Alive: timeout=0" (it floors to seconds) and closes
// idle connections about 1 s late (~1.3 s). 8 clients x 25 requests, 250-350 ms apart.
TEST(RaceExpress, ShortKeepAliveAppGetsNoErrors) {
  const ExpressRun run = run_against_express(300, 8, 25, 250ms, 350ms);
  EXPECT_EQ(run.result.sent, 200);
  EXPECT_EQ(run.result.failed(), 0) << describe(run.result);
  EXPECT_EQ(run.result.ok_2xx, 200);
  ASSERT_EQ(run.log.size(), 200u);
  for (const Json& line : run.log) {
    EXPECT_GE(line["status"].integer(), 200);
    EXPECT_LT(line["status"].integer(), 300) << line["cause"].str();
  }
  ASSERT_TRUE(run.pool.has_value());
  // timeout=0 means "do not reuse": the hint wins over the 1.5 s default guess.
  EXPECT_EQ((*run.pool)["limit_source"].str(), "hint");
  long long max_age = 0;
  const size_t reused = count_reused(run.log, &max_age);
  EXPECT_EQ(reused, 0u) << "max idle age " << max_age;
  std::cout << "[ info ] app connections " << (run.stats ? run.stats->connections : 0)
            << ", reused attempts " << reused << "\n";
}

// keepAliveTimeout 1500 ms: "Keep-Alive: timeout=1", real close at ~2.5 s; needle's limit is
// 900 ms. 16 clients x 13 requests (208), 1.4-1.6 s apart: the pool is shared, so connections
// come back at every idle age, below and above the limit.
TEST(RaceExpress, HintedAppGetsNoErrorsAndReuseStaysUnderTheLimit) {
  const ExpressRun run = run_against_express(1500, 16, 13, 1400ms, 1600ms);
  EXPECT_EQ(run.result.sent, 208);
  EXPECT_EQ(run.result.failed(), 0) << describe(run.result);
  ASSERT_EQ(run.log.size(), 208u);
  ASSERT_TRUE(run.pool.has_value());
  EXPECT_EQ((*run.pool)["limit_source"].str(), "hint");
  EXPECT_EQ((*run.pool)["effective_limit_ms"].integer(), 900);
  long long max_age = 0;
  const size_t reused = count_reused(run.log, &max_age);
  EXPECT_LT(max_age, 900);
  std::cout << "[ info ] app connections " << (run.stats ? run.stats->connections : 0)
            << ", reused attempts " << reused << ", max reused idle age " << max_age << " ms\n";
}

}  // namespace
}  // namespace needle::test::race
