// examples/needle.toml is what users copy first: it must load, and say what the docs say.
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "config/config.h"

namespace needle::config {
namespace {

TEST(ConfigExample, DefaultExampleLoadsWithoutErrors) {
  LoadResult result = load_config_file(NEEDLE_SOURCE_DIR "/examples/needle.toml");
  for (const auto& e : result.errors) ADD_FAILURE() << e.to_string();
  ASSERT_TRUE(result.config);
  const Config& c = *result.config;
  ASSERT_EQ(c.listeners.size(), 1u);
  EXPECT_EQ(c.listeners[0].address.to_string(), "127.0.0.1:8080");
  ASSERT_TRUE(c.admin.address);
  EXPECT_EQ(c.admin.address->to_string(), "127.0.0.1:9901");
  ASSERT_EQ(c.routes.size(), 1u);
  EXPECT_EQ(c.routes[0].path_prefix, "/");
  EXPECT_EQ(c.routes[0].cluster, "app");
  const ClusterConfig* app = c.find_cluster("app");
  ASSERT_NE(app, nullptr);
  ASSERT_EQ(app->hosts.size(), 1u);
  EXPECT_EQ(app->hosts[0].to_string(), "127.0.0.1:3000");
  // The Express example app closes idle connections after 5 s (+1 s); the example says so.
  ASSERT_TRUE(app->idle_timeout);
  EXPECT_EQ(*app->idle_timeout, Millis(5000));
}

// The ```toml example at the end of docs/config.md must be a valid config too.
TEST(ConfigExample, DocsExampleLoadsWithoutErrors) {
  std::ifstream in(NEEDLE_SOURCE_DIR "/docs/config.md");
  ASSERT_TRUE(in) << "docs/config.md is missing";
  std::stringstream buffer;
  buffer << in.rdbuf();
  const std::string doc = buffer.str();
  const std::string heading = "## Example\n";
  const size_t section = doc.find(heading);
  ASSERT_NE(section, std::string::npos);
  const size_t start = doc.find("```toml\n", section);
  ASSERT_NE(start, std::string::npos);
  const size_t body = start + std::string("```toml\n").size();
  const size_t end = doc.find("```", body);
  ASSERT_NE(end, std::string::npos);

  LoadResult result = parse_config(doc.substr(body, end - body), "docs/config.md");
  for (const auto& e : result.errors) ADD_FAILURE() << e.to_string();
  ASSERT_TRUE(result.config);
  EXPECT_EQ(result.config->routes.size(), 2u);
  EXPECT_EQ(result.config->clusters.size(), 2u);
}

}  // namespace
}  // namespace needle::config
