#include <gtest/gtest.h>

#include "config/config.h"
#include "config_test_util.h"

namespace needle::config {
namespace {

using testing::kMinimal;
using testing::load_ok;

TEST(ConfigDefaults, StructDefaultsAreTheDocumentedOnes) {
  const Config c;
  EXPECT_EQ(c.source, "<built-in>");
  EXPECT_EQ(c.server.workers, 0u);
  EXPECT_EQ(c.server.header_timeout, Millis(10'000));
  EXPECT_EQ(c.server.body_timeout, Millis(60'000));
  EXPECT_EQ(c.server.client_idle_timeout, Millis(75'000));
  EXPECT_EQ(c.server.send_timeout, Millis(60'000));
  EXPECT_EQ(c.server.drain_timeout, Millis(30'000));
  EXPECT_EQ(c.server.max_requests_per_client_connection, 0u);
  EXPECT_EQ(c.server.max_connections_per_worker, 10'000u);
  EXPECT_EQ(c.server.max_request_line, 8u * 1024);
  EXPECT_EQ(c.server.max_header_bytes, 32u * 1024);
  EXPECT_EQ(c.server.max_header_count, 100u);
  EXPECT_EQ(c.server.max_body_bytes, 1ull << 30);
  EXPECT_EQ(c.server.access_log, "stdout");
  ASSERT_TRUE(c.admin.address);
  EXPECT_EQ(c.admin.address->to_string(), "127.0.0.1:9901");
  EXPECT_FALSE(c.alerts.webhook);
  EXPECT_EQ(c.alerts.window, Millis(10'000));
  EXPECT_EQ(c.alerts.statuses, (std::vector<int>{500, 502, 503, 504}));
  EXPECT_TRUE(c.alerts.causes.empty());
  EXPECT_FALSE(c.alerts.slack_text);
  EXPECT_EQ(c.alerts.max_queue, 64u);
}

TEST(ConfigDefaults, MinimalFileGetsDefaultsEverywhere) {
  const Config c = load_ok(kMinimal);
  EXPECT_EQ(c.source, "needle.toml");
  ASSERT_EQ(c.listeners.size(), 1u);
  EXPECT_EQ(c.listeners[0].address.to_string(), "127.0.0.1:8080");
  ASSERT_TRUE(c.admin.address);
  EXPECT_EQ(c.admin.address->to_string(), "127.0.0.1:9901");
  ASSERT_EQ(c.routes.size(), 1u);
  EXPECT_FALSE(c.routes[0].host);
  EXPECT_EQ(c.routes[0].path_prefix, "/");
  EXPECT_EQ(c.routes[0].cluster, "app");
  EXPECT_EQ(c.server.workers, 0u);
  EXPECT_EQ(c.server.header_timeout, Millis(10'000));

  const ClusterConfig* app = c.find_cluster("app");
  ASSERT_NE(app, nullptr);
  EXPECT_EQ(app->name, "app");
  ASSERT_EQ(app->hosts.size(), 1u);
  EXPECT_EQ(app->hosts[0].to_string(), "127.0.0.1:3000");
  const ClusterConfig defaults;
  EXPECT_EQ(app->lb, defaults.lb);
  EXPECT_EQ(app->connect_timeout, Millis(5000));
  EXPECT_EQ(app->response_timeout, Millis(60'000));
  EXPECT_FALSE(app->idle_timeout);
  EXPECT_EQ(app->idle_margin_min, Millis(100));
  EXPECT_DOUBLE_EQ(app->idle_margin_ratio, 0.10);
  EXPECT_EQ(app->initial_idle_limit, Millis(1500));
  EXPECT_EQ(app->max_idle_per_host, 1024u);
  EXPECT_EQ(app->retry_non_idempotent, RetryNonIdempotent::idempotency_key);
  EXPECT_EQ(app->max_retries, 2u);
  EXPECT_EQ(app->retry_buffer_bytes, 64u * 1024);
  EXPECT_TRUE(app->learn_idle_timeout);
  EXPECT_EQ(c.find_cluster("nope"), nullptr);
}

TEST(ConfigParse, ReadsEveryKey) {
  const Config c = load_ok(R"(
[server]
workers = 4
header_timeout = "2s"
body_timeout = "30s"
client_idle_timeout = "1m"
send_timeout = "45s"
drain_timeout = "0s"
max_requests_per_client_connection = 1000
max_connections_per_worker = 5000
max_request_line = "4KiB"
max_header_bytes = 65536
max_header_count = 50
max_body_bytes = "10MiB"
access_log = "/var/log/needle/access.log"

[[listener]]
address = "0.0.0.0:8080"

[[listener]]
address = "[::1]:8081"

[admin]
address = "off"

[[route]]
host = "API.Example.com"
path_prefix = "/api/"
cluster = "api"

[[route]]
cluster = "app"

[cluster.app]
hosts = ["127.0.0.1:3000", "localhost:3001"]
lb = "least_request"
connect_timeout = "250ms"
response_timeout = "1.5s"
idle_timeout = "5s"
idle_margin_min = "200ms"
idle_margin_ratio = 0.25
initial_idle_limit = "1s"
max_idle_per_host = 8
max_requests_per_connection = 100
max_connection_age = "10m"
learn_idle_timeout = false
retry_non_idempotent = "reused-connection"
max_retries = 3
retry_buffer_bytes = "1MiB"
retry_budget_ratio = 0.5
retry_budget_min_per_second = 20
eject_after_connect_failures = 3
eject_duration = "30s"

[cluster.api]
hosts = ["[::1]:4000"]
retry_non_idempotent = "never"
retry_budget_ratio = 1

[alerts]
webhook = "http://127.0.0.1:9000/hook"
window = "30s"
statuses = [502, 503, 504]
causes = ["connect_refused", "reset_before_response_on_reused"]
slack_text = true
max_queue = 16
)");
  const ServerConfig& s = c.server;
  EXPECT_EQ(s.workers, 4u);
  EXPECT_EQ(s.header_timeout, Millis(2000));
  EXPECT_EQ(s.body_timeout, Millis(30'000));
  EXPECT_EQ(s.client_idle_timeout, Millis(60'000));
  EXPECT_EQ(s.send_timeout, Millis(45'000));
  EXPECT_EQ(s.drain_timeout, Millis(0));
  EXPECT_EQ(s.max_requests_per_client_connection, 1000u);
  EXPECT_EQ(s.max_connections_per_worker, 5000u);
  EXPECT_EQ(s.max_request_line, 4096u);
  EXPECT_EQ(s.max_header_bytes, 65536u);
  EXPECT_EQ(s.max_header_count, 50u);
  EXPECT_EQ(s.max_body_bytes, 10ull << 20);
  EXPECT_EQ(s.access_log, "/var/log/needle/access.log");

  ASSERT_EQ(c.listeners.size(), 2u);
  EXPECT_EQ(c.listeners[0].address.to_string(), "0.0.0.0:8080");
  EXPECT_EQ(c.listeners[1].address.host, "::1");
  EXPECT_EQ(c.listeners[1].address.port, 8081);
  EXPECT_FALSE(c.admin.address);

  ASSERT_EQ(c.routes.size(), 2u);
  EXPECT_EQ(c.routes[0].host, "api.example.com");  // stored lower-case
  EXPECT_EQ(c.routes[0].path_prefix, "/api/");
  EXPECT_EQ(c.routes[0].cluster, "api");
  EXPECT_FALSE(c.routes[1].host);
  EXPECT_EQ(c.routes[1].path_prefix, "/");

  ASSERT_EQ(c.clusters.size(), 2u);
  EXPECT_EQ(c.clusters[0].name, "app");  // file order, not key order
  EXPECT_EQ(c.clusters[1].name, "api");
  const ClusterConfig& app = c.clusters[0];
  ASSERT_EQ(app.hosts.size(), 2u);
  EXPECT_EQ(app.hosts[1].to_string(), "localhost:3001");
  EXPECT_EQ(app.lb, LbPolicy::least_request);
  EXPECT_EQ(app.connect_timeout, Millis(250));
  EXPECT_EQ(app.response_timeout, Millis(1500));
  EXPECT_EQ(app.idle_timeout, Millis(5000));
  EXPECT_EQ(app.idle_margin_min, Millis(200));
  EXPECT_DOUBLE_EQ(app.idle_margin_ratio, 0.25);
  EXPECT_EQ(app.initial_idle_limit, Millis(1000));
  EXPECT_EQ(app.max_idle_per_host, 8u);
  EXPECT_EQ(app.max_requests_per_connection, 100u);
  EXPECT_EQ(app.max_connection_age, Millis(600'000));
  EXPECT_FALSE(app.learn_idle_timeout);
  EXPECT_EQ(app.retry_non_idempotent, RetryNonIdempotent::reused_connection);
  EXPECT_EQ(app.max_retries, 3u);
  EXPECT_EQ(app.retry_buffer_bytes, 1u << 20);
  EXPECT_DOUBLE_EQ(app.retry_budget_ratio, 0.5);
  EXPECT_EQ(app.retry_budget_min_per_second, 20u);
  EXPECT_EQ(app.eject_after_connect_failures, 3u);
  EXPECT_EQ(app.eject_duration, Millis(30'000));
  const ClusterConfig& api = c.clusters[1];
  EXPECT_EQ(api.hosts[0].to_string(), "[::1]:4000");
  EXPECT_EQ(api.retry_non_idempotent, RetryNonIdempotent::never);
  EXPECT_DOUBLE_EQ(api.retry_budget_ratio, 1.0);  // an integer is a fine ratio

  EXPECT_EQ(c.alerts.webhook, "http://127.0.0.1:9000/hook");
  EXPECT_EQ(c.alerts.window, Millis(30'000));
  EXPECT_EQ(c.alerts.statuses, (std::vector<int>{502, 503, 504}));
  EXPECT_EQ(c.alerts.causes,
            (std::vector<std::string>{"connect_refused", "reset_before_response_on_reused"}));
  EXPECT_TRUE(c.alerts.slack_text);
  EXPECT_EQ(c.alerts.max_queue, 16u);
}

TEST(ConfigParse, AdminAddressAndEmptyLists) {
  const Config c = load_ok(std::string(kMinimal) + R"(
[admin]
address = "[::1]:9902"
[alerts]
statuses = []
)");
  ASSERT_TRUE(c.admin.address);
  EXPECT_EQ(c.admin.address->to_string(), "[::1]:9902");
  EXPECT_TRUE(c.alerts.statuses.empty());  // written empty: no status alerts, not the default
}

TEST(ConfigParse, AlertCausesAcceptEveryCauseName) {
  // The last causes of the enum too (the list of known names once stopped before the last ones).
  const Config c = load_ok(std::string(kMinimal) + R"(
[alerts]
webhook = "http://127.0.0.1:9000/hook"
causes = ["upstream_5xx", "local_resource_exhausted", "stray_bytes_after_response"]
)");
  EXPECT_EQ(c.alerts.causes, (std::vector<std::string>{"upstream_5xx", "local_resource_exhausted",
                                                       "stray_bytes_after_response"}));
}

TEST(ConfigParse, InlineTablesWork) {
  const Config c = load_ok(R"(
listener = [{ address = "127.0.0.1:8080" }]
route = [{ path_prefix = "/", cluster = "app" }]
cluster = { app = { hosts = ["127.0.0.1:3000"] } }
)");
  EXPECT_EQ(c.listeners.size(), 1u);
  EXPECT_NE(c.find_cluster("app"), nullptr);
}

TEST(ConfigNames, SpellingsMatchTheFile) {
  EXPECT_EQ(lb_policy_name(LbPolicy::round_robin), "round_robin");
  EXPECT_EQ(lb_policy_name(LbPolicy::least_request), "least_request");
  EXPECT_EQ(retry_non_idempotent_name(RetryNonIdempotent::never), "never");
  EXPECT_EQ(retry_non_idempotent_name(RetryNonIdempotent::idempotency_key), "idempotency-key");
  EXPECT_EQ(retry_non_idempotent_name(RetryNonIdempotent::reused_connection), "reused-connection");
}

TEST(ConfigErrorFormat, FileLineColumnKeyMessage) {
  EXPECT_EQ((ConfigError{"needle.toml", 12, 3, "cluster.app.connect_timeout", "bad"}).to_string(),
            "needle.toml:12:3: cluster.app.connect_timeout: bad");
  EXPECT_EQ((ConfigError{"needle.toml", 12, 0, "server.workers", "bad"}).to_string(),
            "needle.toml:12: server.workers: bad");
  EXPECT_EQ((ConfigError{"needle.toml", 0, 0, "listener", "no listener"}).to_string(),
            "needle.toml: listener: no listener");
  EXPECT_EQ((ConfigError{"needle.toml", 0, 0, "", "cannot open"}).to_string(),
            "needle.toml: cannot open");
}

}  // namespace
}  // namespace needle::config
