#pragma once
// Helpers shared by the config tests: load TOML text and look at the errors it produced.
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "config/config.h"

namespace needle::config::testing {

inline LoadResult load(std::string_view text) {
  return parse_config(text, "needle.toml");
}

// Loads text that must be valid; fails the test (printing every error) otherwise.
inline Config load_ok(std::string_view text) {
  LoadResult result = load(text);
  for (const auto& e : result.errors) ADD_FAILURE() << e.to_string();
  EXPECT_TRUE(result.config.has_value());
  return result.config.value_or(Config{});
}

inline std::vector<std::string> error_strings(const LoadResult& result) {
  std::vector<std::string> out;
  for (const auto& e : result.errors) out.push_back(e.to_string());
  return out;
}

// The smallest valid config; tests append to it or replace parts of it.
inline constexpr std::string_view kMinimal = R"([[listener]]
address = "127.0.0.1:8080"

[[route]]
cluster = "app"

[cluster.app]
hosts = ["127.0.0.1:3000"]
)";

}  // namespace needle::config::testing
