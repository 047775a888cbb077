// The keys of DNS discovery and overload protection: defaults, values, and file:line:key errors.
#include <gtest/gtest.h>

#include "config/config.h"
#include "config_test_util.h"

namespace needle::config {
namespace {

using testing::error_strings;
using testing::kMinimal;
using testing::load;
using testing::load_ok;

TEST(DiscoveryConfig, DefaultsAreOff) {
  const Config c = load_ok(kMinimal);
  const auto& cluster = c.clusters[0];
  EXPECT_FALSE(cluster.dns.refresh);
  EXPECT_EQ(cluster.dns.refresh_min, Millis(5000));
  EXPECT_EQ(cluster.dns.refresh_max, Millis(300000));
  EXPECT_FALSE(cluster.dns.resolver);
  EXPECT_EQ(cluster.breakers.max_connections, 0u);
  EXPECT_EQ(cluster.breakers.max_pending, 0u);
  EXPECT_EQ(cluster.breakers.max_requests, 0u);
  EXPECT_EQ(cluster.slow_start, Millis(0));
  EXPECT_FALSE(c.routes[0].rate_limit);
}

TEST(DiscoveryConfig, EveryKeyIsRead) {
  const Config c = load_ok(R"([[listener]]
address = "127.0.0.1:8080"
[[route]]
cluster = "app"
[route.rate_limit]
rate = 2.5
burst = 10
key = "header"
header = "X-Api-Key"
max_keys = 500
[cluster.app]
hosts = ["app.internal:3000"]
dns_refresh_min = "1s"
dns_refresh_max = "30s"
resolver = "127.0.0.1:5353"
max_connections = 100
max_pending = 10
max_requests = 200
slow_start = "30s"
)");
  const auto& cluster = c.clusters[0];
  EXPECT_EQ(cluster.dns.refresh_min, Millis(1000));
  EXPECT_EQ(cluster.dns.refresh_max, Millis(30000));
  ASSERT_TRUE(cluster.dns.resolver);
  EXPECT_EQ(cluster.dns.resolver->to_string(), "127.0.0.1:5353");
  EXPECT_EQ(cluster.breakers.max_connections, 100u);
  EXPECT_EQ(cluster.breakers.max_pending, 10u);
  EXPECT_EQ(cluster.breakers.max_requests, 200u);
  EXPECT_EQ(cluster.slow_start, Millis(30000));
  ASSERT_TRUE(c.routes[0].rate_limit);
  const auto& limit = *c.routes[0].rate_limit;
  EXPECT_DOUBLE_EQ(limit.rate, 2.5);
  EXPECT_EQ(limit.burst, 10u);
  EXPECT_EQ(limit.key, RateLimitKey::header);
  EXPECT_EQ(limit.header, "X-Api-Key");
  EXPECT_EQ(limit.max_keys, 500u);
}

TEST(DiscoveryConfig, FixedRefresh) {
  const Config c = load_ok(std::string(kMinimal) + "dns_refresh = \"10s\"\n");
  ASSERT_TRUE(c.clusters[0].dns.refresh);
  EXPECT_EQ(*c.clusters[0].dns.refresh, Millis(10000));
}

TEST(DiscoveryConfig, ErrorsNameFileLineAndKey) {
  const auto result = load(std::string(kMinimal) +
                           "dns_refresh_min = \"10s\"\ndns_refresh_max = \"5s\"\n"
                           "max_requests = -1\n");
  const auto errors = error_strings(result);
  ASSERT_EQ(errors.size(), 2u) << ::testing::PrintToString(errors);
  EXPECT_EQ(errors[0],
            "needle.toml:10:19: cluster.app.dns_refresh_max: 5000 ms is below dns_refresh_min "
            "(10000 ms)");
  EXPECT_NE(errors[1].find("cluster.app.max_requests: must not be negative"), std::string::npos);
}

TEST(DiscoveryConfig, RateLimitErrors) {
  const auto result = load(R"([[listener]]
address = "127.0.0.1:8080"
[[route]]
cluster = "app"
[route.rate_limit]
rate = 0
burst = 0
key = "cookie"
bogus = 1
[cluster.app]
hosts = ["127.0.0.1:3000"]
)");
  const auto errors = error_strings(result);
  ASSERT_EQ(errors.size(), 4u) << ::testing::PrintToString(errors);
  EXPECT_EQ(errors[0], "needle.toml:6:8: route[0].rate_limit.rate: must be more than 0 per second");
  EXPECT_EQ(errors[1], "needle.toml:7:9: route[0].rate_limit.burst: must be at least 1");
  EXPECT_EQ(errors[2],
            "needle.toml:8:7: route[0].rate_limit.key: \"cookie\" is not one of "
            "\"client_address\", \"header\"");
  EXPECT_NE(errors[3].find("needle.toml:9:1: route[0].rate_limit.bogus: unknown key 'bogus'"),
            std::string::npos);
}

TEST(DiscoveryConfig, HeaderKeyNeedsAHeader) {
  const auto result = load(R"([[listener]]
address = "127.0.0.1:8080"
[[route]]
cluster = "app"
[route.rate_limit]
rate = 1
burst = 1
key = "header"
[cluster.app]
hosts = ["127.0.0.1:3000"]
)");
  const auto errors = error_strings(result);
  ASSERT_EQ(errors.size(), 1u) << ::testing::PrintToString(errors);
  EXPECT_NE(errors[0].find("route[0].rate_limit.header: missing required key 'header'"),
            std::string::npos);
}

}  // namespace
}  // namespace needle::config
