#include <gtest/gtest.h>

#include "config/config.h"
#include "config_test_util.h"

namespace needle::config {
namespace {

using testing::error_strings;

TEST(ConfigQuick, OneListenerOneRouteOneCluster) {
  LoadResult result = quick_config("127.0.0.1:8080", {"127.0.0.1:3000", "[::1]:3001"}, 2, "");
  ASSERT_TRUE(result.config) << ::testing::PrintToString(error_strings(result));
  const Config& c = *result.config;
  EXPECT_EQ(c.source, "<command line>");
  ASSERT_EQ(c.listeners.size(), 1u);
  EXPECT_EQ(c.listeners[0].address.to_string(), "127.0.0.1:8080");
  EXPECT_EQ(c.server.workers, 2u);
  ASSERT_TRUE(c.admin.address);
  EXPECT_EQ(c.admin.address->to_string(), "127.0.0.1:9901");  // "" = default
  ASSERT_EQ(c.routes.size(), 1u);
  EXPECT_EQ(c.routes[0].path_prefix, "/");
  EXPECT_FALSE(c.routes[0].host);
  EXPECT_EQ(c.routes[0].cluster, "default");
  const ClusterConfig* cluster = c.find_cluster("default");
  ASSERT_NE(cluster, nullptr);
  ASSERT_EQ(cluster->hosts.size(), 2u);
  EXPECT_EQ(cluster->hosts[0].to_string(), "127.0.0.1:3000");
  EXPECT_EQ(cluster->hosts[1].to_string(), "[::1]:3001");
  EXPECT_EQ(cluster->connect_timeout, ClusterConfig{}.connect_timeout);  // defaults elsewhere
}

TEST(ConfigQuick, AdminOffOrExplicit) {
  LoadResult off = quick_config("127.0.0.1:8080", {"127.0.0.1:3000"}, 0, "off");
  ASSERT_TRUE(off.config);
  EXPECT_FALSE(off.config->admin.address);

  LoadResult custom = quick_config("127.0.0.1:8080", {"127.0.0.1:3000"}, 0, "0.0.0.0:9999");
  ASSERT_TRUE(custom.config);
  ASSERT_TRUE(custom.config->admin.address);
  EXPECT_EQ(custom.config->admin.address->to_string(), "0.0.0.0:9999");
}

TEST(ConfigQuick, ErrorsNameTheFlags) {
  LoadResult result = quick_config("8080", {"127.0.0.1:3000", "app"}, 999, "nope");
  const auto errors = error_strings(result);
  ASSERT_EQ(errors.size(), 4u) << ::testing::PrintToString(errors);
  EXPECT_FALSE(result.config);
  const std::string forms =
      "; expected \"host:port\" such as \"127.0.0.1:8080\", \"[::1]:8080\" or \"localhost:3000\" "
      "(port 1-65535)";
  EXPECT_EQ(errors[0], "<command line>: --listen: \"8080\" has no port" + forms);
  EXPECT_EQ(errors[1], "<command line>: --admin: \"nope\" has no port (or \"off\")" + forms);
  EXPECT_EQ(errors[2], "<command line>: --upstream: \"app\" has no port" + forms);
  EXPECT_EQ(errors[3],
            "<command line>: --workers: must be between 0 and 256 (0 = one per CPU core), got 999");
}

TEST(ConfigQuick, NeedsAnUpstream) {
  LoadResult result = quick_config("127.0.0.1:8080", {}, 0, "");
  const auto errors = error_strings(result);
  ASSERT_EQ(errors.size(), 1u) << ::testing::PrintToString(errors);
  EXPECT_EQ(errors[0],
            "<command line>: --upstream: a cluster needs at least one host such as "
            "\"127.0.0.1:3000\"");
}

TEST(ConfigQuick, AdminMustNotTakeTheListenerAddress) {
  LoadResult result = quick_config("127.0.0.1:8080", {"127.0.0.1:3000"}, 0, "127.0.0.1:8080");
  ASSERT_EQ(result.errors.size(), 1u);
  EXPECT_EQ(result.errors[0].key, "--admin");
}

}  // namespace
}  // namespace needle::config
