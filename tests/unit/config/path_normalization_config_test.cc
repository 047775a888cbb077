// server.merge_slashes, server.escaped_slashes_action, and route prefixes that normalized paths
// could never match (docs/config.md "Path normalization").
#include <gtest/gtest.h>

#include <string>

#include "config/config.h"
#include "config_test_util.h"

namespace needle::config {
namespace {

using testing::error_strings;
using testing::load;
using testing::load_ok;

// [server] on lines 1-3, the route's path_prefix on line 7.
std::string config_with(std::string_view server_lines, std::string_view prefix) {
  return "[server]\n" + std::string(server_lines) +
         "\n\n[[listener]]\naddress = \"127.0.0.1:8080\"\n[[route]]\npath_prefix = \"" +
         std::string(prefix) +
         "\"\ncluster = \"app\"\n[cluster.app]\nhosts = [\"127.0.0.1:3000\"]\n";
}

ConfigError only_error(const std::string& text) {
  LoadResult result = load(text);
  EXPECT_FALSE(result.config.has_value());
  EXPECT_EQ(result.errors.size(), 1u) << ::testing::PrintToString(error_strings(result));
  return result.errors.empty() ? ConfigError{} : result.errors.front();
}

TEST(PathNormalizationConfig, Defaults) {
  const Config c = load_ok(config_with("", "/"));
  EXPECT_FALSE(c.server.merge_slashes);
  EXPECT_EQ(c.server.escaped_slashes, http::EscapedSlashAction::reject_request);
}

TEST(PathNormalizationConfig, KeysAreRead) {
  Config c = load_ok(
      config_with("merge_slashes = true\nescaped_slashes_action = \"keep_unchanged\"", "/"));
  EXPECT_TRUE(c.server.merge_slashes);
  EXPECT_EQ(c.server.escaped_slashes, http::EscapedSlashAction::keep_unchanged);
  c = load_ok(config_with("escaped_slashes_action = \"unescape_and_forward\"", "/"));
  EXPECT_EQ(c.server.escaped_slashes, http::EscapedSlashAction::unescape_and_forward);
  c = load_ok(config_with("escaped_slashes_action = \"reject_request\"", "/"));
  EXPECT_EQ(c.server.escaped_slashes, http::EscapedSlashAction::reject_request);
}

TEST(PathNormalizationConfig, UnknownActionNamesFileLineKeyAndChoices) {
  const ConfigError e =
      only_error(config_with("escaped_slashes_action = \"unescape_and_redirect\"", "/"));
  EXPECT_EQ(e.to_string().rfind("needle.toml:2:", 0), 0u) << e.to_string();
  EXPECT_EQ(e.key, "server.escaped_slashes_action");
  EXPECT_NE(e.message.find("\"reject_request\", \"keep_unchanged\", \"unescape_and_forward\""),
            std::string::npos)
      << e.message;
}

TEST(PathNormalizationConfig, MergeSlashesMustBeABoolean) {
  const ConfigError e = only_error(config_with("merge_slashes = \"yes\"", "/"));
  EXPECT_EQ(e.line, 2) << e.to_string();
  EXPECT_EQ(e.key, "server.merge_slashes");
}

TEST(PathNormalizationConfig, PrefixWithDotSegmentsCanNeverMatch) {
  const ConfigError e = only_error(config_with("", "/public/../admin/"));
  EXPECT_EQ(e.line, 7) << e.to_string();
  EXPECT_EQ(e.key, "route[0].path_prefix");
  EXPECT_NE(e.message.find("\"/admin/\""), std::string::npos) << e.message;
  EXPECT_EQ(only_error(config_with("", "/a/./b")).key, "route[0].path_prefix");
  EXPECT_EQ(only_error(config_with("", "/%7Euser/")).key, "route[0].path_prefix");  // "/~user/"
  EXPECT_EQ(only_error(config_with("", "/a%3f")).key, "route[0].path_prefix");      // "%3F"
}

TEST(PathNormalizationConfig, PrefixEscapesMustBeWellFormed) {
  const ConfigError e = only_error(config_with("", "/a%zz/"));
  EXPECT_EQ(e.line, 7) << e.to_string();
  EXPECT_NE(e.message.find("malformed"), std::string::npos) << e.message;
  EXPECT_EQ(only_error(config_with("", "/a%2")).key, "route[0].path_prefix");
}

TEST(PathNormalizationConfig, PrefixWithEscapedSlashDependsOnTheAction) {
  const ConfigError e = only_error(config_with("", "/a%2Fb/"));
  EXPECT_EQ(e.key, "route[0].path_prefix");
  EXPECT_NE(e.message.find("reject_request"), std::string::npos) << e.message;
  load_ok(config_with("escaped_slashes_action = \"keep_unchanged\"", "/a%2Fb/"));
  EXPECT_EQ(only_error(config_with("escaped_slashes_action = \"keep_unchanged\"", "/a%2fb/")).key,
            "route[0].path_prefix");
  EXPECT_EQ(
      only_error(config_with("escaped_slashes_action = \"unescape_and_forward\"", "/a%2Fb/")).key,
      "route[0].path_prefix");
}

TEST(PathNormalizationConfig, PrefixMayEndInsideASegment) {
  load_ok(config_with("", "/v1/."));   // a prefix of "/v1/.well-known"
  load_ok(config_with("", "/v1/.."));  // a prefix of "/v1/..data"
  load_ok(config_with("", "/a%20b"));
  load_ok(config_with("", "/a//b/"));  // merge_slashes is off
  EXPECT_EQ(only_error(config_with("merge_slashes = true", "/a//b/")).key, "route[0].path_prefix");
}

}  // namespace
}  // namespace needle::config
