#include "observe/prometheus_text.h"

#include <unistd.h>

#include <fstream>
#include <vector>

#include <gtest/gtest.h>

#include "promtool_runner.h"
#include "record_builders.h"

namespace needle::observe {
namespace {

using namespace std::chrono_literals;
using test_records::attempt;
using test_records::request;

PoolSnapshot pool(std::string host, size_t idle, size_t busy, int64_t limit_ms,
                  std::string source) {
  PoolSnapshot p;
  p.cluster = "app";
  p.host = std::move(host);
  p.idle = idle;
  p.busy = busy;
  p.active_requests = static_cast<uint32_t>(busy);
  p.effective_limit_ms = limit_ms;
  p.non_replayable_limit_ms = limit_ms / 2;
  p.limit_source = std::move(source);
  p.opened = 10;
  p.reused = 90;
  p.probes_skipped = 70;
  p.connect_failures = 1;
  p.evicted_by_reason = {{"idle_limit", 3}, {"upstream_closed_idle", 1}};
  return p;
}

// Two workers that saw the keep-alive race, a connect failure and some successes.
std::vector<WorkerSnapshot> sample_workers() {
  std::vector<WorkerSnapshot> workers(2);
  workers[0].worker = 0;
  workers[1].worker = 1;
  RequestRecord saved = request(200);
  saved.attempts = {attempt("10.0.0.1:3000", 0, Cause::reset_before_response_on_reused, true),
                    attempt("10.0.0.1:3000", 200, Cause::none, false)};
  RequestRecord refused = request(502, Cause::connect_refused);
  refused.attempts = {attempt("10.0.0.2:3000", 0, Cause::connect_refused)};
  workers[0].metrics.on_request(saved);
  workers[0].metrics.on_request(request(200));
  workers[1].metrics.on_request(refused);
  workers[1].metrics.on_request(request(404, Cause::none, "/a\"b\\c\nd"));

  PoolSnapshot w0 = pool("10.0.0.1:3000", 3, 1, 4500, "hint");
  w0.hint_ms = 5000;
  w0.learned_ms = 6000;
  w0.survived_ms = 4000;
  PoolSnapshot w1 = pool("10.0.0.1:3000", 2, 0, 1400, "default_initial");
  w1.learned_ms = 5500;
  w1.survived_ms = 4200;
  w1.ejected = true;
  workers[0].pools = {w0, pool("10.0.0.2:3000", 0, 0, 1400, "default_initial")};
  workers[1].pools = {w1};
  return workers;
}

bool has_line(const std::string& text, const std::string& line) {
  return text.find("\n" + line + "\n") != std::string::npos || text.rfind(line + "\n", 0) == 0;
}

TEST(PrometheusText, MergesCountersAcrossWorkers) {
  const auto workers = sample_workers();
  ScrapeExtras extras;
  extras.version = "0.1.0";
  const std::string text = render_prometheus(workers, extras);
  EXPECT_TRUE(has_line(text, "needle_build_info{version=\"0.1.0\"} 1")) << text;
  EXPECT_TRUE(has_line(text, "needle_workers 2"));
  EXPECT_TRUE(has_line(text, "needle_requests_total{route=\"/api\",status_class=\"2xx\"} 2"));
  EXPECT_TRUE(has_line(text, "needle_requests_total{route=\"/api\",status_class=\"5xx\"} 1"));
  EXPECT_TRUE(has_line(text, "needle_responses_5xx_total{cause=\"connect_refused\"} 1"));
  EXPECT_TRUE(has_line(text,
                       "needle_upstream_failures_total{cluster=\"app\",host=\"10.0.0.1:3000\","
                       "cause=\"reset_before_response_on_reused\"} 1"));
  EXPECT_TRUE(has_line(text,
                       "needle_retries_total{cause=\"reset_before_response_on_reused\","
                       "outcome=\"success\"} 1"));
  EXPECT_TRUE(has_line(text,
                       "needle_upstream_attempts_total{cluster=\"app\",host=\"10.0.0.1:3000\","
                       "connection=\"reused\"} 1"));
  EXPECT_TRUE(has_line(text, "needle_request_bytes_total{route=\"/api\"} 30"));
  EXPECT_TRUE(has_line(text, "needle_response_bytes_total{route=\"/api\"} 600"));
}

TEST(PrometheusText, WritesHelpAndTypeBeforeEachFamily) {
  const std::string text = render_prometheus(sample_workers());
  for (const char* family :
       {"needle_requests_total counter", "needle_responses_5xx_total counter",
        "needle_request_duration_seconds histogram", "needle_upstream_duration_seconds histogram",
        "needle_upstream_pool_idle_connections gauge",
        "needle_upstream_idle_limit_seconds gauge"}) {
    const std::string type_line = std::string("# TYPE ") + family;
    const size_t type_at = text.find("\n" + type_line + "\n");
    ASSERT_NE(type_at, std::string::npos) << family;
    const std::string name = std::string(family).substr(0, std::string(family).find(' '));
    const size_t help_at = text.find("# HELP " + name + " ");
    EXPECT_LT(help_at, type_at) << family;
    // The first sample line of the family comes after its TYPE line.
    EXPECT_GT(text.find("\n" + name), type_at) << family;
  }
  EXPECT_EQ(text.back(), '\n');
}

TEST(PrometheusText, EscapesLabelValues) {
  const std::string text = render_prometheus(sample_workers());
  EXPECT_TRUE(has_line(text, R"(needle_requests_total{route="/a\"b\\c\nd",status_class="4xx"} 1)"))
      << text;
  std::string out;
  append_label_value(out, "a\\b\"c\nd");
  EXPECT_EQ(out, R"(a\\b\"c\nd)");
}

TEST(PrometheusText, HistogramBucketsAreCumulativeAndEndWithInf) {
  const std::string text = render_prometheus(sample_workers());
  // /api saw 3 requests of 12.345 ms: 0 up to le=0.01, 3 from le=0.025.
  EXPECT_TRUE(
      has_line(text, "needle_request_duration_seconds_bucket{route=\"/api\",le=\"0.01\"} 0"));
  EXPECT_TRUE(
      has_line(text, "needle_request_duration_seconds_bucket{route=\"/api\",le=\"0.025\"} 3"));
  EXPECT_TRUE(has_line(text, "needle_request_duration_seconds_bucket{route=\"/api\",le=\"60\"} 3"));
  EXPECT_TRUE(
      has_line(text, "needle_request_duration_seconds_bucket{route=\"/api\",le=\"+Inf\"} 3"));
  EXPECT_TRUE(has_line(text, "needle_request_duration_seconds_count{route=\"/api\"} 3"));
  EXPECT_NE(text.find("needle_request_duration_seconds_sum{route=\"/api\"} 0.037035"),
            std::string::npos);
  // Attempts of cluster app: 3 attempts of 5 ms.
  EXPECT_TRUE(
      has_line(text, "needle_upstream_duration_seconds_bucket{cluster=\"app\",le=\"0.005\"} 3"));
  EXPECT_TRUE(has_line(text, "needle_upstream_duration_seconds_count{cluster=\"app\"} 3"));
}

TEST(PrometheusText, SumsPoolsAndTakesTheSmallestLimit) {
  const std::string text = render_prometheus(sample_workers());
  const std::string h1 = "cluster=\"app\",host=\"10.0.0.1:3000\"";
  EXPECT_TRUE(has_line(text, "needle_upstream_pool_idle_connections{" + h1 + "} 5")) << text;
  EXPECT_TRUE(has_line(text, "needle_upstream_pool_busy_connections{" + h1 + "} 1"));
  EXPECT_TRUE(has_line(text, "needle_upstream_host_ejected{" + h1 + "} 1"));
  EXPECT_TRUE(has_line(text, "needle_upstream_connections_opened_total{" + h1 + "} 20"));
  EXPECT_TRUE(has_line(text, "needle_upstream_connections_reused_total{" + h1 + "} 180"));
  EXPECT_TRUE(has_line(text, "needle_upstream_checkout_probes_skipped_total{" + h1 + "} 140"));
  EXPECT_TRUE(has_line(text, "needle_upstream_connect_failures_total{" + h1 + "} 2"));
  EXPECT_TRUE(has_line(
      text, "needle_upstream_connections_evicted_total{" + h1 + ",reason=\"idle_limit\"} 6"));
  // Worker 1 has the smaller limit (1.4 s, default_initial); its source goes with it.
  EXPECT_TRUE(has_line(
      text, "needle_upstream_idle_limit_seconds{" + h1 + ",source=\"default_initial\"} 1.4"));
  EXPECT_EQ(text.find("needle_upstream_idle_limit_seconds{" + h1 + ",source=\"hint\"}"),
            std::string::npos);
  EXPECT_TRUE(has_line(text, "needle_upstream_non_replayable_idle_limit_seconds{" + h1 + "} 0.7"));
  EXPECT_TRUE(has_line(text, "needle_upstream_idle_timeout_seconds{" + h1 + ",kind=\"hint\"} 5"));
  EXPECT_TRUE(
      has_line(text, "needle_upstream_idle_timeout_seconds{" + h1 + ",kind=\"learned\"} 5.5"));
  EXPECT_TRUE(
      has_line(text, "needle_upstream_idle_timeout_seconds{" + h1 + ",kind=\"survived\"} 4.2"));
  EXPECT_EQ(text.find("kind=\"configured\""), std::string::npos);
  EXPECT_TRUE(has_line(
      text, "needle_upstream_pool_idle_connections{cluster=\"app\",host=\"10.0.0.2:3000\"} 0"));
}

TEST(PrometheusText, ExportsZeroSeriesSoTheFirstFailureIsAnIncrease) {
  const std::string text = render_prometheus(sample_workers());
  // 10.0.0.2 never saw a reset on a reused connection: the series is there, at 0.
  EXPECT_TRUE(has_line(text,
                       "needle_upstream_failures_total{cluster=\"app\",host=\"10.0.0.2:3000\","
                       "cause=\"reset_before_response_on_reused\"} 0"))
      << text;
  EXPECT_TRUE(has_line(text,
                       "needle_upstream_attempts_total{cluster=\"app\",host=\"10.0.0.2:3000\","
                       "connection=\"reused\"} 0"));
  // Counted values are not overwritten by the zeros.
  EXPECT_TRUE(has_line(text,
                       "needle_upstream_failures_total{cluster=\"app\",host=\"10.0.0.1:3000\","
                       "cause=\"reset_before_response_on_reused\"} 1"));
  EXPECT_TRUE(has_line(text, "needle_responses_5xx_total{cause=\"connect_refused\"} 1"));
  EXPECT_TRUE(has_line(text, "needle_responses_5xx_total{cause=\"response_timeout\"} 0"));
  EXPECT_TRUE(has_line(text, "needle_responses_5xx_total{cause=\"retry_budget_exhausted\"} 0"));
  EXPECT_TRUE(has_line(text,
                       "needle_retries_total{cause=\"reset_before_response_on_reused\","
                       "outcome=\"failure\"} 0"));
  // Client-side causes are not upstream failures and never get an upstream series.
  EXPECT_EQ(text.find("needle_upstream_failures_total{cluster=\"app\",host=\"10.0.0.2:3000\","
                      "cause=\"client_closed\"}"),
            std::string::npos);
  EXPECT_EQ(text.find("needle_retries_total{cause=\"client_closed\""), std::string::npos);
}

TEST(PrometheusText, AlertStatsOnlyWhenGiven) {
  const auto workers = sample_workers();
  EXPECT_EQ(render_prometheus(workers).find("needle_alert_"), std::string::npos);
  AlertStats stats;
  stats.events = 7;
  stats.events_dropped = 2;
  stats.batches_failed = 1;
  ScrapeExtras extras;
  extras.alerts = stats;
  const std::string text = render_prometheus(workers, extras);
  EXPECT_TRUE(has_line(text, "needle_alert_events_total 7"));
  EXPECT_TRUE(has_line(text, "needle_alert_events_dropped_total 2"));
  EXPECT_TRUE(has_line(text, "needle_alert_batches_failed_total 1"));
}

TEST(PrometheusText, EmptySnapshotIsStillValid) {
  const std::string text = render_prometheus({});
  EXPECT_TRUE(has_line(text, "needle_workers 0"));
  EXPECT_NE(text.find("# TYPE needle_requests_total counter"), std::string::npos);
}

void expect_promtool_accepts(const std::string& text) {
  const auto promtool = promtool::find();
  ASSERT_TRUE(promtool) << promtool::kMissing;
  char path[] = "/tmp/needle_metrics_XXXXXX";
  const int fd = ::mkstemp(path);
  ASSERT_GE(fd, 0);
  ::close(fd);
  std::ofstream(path) << text;
  const auto result = promtool::run(*promtool, std::string("check metrics < ") + path);
  ::unlink(path);
  EXPECT_EQ(result.exit_code, 0) << result.output << "\n--- exposition ---\n" << text;
  EXPECT_EQ(result.output, "") << "promtool lint findings:\n" << result.output;
}

TEST(PrometheusPromtool, CheckMetricsAcceptsTheExposition) {
  AlertStats stats;
  stats.events = 3;
  ScrapeExtras extras;
  extras.version = "0.1.0";
  extras.alerts = stats;
  expect_promtool_accepts(render_prometheus(sample_workers(), extras));
}

TEST(PrometheusPromtool, CheckMetricsAcceptsAnEmptyExposition) {
  expect_promtool_accepts(render_prometheus({}));
}

TEST(PrometheusPromtool, CheckMetricsRejectsABrokenExposition) {
  // Proves the check above can fail: the same exposition with the route label left unescaped.
  const auto promtool = promtool::find();
  ASSERT_TRUE(promtool) << promtool::kMissing;
  std::string text = render_prometheus(sample_workers());
  const std::string escaped = R"(route="/a\"b\\c\nd")";
  const size_t at = text.find(escaped);
  ASSERT_NE(at, std::string::npos);
  text.replace(at, escaped.size(), "route=\"/a\"b\\c\nd\"");
  char path[] = "/tmp/needle_metrics_XXXXXX";
  const int fd = ::mkstemp(path);
  ASSERT_GE(fd, 0);
  ::close(fd);
  std::ofstream(path) << text;
  const auto result = promtool::run(*promtool, std::string("check metrics < ") + path);
  ::unlink(path);
  EXPECT_NE(result.exit_code, 0) << result.output;
}

TEST(PrometheusPoolsJson, ListsEveryWorkerAndHost) {
  const std::string json = render_pools_json(sample_workers());
  EXPECT_EQ(
      json.rfind(
          "{\"workers\":[{\"worker\":0,\"pools\":[{\"cluster\":\"app\",\"host\":\"10.0.0.1:3000\"",
          0),
      0u)
      << json;
  EXPECT_NE(json.find("\"idle\":3,\"busy\":1,\"active_requests\":1,\"ejected\":false,"
                      "\"effective_limit_ms\":4500,\"non_replayable_limit_ms\":2250,"
                      "\"limit_source\":\"hint\",\"configured_ms\":null,\"hint_ms\":5000,"
                      "\"learned_ms\":6000,\"survived_ms\":4000"),
            std::string::npos)
      << json;
  EXPECT_NE(json.find("{\"worker\":1,\"pools\":[{\"cluster\":\"app\",\"host\":\"10.0.0.1:3000\","
                      "\"idle\":2,\"busy\":0,\"active_requests\":0,\"ejected\":true"),
            std::string::npos);
  EXPECT_NE(json.find("\"opened\":10,\"reused\":90,\"probes_skipped\":70,\"connect_failures\":1,"
                      "\"evicted\":{\"idle_limit\":3,\"upstream_closed_idle\":1}"),
            std::string::npos)
      << json;
  EXPECT_EQ(render_pools_json({}), "{\"workers\":[]}\n");
}

}  // namespace
}  // namespace needle::observe
