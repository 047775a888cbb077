// [cluster.NAME.health_check] and [cluster.NAME.outlier_detection] (issue 20): defaults, every
// key read, and errors at file:line:column with the dotted key.
#include <gtest/gtest.h>

#include "config/config.h"
#include "config_test_util.h"

namespace needle::config {
namespace {

using namespace std::chrono_literals;
using testing::error_strings;
using testing::kMinimal;
using testing::load;
using testing::load_ok;

std::string minimal_plus(std::string_view extra) {
  return std::string(kMinimal) + std::string(extra);
}

TEST(HealthSection, AbsentSectionsMeanNoChecksAndNoDetection) {
  const Config config = load_ok(kMinimal);
  EXPECT_FALSE(config.clusters[0].health_check);
  EXPECT_FALSE(config.clusters[0].outlier_detection);
}

TEST(HealthSection, EmptySectionsTakeTheDocumentedDefaults) {
  const Config config =
      load_ok(minimal_plus("[cluster.app.health_check]\n[cluster.app.outlier_detection]\n"));
  const auto& h = *config.clusters[0].health_check;
  EXPECT_EQ(h.type, HealthCheckType::http);
  EXPECT_EQ(h.path, "/healthz");
  EXPECT_FALSE(h.host);
  EXPECT_EQ(h.expected_statuses, std::vector<int>{200});
  EXPECT_EQ(h.interval, 2s);
  EXPECT_EQ(h.timeout, 1s);
  EXPECT_EQ(h.healthy_threshold, 2u);
  EXPECT_EQ(h.unhealthy_threshold, 3u);
  EXPECT_FALSE(h.initial_healthy);
  const auto& o = *config.clusters[0].outlier_detection;
  EXPECT_EQ(o.consecutive_5xx, 5u);
  EXPECT_EQ(o.consecutive_gateway_failure, 5u);
  EXPECT_EQ(o.base_ejection_time, 30s);
  EXPECT_EQ(o.max_ejection_time, 300s);
  EXPECT_EQ(o.max_ejection_percent, 50u);
  EXPECT_EQ(o.interval, 10s);
}

TEST(HealthSection, EveryKeyIsRead) {
  const Config config = load_ok(minimal_plus(R"([cluster.app.health_check]
path = "/ready"
host = "app.internal"
expected_statuses = [200, 204]
interval = "500ms"
timeout = "250ms"
healthy_threshold = 1
unhealthy_threshold = 4
initial_state = "healthy"

[cluster.app.outlier_detection]
consecutive_5xx = 3
consecutive_gateway_failure = 0
base_ejection_time = "2s"
max_ejection_time = "10s"
max_ejection_percent = 100
interval = "1s"
)"));
  const auto& h = *config.clusters[0].health_check;
  EXPECT_EQ(h.path, "/ready");
  EXPECT_EQ(h.host, "app.internal");
  EXPECT_EQ(h.expected_statuses, (std::vector<int>{200, 204}));
  EXPECT_EQ(h.interval, 500ms);
  EXPECT_EQ(h.timeout, 250ms);
  EXPECT_EQ(h.healthy_threshold, 1u);
  EXPECT_EQ(h.unhealthy_threshold, 4u);
  EXPECT_TRUE(h.initial_healthy);
  const auto& o = *config.clusters[0].outlier_detection;
  EXPECT_EQ(o.consecutive_5xx, 3u);
  EXPECT_EQ(o.consecutive_gateway_failure, 0u);
  EXPECT_EQ(o.base_ejection_time, 2s);
  EXPECT_EQ(o.max_ejection_time, 10s);
  EXPECT_EQ(o.max_ejection_percent, 100u);
  EXPECT_EQ(o.interval, 1s);
}

TEST(HealthSection, TcpCheck) {
  const Config config = load_ok(minimal_plus("[cluster.app.health_check]\ntype = \"tcp\"\n"));
  EXPECT_EQ(config.clusters[0].health_check->type, HealthCheckType::tcp);
}

struct BadCase {
  std::string_view text;  // appended to kMinimal (line 9 is the section header)
  int line;
  std::string_view key;
  std::string_view message_part;
};

class HealthSectionErrors : public ::testing::TestWithParam<BadCase> {};

TEST_P(HealthSectionErrors, AreLocated) {
  const BadCase& c = GetParam();
  const LoadResult result = load(minimal_plus(c.text));
  ASSERT_EQ(result.errors.size(), 1u) << ::testing::PrintToString(error_strings(result));
  const ConfigError& e = result.errors[0];
  EXPECT_EQ(e.file, "needle.toml");
  EXPECT_EQ(e.line, c.line) << e.to_string();
  EXPECT_EQ(e.key, c.key) << e.to_string();
  EXPECT_NE(e.message.find(c.message_part), std::string::npos) << e.to_string();
}

INSTANTIATE_TEST_SUITE_P(
    Cases, HealthSectionErrors,
    ::testing::Values(
        BadCase{"[cluster.app.health_check]\npath = \"healthz\"\n", 10,
                "cluster.app.health_check.path", "must start with '/'"},
        BadCase{"[cluster.app.health_check]\ntype = \"udp\"\n", 10, "cluster.app.health_check.type",
                "\"http\", \"tcp\""},
        BadCase{"[cluster.app.health_check]\ntype = \"tcp\"\npath = \"/x\"\n", 11,
                "cluster.app.health_check.path", "tcp check sends no request"},
        BadCase{"[cluster.app.health_check]\ninterval = 2\n", 10,
                "cluster.app.health_check.interval", "expected a string"},
        BadCase{"[cluster.app.health_check]\ntimeout = \"0s\"\n", 10,
                "cluster.app.health_check.timeout", "greater than 0"},
        BadCase{"[cluster.app.health_check]\ninterval = \"1s\"\ntimeout = \"2s\"\n", 11,
                "cluster.app.health_check.timeout", "longer than interval"},
        BadCase{"[cluster.app.health_check]\nhealthy_threshold = 0\n", 10,
                "cluster.app.health_check.healthy_threshold", "between 1 and 1000"},
        BadCase{"[cluster.app.health_check]\nexpected_statuses = [200, 700]\n", 10,
                "cluster.app.health_check.expected_statuses[1]", "from 100 to 599"},
        BadCase{"[cluster.app.health_check]\ninitial_state = \"up\"\n", 10,
                "cluster.app.health_check.initial_state", "\"unhealthy\", \"healthy\""},
        BadCase{"[cluster.app.health_check]\nintreval = \"1s\"\n", 10,
                "cluster.app.health_check.intreval", "unknown key"},
        BadCase{"[cluster.app.outlier_detection]\nmax_ejection_percent = 101\n", 10,
                "cluster.app.outlier_detection.max_ejection_percent", "between 0 and 100"},
        BadCase{"[cluster.app.outlier_detection]\nbase_ejection_time = \"1m\"\n"
                "max_ejection_time = \"30s\"\n",
                11, "cluster.app.outlier_detection.max_ejection_time", "below base_ejection_time"},
        BadCase{"health_check = 1\n", 9, "cluster.app.health_check", "expected a table"}));

}  // namespace
}  // namespace needle::config
