// [[route]] upgrade and tunnel_idle_timeout, [server] tunnel_idle_timeout and
// max_tunnels_per_worker: defaults, values, and errors located by file:line:column and key.
#include <gtest/gtest.h>

#include "config/config.h"
#include "config_test_util.h"

namespace needle::config {
namespace {

using testing::error_strings;
using testing::kMinimal;
using testing::load;
using testing::load_ok;

// One route; `route_line` goes into it (line 6), `server_line` into [server] (line 2).
std::string config_with(std::string_view route_line, std::string_view server_line = "") {
  return "[server]\n" + std::string(server_line) +
         "\n[[listener]]\naddress = \"127.0.0.1:8080\"\n[[route]]\n" + std::string(route_line) +
         "\ncluster = \"app\"\n[cluster.app]\nhosts = [\"127.0.0.1:3000\"]\n";
}

TEST(ConfigUpgrade, WebSocketOnlyByDefault) {
  const Config c = load_ok(kMinimal);
  EXPECT_EQ(c.routes[0].upgrade, std::vector<std::string>{"websocket"});
  EXPECT_FALSE(c.routes[0].tunnel_idle_timeout);
  EXPECT_EQ(c.server.tunnel_idle_timeout, std::chrono::hours(1));
  EXPECT_EQ(c.server.max_tunnels_per_worker, 10000u);
}

TEST(ConfigUpgrade, ValuesAreReadAndLowerCased) {
  const Config c = load_ok(config_with(
      "upgrade = [\"WebSocket\", \"foo/2\"]\ntunnel_idle_timeout = \"30s\"",
      "tunnel_idle_timeout = \"10m\"\nmax_tunnels_per_worker = 5"));
  EXPECT_EQ(c.routes[0].upgrade, (std::vector<std::string>{"websocket", "foo/2"}));
  EXPECT_EQ(c.routes[0].tunnel_idle_timeout, std::chrono::seconds(30));
  EXPECT_EQ(c.server.tunnel_idle_timeout, std::chrono::minutes(10));
  EXPECT_EQ(c.server.max_tunnels_per_worker, 5u);
  EXPECT_TRUE(load_ok(config_with("upgrade = []")).routes[0].upgrade.empty());
}

TEST(ConfigUpgrade, BadProtocolNamesAreLocated) {
  const LoadResult result = load(config_with("upgrade = [\"web socket\", \"h2c\", 3]"));
  EXPECT_FALSE(result.config.has_value());
  const auto errors = error_strings(result);
  ASSERT_EQ(errors.size(), 3u) << ::testing::PrintToString(errors);
  EXPECT_EQ(errors[0],
            "needle.toml:6:12: route[0].upgrade[0]: \"web socket\" is not a protocol name: a "
            "token, optionally /version (RFC 9110 7.8), e.g. \"websocket\"");
  EXPECT_NE(errors[1].find("needle.toml:6:26: route[0].upgrade[1]: h2c is never forwarded"),
            std::string::npos)
      << errors[1];
  EXPECT_EQ(errors[2],
            "needle.toml:6:33: route[0].upgrade[2]: expected a protocol name such as "
            "\"websocket\", got an integer");
}

TEST(ConfigUpgrade, ZeroIdleTimeoutIsRefused) {
  const auto errors = error_strings(load(config_with("", "tunnel_idle_timeout = \"0s\"")));
  ASSERT_EQ(errors.size(), 1u) << ::testing::PrintToString(errors);
  EXPECT_NE(errors[0].find("server.tunnel_idle_timeout"), std::string::npos) << errors[0];
}

}  // namespace
}  // namespace needle::config
