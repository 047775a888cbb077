// The upstream health families on /metrics and the "health" part of /pools (issue 20).
#include <unistd.h>

#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "observe/health_snapshot.h"
#include "observe/prometheus_text.h"
#include "promtool_runner.h"

namespace needle::observe {
namespace {

std::vector<ClusterHealthSnapshot> sample_health() {
  ClusterHealthSnapshot c;
  c.cluster = "app";
  c.active_checks = true;
  c.outlier_detection = true;
  c.panic = false;
  c.panic_picks = 4;
  HostHealthSnapshot ok;
  ok.host = "10.0.0.1:3000";
  ok.checks_passed = 7;
  ok.checker_idle_close_ms = 5003;
  ok.checker_idle_closes = 2;
  ok.ejections = {{"consecutive_5xx", 0}, {"consecutive_gateway_failure", 1}};
  HostHealthSnapshot out;
  out.host = "10.0.0.2:3000";
  out.failed_check = true;
  out.checks_failed = 3;
  out.ejections = {{"consecutive_5xx", 2}, {"consecutive_gateway_failure", 0}};
  c.hosts = {ok, out};
  return {c};
}

bool has_line(const std::string& text, const std::string& line) {
  return text.find("\n" + line + "\n") != std::string::npos;
}

TEST(HealthText, RendersEveryFamily) {
  ScrapeExtras extras;
  extras.health = sample_health();
  const std::string text = render_prometheus({}, extras);
  EXPECT_TRUE(
      has_line(text, R"(needle_upstream_host_in_rotation{cluster="app",host="10.0.0.1:3000"} 1)"))
      << text;
  EXPECT_TRUE(
      has_line(text, R"(needle_upstream_host_in_rotation{cluster="app",host="10.0.0.2:3000"} 0)"));
  EXPECT_TRUE(has_line(
      text,
      R"(needle_upstream_host_out{cluster="app",host="10.0.0.2:3000",reason="failed_check"} 1)"));
  EXPECT_TRUE(has_line(
      text, R"(needle_upstream_host_out{cluster="app",host="10.0.0.2:3000",reason="ejected"} 0)"));
  EXPECT_TRUE(has_line(
      text,
      R"(needle_upstream_ejections_total{cluster="app",host="10.0.0.2:3000",reason="consecutive_5xx"} 2)"));
  EXPECT_TRUE(has_line(
      text,
      R"(needle_upstream_health_checks_total{cluster="app",host="10.0.0.1:3000",result="pass"} 7)"));
  EXPECT_TRUE(has_line(
      text,
      R"(needle_upstream_health_check_idle_close_seconds{cluster="app",host="10.0.0.1:3000"} 5.003)"));
  EXPECT_EQ(
      text.find("needle_upstream_health_check_idle_close_seconds{cluster=\"app\",host=\"10.0.0.2"),
      std::string::npos);
  EXPECT_TRUE(has_line(text, R"(needle_upstream_panic_mode{cluster="app"} 0)"));
  EXPECT_TRUE(has_line(text, R"(needle_upstream_panic_picks_total{cluster="app"} 4)"));
}

TEST(HealthText, AbsentWithoutHealth) {
  EXPECT_EQ(render_prometheus({}).find("needle_upstream_panic_mode"), std::string::npos);
  EXPECT_EQ(render_pools_json({}), "{\"workers\":[]}\n");
}

TEST(HealthText, PromtoolAcceptsTheFamilies) {
  const auto promtool = promtool::find();
  ASSERT_TRUE(promtool) << promtool::kMissing;
  ScrapeExtras extras;
  extras.health = sample_health();
  const std::string text = render_prometheus({}, extras);
  char path[] = "/tmp/needle_health_metrics_XXXXXX";
  const int fd = ::mkstemp(path);
  ASSERT_GE(fd, 0);
  ::close(fd);
  std::ofstream(path) << text;
  const auto result = promtool::run(*promtool, std::string("check metrics < ") + path);
  ::unlink(path);
  EXPECT_EQ(result.exit_code, 0) << result.output << "\n--- exposition ---\n" << text;
  EXPECT_EQ(result.output, "") << "promtool lint findings:\n" << result.output;
}

TEST(HealthJson, ListsClustersAndHostsAfterTheWorkers) {
  const std::string json = render_pools_json({}, sample_health());
  EXPECT_EQ(json,
            "{\"workers\":[],\"health\":[{\"cluster\":\"app\",\"active_checks\":true,"
            "\"outlier_detection\":true,\"panic\":false,\"panic_picks\":4,\"hosts\":["
            "{\"host\":\"10.0.0.1:3000\",\"state\":\"healthy\",\"failed_check\":false,"
            "\"ejected\":false,\"checks_passed\":7,\"checks_failed\":0,"
            "\"checker_idle_close_ms\":5003,\"checker_idle_closes\":2,\"ejections\":"
            "{\"consecutive_5xx\":0,\"consecutive_gateway_failure\":1}},"
            "{\"host\":\"10.0.0.2:3000\",\"state\":\"unhealthy\",\"failed_check\":true,"
            "\"ejected\":false,\"checks_passed\":0,\"checks_failed\":3,"
            "\"checker_idle_close_ms\":null,\"checker_idle_closes\":0,\"ejections\":"
            "{\"consecutive_5xx\":2,\"consecutive_gateway_failure\":0}}]}]}\n");
}

}  // namespace
}  // namespace needle::observe
