// [[route]] ignore_client_abort (issue 17): default, per-route value, and its errors located by
// file:line:column and dotted key like every other key's.
#include <gtest/gtest.h>

#include "config/config.h"
#include "config_test_util.h"

namespace needle::config {
namespace {

using testing::error_strings;
using testing::kMinimal;
using testing::load;
using testing::load_ok;

// Two routes; `first_route_line` goes into the first one (line 6).
std::string two_routes(std::string_view first_route_line) {
  return R"([[listener]]
address = "127.0.0.1:8080"

[[route]]
path_prefix = "/reports"
)" + std::string(first_route_line) +
         R"(
cluster = "app"
[[route]]
cluster = "app"

[cluster.app]
hosts = ["127.0.0.1:3000"]
)";
}

TEST(ConfigIgnoreClientAbort, OffByDefault) {
  const Config c = load_ok(kMinimal);
  ASSERT_EQ(c.routes.size(), 1u);
  EXPECT_FALSE(c.routes[0].ignore_client_abort);
}

TEST(ConfigIgnoreClientAbort, SetPerRoute) {
  const Config c = load_ok(two_routes("ignore_client_abort = true"));
  ASSERT_EQ(c.routes.size(), 2u);
  EXPECT_TRUE(c.routes[0].ignore_client_abort);
  EXPECT_FALSE(c.routes[1].ignore_client_abort);
}

TEST(ConfigIgnoreClientAbort, NotABooleanIsLocated) {
  const LoadResult result = load(two_routes("ignore_client_abort = \"on\""));
  EXPECT_FALSE(result.config.has_value());
  const auto errors = error_strings(result);
  ASSERT_EQ(errors.size(), 1u) << ::testing::PrintToString(errors);
  EXPECT_EQ(errors[0],
            "needle.toml:6:23: route[0].ignore_client_abort: expected true or false, got a string");
}

TEST(ConfigIgnoreClientAbort, NginxSpellingSuggestsTheKey) {
  const LoadResult result = load(two_routes("proxy_ignore_client_abort = true"));
  const auto errors = error_strings(result);
  ASSERT_EQ(errors.size(), 1u) << ::testing::PrintToString(errors);
  EXPECT_EQ(errors[0],
            "needle.toml:6:1: route[0].proxy_ignore_client_abort: unknown key "
            "'proxy_ignore_client_abort' (did you mean 'ignore_client_abort'?)");
}

TEST(ConfigIgnoreClientAbort, IsARouteKeyNotAClusterKey) {
  const LoadResult result =
      load(std::string(kMinimal) + "ignore_client_abort = true\n");  // in [cluster.app]
  const auto errors = error_strings(result);
  ASSERT_EQ(errors.size(), 1u) << ::testing::PrintToString(errors);
  EXPECT_EQ(errors[0].rfind("needle.toml:9:1: cluster.app.ignore_client_abort: unknown key", 0),
            0u)
      << errors[0];
}

}  // namespace
}  // namespace needle::config
