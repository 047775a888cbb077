// Every class of config error, with its exact place: file, line, column and dotted key.
#include <gtest/gtest.h>

#include "config/config.h"
#include "config_test_util.h"

namespace needle::config {
namespace {

using testing::error_strings;
using testing::kMinimal;
using testing::load;

// The only error of `text`; fails the test if there is not exactly one.
ConfigError only_error(std::string_view text) {
  LoadResult result = load(text);
  EXPECT_FALSE(result.config.has_value());
  EXPECT_EQ(result.errors.size(), 1u) << ::testing::PrintToString(error_strings(result));
  return result.errors.empty() ? ConfigError{} : result.errors.front();
}

// kMinimal is 8 lines; text appended after it starts on line 9.
std::string minimal_plus(std::string_view extra) {
  return std::string(kMinimal) + std::string(extra);
}

void expect_place(const ConfigError& e, int line, int column, std::string_view key) {
  EXPECT_EQ(e.file, "needle.toml");
  EXPECT_EQ(e.line, line) << e.to_string();
  EXPECT_EQ(e.column, column) << e.to_string();
  EXPECT_EQ(e.key, key) << e.to_string();
}

TEST(ConfigErrors, SyntaxErrorIsLocatedWithNearestKey) {
  const ConfigError e = only_error("[server]\nworkers = 2\nheader_timeout = \"10s\n");
  EXPECT_EQ(e.line, 3) << e.to_string();
  EXPECT_GT(e.column, 0);
  EXPECT_EQ(e.key, "server.header_timeout");
  EXPECT_NE(e.message.find("TOML syntax error"), std::string::npos) << e.message;
}

TEST(ConfigErrors, SyntaxErrorInArrayTableNamesTheIndex) {
  const ConfigError e = only_error(R"([[listener]]
address = "127.0.0.1:8080"
[[listener]]
address = = "127.0.0.1:8081"
)");
  EXPECT_EQ(e.line, 4) << e.to_string();
  EXPECT_EQ(e.key, "listener[1].address");
}

TEST(ConfigErrors, DuplicateKeyIsASyntaxError) {
  const ConfigError e = only_error("[server]\nworkers = 2\nworkers = 3\n");
  EXPECT_EQ(e.line, 3) << e.to_string();
  EXPECT_EQ(e.key, "server.workers");
}

TEST(ConfigErrors, UnknownKeySuggestsTheIntendedOne) {
  const ConfigError e = only_error(minimal_plus("conect_timeout = \"5s\"\n"));
  expect_place(e, 9, 1, "cluster.app.conect_timeout");
  EXPECT_EQ(e.message, "unknown key 'conect_timeout' (did you mean 'connect_timeout'?)");
  EXPECT_EQ(e.to_string(),
            "needle.toml:9:1: cluster.app.conect_timeout: unknown key 'conect_timeout' "
            "(did you mean 'connect_timeout'?)");
}

TEST(ConfigErrors, UnknownKeyWithoutNearMissListsAllowedKeys) {
  const ConfigError e = only_error(minimal_plus("[admin]\nbind = \"127.0.0.1:9901\"\n"));
  expect_place(e, 10, 1, "admin.bind");
  EXPECT_EQ(e.message, "unknown key 'bind'; keys allowed in [admin]: address");
}

TEST(ConfigErrors, UnknownSectionAndNginxStyleNames) {
  LoadResult result = load(minimal_plus("[servr]\nworkers = 1\n[upstream.x]\nhosts = []\n"));
  ASSERT_EQ(result.errors.size(), 2u) << ::testing::PrintToString(error_strings(result));
  expect_place(result.errors[0], 9, 2, "servr");
  EXPECT_EQ(result.errors[0].message, "unknown key 'servr' (did you mean 'server'?)");
  expect_place(result.errors[1], 11, 2, "upstream");
  EXPECT_EQ(result.errors[1].message, "unknown key 'upstream' (did you mean 'cluster'?)");
}

TEST(ConfigErrors, WrongTypes) {
  LoadResult result = load(minimal_plus(R"(lb = 1
learn_idle_timeout = "yes"
max_idle_per_host = 1.5
[server]
access_log = false
)"));
  const auto errors = error_strings(result);
  ASSERT_EQ(errors.size(), 4u) << ::testing::PrintToString(errors);
  EXPECT_EQ(errors[0],
            "needle.toml:9:6: cluster.app.lb: expected one of \"round_robin\", \"least_request\", "
            "got an integer");
  EXPECT_EQ(
      errors[1],
      "needle.toml:10:22: cluster.app.learn_idle_timeout: expected true or false, got a string");
  EXPECT_EQ(errors[2],
            "needle.toml:11:21: cluster.app.max_idle_per_host: expected an integer, got a float");
  EXPECT_EQ(errors[3], "needle.toml:13:14: server.access_log: expected a string, got a boolean");
}

TEST(ConfigErrors, SectionOfTheWrongShape) {
  LoadResult result = load(R"(server = 3
[listener]
address = "127.0.0.1:8080"
[[route]]
cluster = "app"
[cluster]
hosts = ["127.0.0.1:3000"]
)");
  const auto errors = error_strings(result);
  ASSERT_EQ(errors.size(), 4u) << ::testing::PrintToString(errors);
  EXPECT_EQ(errors[0],
            "needle.toml:1:10: server: expected a table: write [server] on its own line, "
            "got an integer");
  EXPECT_EQ(result.errors[1].key, "listener");
  EXPECT_EQ(result.errors[1].line, 2);
  EXPECT_NE(result.errors[1].message.find("[[listener]]"), std::string::npos);
  // The route names a cluster that the malformed section did not define; the message
  // shows the right spelling.
  EXPECT_EQ(errors[2],
            "needle.toml:5:11: route[0].cluster: no cluster named 'app'; define it with "
            "[cluster.app] hosts = [\"127.0.0.1:3000\"]");
  EXPECT_EQ(
      errors[3],
      "needle.toml:7:9: cluster.hosts: expected a [cluster.NAME] table such as [cluster.app], "
      "got an array; a cluster's keys go under its own [cluster.NAME] header");
}

TEST(ConfigErrors, BareNumberDurationShowsTheAcceptedForm) {
  const ConfigError e = only_error(minimal_plus("connect_timeout = 5\n"));
  expect_place(e, 9, 19, "cluster.app.connect_timeout");
  EXPECT_EQ(e.message,
            "the bare number 5 has no unit; write a string such as \"5s\" or \"5ms\" "
            "(units: ms, s, m, h)");
}

TEST(ConfigErrors, BadDurationString) {
  const ConfigError e =
      only_error("[server]\nheader_timeout = \"10 seconds\"\n" + std::string(kMinimal));
  expect_place(e, 2, 18, "server.header_timeout");
  EXPECT_EQ(e.message,
            "\"10 seconds\" is not a duration; expected a duration string such as \"250ms\", "
            "\"5s\", \"1.5s\", \"2m\" or \"1h\"");
}

TEST(ConfigErrors, BadSizes) {
  LoadResult result = load("[server]\nmax_body_bytes = \"10MB\"\nmax_header_bytes = -1\n" +
                           std::string(kMinimal) + "retry_buffer_bytes = \"1TiB\"\n");
  const auto errors = error_strings(result);
  ASSERT_EQ(errors.size(), 2u) << ::testing::PrintToString(errors);
  EXPECT_EQ(errors[0],
            "needle.toml:2:18: server.max_body_bytes: \"10MB\" is not a size; expected a size: an "
            "integer number of bytes, or a string such as \"64KiB\", \"1MiB\" or \"1GiB\"");
  EXPECT_EQ(errors[1], "needle.toml:3:20: server.max_header_bytes: must not be negative, got -1");
  // 1TiB fits size_t on 64-bit hosts, so retry_buffer_bytes is fine.
}

TEST(ConfigErrors, IntegerTooLargeForItsField) {
  const ConfigError e = only_error(minimal_plus("max_retries = 5000000000\n"));
  expect_place(e, 9, 15, "cluster.app.max_retries");
  EXPECT_EQ(e.message, "5000000000 is too large (at most 4294967295)");
}

TEST(ConfigErrors, BadAddresses) {
  LoadResult result = load(R"([[listener]]
address = "127.0.0.1:70000"
[[listener]]
address = "::1:8080"
[admin]
address = "localhost"
[[route]]
cluster = "app"
[cluster.app]
hosts = ["127.0.0.1:3000", "http://127.0.0.1:3001", 3002]
)");
  const auto errors = error_strings(result);
  ASSERT_EQ(errors.size(), 5u) << ::testing::PrintToString(errors);
  const std::string forms =
      "; expected \"host:port\" such as \"127.0.0.1:8080\", \"[::1]:8080\" or \"localhost:3000\" "
      "(port 1-65535)";
  EXPECT_EQ(errors[0], "needle.toml:2:11: listener[0].address: port 70000 is above 65535" + forms);
  EXPECT_EQ(errors[1],
            "needle.toml:4:11: listener[1].address: \"::1:8080\": an IPv6 address needs brackets, "
            "e.g. \"[::1]:8080\"" +
                forms);
  EXPECT_EQ(errors[2], "needle.toml:6:11: admin.address: \"localhost\" has no port" + forms);
  EXPECT_EQ(errors[3],
            "needle.toml:10:28: cluster.app.hosts[1]: \"http://127.0.0.1:3001\" has a URL scheme; "
            "write only host:port, e.g. \"127.0.0.1:3001\"" +
                forms);
  EXPECT_EQ(errors[4],
            "needle.toml:10:53: cluster.app.hosts[2]: expected a \"host:port\" string, got an "
            "integer");
}

TEST(ConfigErrors, OutOfRangeNumbers) {
  LoadResult result = load(R"([server]
workers = 300
header_timeout = "0s"
max_header_count = 0
)" + std::string(kMinimal) +
                           R"(idle_margin_ratio = 1.5
retry_budget_ratio = -0.1
max_retries = 11
connect_timeout = "0ms"
eject_after_connect_failures = 0
[alerts]
window = "0s"
statuses = [502, 99, 600]
max_queue = 0
)");
  const auto errors = error_strings(result);
  // One mistake, one error: the out-of-range idle_margin_ratio is not also reported as a
  // margin that leaves no idle time.
  ASSERT_EQ(errors.size(), 12u) << ::testing::PrintToString(errors);
  EXPECT_EQ(errors[0],
            "needle.toml:2:11: server.workers: must be between 0 and 256 (0 = one per CPU core), "
            "got 300");
  EXPECT_EQ(errors[1],
            "needle.toml:3:18: server.header_timeout: must be greater than 0 (a client must be "
            "given time to send); e.g. \"5s\"");
  EXPECT_EQ(result.errors[2].key, "server.max_header_count");
  EXPECT_EQ(result.errors[2].line, 4);
  EXPECT_EQ(errors[3],
            "needle.toml:13:21: cluster.app.idle_margin_ratio: must be a fraction between 0 and 1 "
            "(e.g. 0.1), got 1.5");
  EXPECT_EQ(errors[4],
            "needle.toml:14:22: cluster.app.retry_budget_ratio: must be a fraction between 0 and 1 "
            "(e.g. 0.1), got -0.1");
  EXPECT_EQ(errors[5],
            "needle.toml:15:15: cluster.app.max_retries: must be between 0 and 10, got 11");
  EXPECT_EQ(result.errors[6].key, "cluster.app.connect_timeout");
  EXPECT_EQ(result.errors[6].line, 16);
  EXPECT_EQ(result.errors[7].key, "cluster.app.eject_after_connect_failures");
  EXPECT_EQ(result.errors[7].line, 17);
  EXPECT_EQ(result.errors[8].key, "alerts.window");
  EXPECT_EQ(errors[9],
            "needle.toml:20:18: alerts.statuses[1]: 99 is not an HTTP status; expected 100-599, "
            "e.g. 502");
  EXPECT_EQ(result.errors[10].key, "alerts.statuses[2]");
  EXPECT_EQ(result.errors[11].key, "alerts.max_queue");
}

TEST(ConfigErrors, MarginThatLeavesNoIdleTime) {
  const ConfigError e =
      only_error(minimal_plus("idle_timeout = \"1s\"\nidle_margin_min = \"1s\"\n"));
  expect_place(e, 10, 19, "cluster.app.idle_margin_min");
  EXPECT_EQ(e.message,
            "the idle margin (max of 1s and 0.1 of the limit) leaves nothing of idle_timeout 1s; "
            "lower idle_margin_min or idle_margin_ratio");
}

TEST(ConfigErrors, RouteNamingAMissingCluster) {
  const ConfigError e = only_error(R"([[listener]]
address = "127.0.0.1:8080"
[[route]]
path_prefix = "/"
cluster = "ap"
[cluster.app]
hosts = ["127.0.0.1:3000"]
)");
  expect_place(e, 5, 11, "route[0].cluster");
  EXPECT_EQ(e.message, "no cluster named 'ap' (did you mean 'app'?)");
}

TEST(ConfigErrors, RouteNamingAClusterWhenThereAreNone) {
  const ConfigError e = only_error(
      "[[listener]]\naddress = \"127.0.0.1:8080\"\n"
      "[[route]]\ncluster = \"app\"\n");
  expect_place(e, 4, 11, "route[0].cluster");
  EXPECT_EQ(e.message,
            "no cluster named 'app'; define it with [cluster.app] hosts = [\"127.0.0.1:3000\"]");
}

TEST(ConfigErrors, RouteProblems) {
  LoadResult result = load(std::string(kMinimal) + R"(
[[route]]
path_prefix = "api/"
cluster = "app"
[[route]]
host = "http://x.example"
cluster = "app"
[[route]]
path_prefix = "/"
[[route]]
cluster = "app"
)");
  const auto errors = error_strings(result);
  ASSERT_EQ(errors.size(), 4u) << ::testing::PrintToString(errors);
  EXPECT_EQ(errors[0],
            "needle.toml:11:15: route[1].path_prefix: \"api/\" must start with '/', e.g. \"/\" or "
            "\"/api/\"");
  EXPECT_EQ(result.errors[1].key, "route[2].host");
  EXPECT_EQ(result.errors[1].line, 14);
  EXPECT_EQ(errors[2],
            "needle.toml:16:1: route[3].cluster: missing required key 'cluster'; e.g. "
            "cluster = \"app\"");
  EXPECT_EQ(errors[3],
            "needle.toml:18:1: route[4]: same host and path_prefix as route[0], so it can never "
            "match; remove one or change its path_prefix");
}

TEST(ConfigErrors, MarginThatLeavesNoInitialIdleTime) {
  const ConfigError e = only_error(minimal_plus("idle_margin_ratio = 1.0\n"));
  expect_place(e, 7, 1, "cluster.app.idle_margin_min");  // not written: the [cluster.app] header
  EXPECT_NE(e.message.find("initial_idle_limit 1500ms"), std::string::npos) << e.message;
}

TEST(ConfigErrors, ClusterWithNoHosts) {
  LoadResult result = load(R"([[listener]]
address = "127.0.0.1:8080"
[[route]]
cluster = "a"
[[route]]
path_prefix = "/b/"
cluster = "b"
[cluster.a]
hosts = []
[cluster.b]
lb = "round_robin"
)");
  const auto errors = error_strings(result);
  ASSERT_EQ(errors.size(), 2u) << ::testing::PrintToString(errors);
  EXPECT_EQ(errors[0],
            "needle.toml:9:9: cluster.a.hosts: a cluster needs at least one host such as "
            "\"127.0.0.1:3000\"");
  EXPECT_EQ(errors[1],
            "needle.toml:10:1: cluster.b.hosts: missing required key 'hosts'; e.g. "
            "hosts = [\"127.0.0.1:3000\"]");
}

TEST(ConfigErrors, BadClusterName) {
  const ConfigError e = only_error(R"([[listener]]
address = "127.0.0.1:8080"
[[route]]
cluster = "my app"
[cluster."my app"]
hosts = ["127.0.0.1:3000"]
)");
  EXPECT_EQ(e.key, "cluster.my app");
  EXPECT_EQ(e.line, 5);
  EXPECT_EQ(e.message, "cluster name 'my app' may use only letters, digits, '-' and '_'");
}

TEST(ConfigErrors, NoListenerAndNoRoute) {
  LoadResult result = load("[cluster.app]\nhosts = [\"127.0.0.1:3000\"]\n");
  const auto errors = error_strings(result);
  ASSERT_EQ(errors.size(), 2u) << ::testing::PrintToString(errors);
  EXPECT_EQ(errors[0],
            "needle.toml: listener: no listener: add one, e.g. [[listener]] address = "
            "\"127.0.0.1:8080\"");
  EXPECT_EQ(errors[1],
            "needle.toml: route: no route: add one, e.g. [[route]] path_prefix = \"/\" cluster = "
            "\"app\"");
}

TEST(ConfigErrors, ListenerWithoutAddress) {
  const ConfigError e = only_error(
      "[[listener]]\n[[route]]\ncluster = \"app\"\n"
      "[cluster.app]\nhosts = [\"127.0.0.1:3000\"]\n");
  expect_place(e, 1, 1, "listener[0].address");
  EXPECT_EQ(e.message, "missing required key 'address'; e.g. address = \"127.0.0.1:8080\"");
}

TEST(ConfigErrors, DuplicateListenerAddresses) {
  LoadResult result = load(minimal_plus(R"([[listener]]
address = "127.0.0.1:8081"
[[listener]]
address = "127.0.0.1:8080"
[admin]
address = "127.0.0.1:8081"
)"));
  const auto errors = error_strings(result);
  ASSERT_EQ(errors.size(), 2u) << ::testing::PrintToString(errors);
  EXPECT_EQ(errors[0],
            "needle.toml:12:11: listener[2].address: 127.0.0.1:8080 is already used by "
            "listener[0]; each listener needs its own address");
  EXPECT_EQ(errors[1],
            "needle.toml:14:11: admin.address: 127.0.0.1:8081 is also listener[1]; give the admin "
            "endpoint its own address or \"off\"");
}

TEST(ConfigErrors, AlertProblems) {
  LoadResult result = load(minimal_plus(R"([alerts]
webhook = "https://hooks.example.com/x"
causes = ["conect_refused", "bogus", 7]
)"));
  const auto errors = error_strings(result);
  ASSERT_EQ(errors.size(), 4u) << ::testing::PrintToString(errors);
  EXPECT_EQ(errors[0],
            "needle.toml:10:11: alerts.webhook: \"https://hooks.example.com/x\" is not an http:// "
            "URL; expected e.g. \"http://127.0.0.1:9000/hook\" (https is not supported: post to a "
            "local relay over http)");
  EXPECT_EQ(errors[1],
            "needle.toml:11:11: alerts.causes[0]: unknown cause 'conect_refused' (did you mean "
            "'connect_refused'?)");
  expect_place(result.errors[2], 11, 29, "alerts.causes[1]");
  EXPECT_EQ(result.errors[2].message.rfind("unknown cause 'bogus'; known causes: connect_refused, "
                                           "connect_timeout, ",
                                           0),
            0u)
      << result.errors[2].message;
  EXPECT_EQ(errors[3],
            "needle.toml:11:38: alerts.causes[2]: expected a cause name such as "
            "\"connect_refused\", got an integer");
}

TEST(ConfigErrors, WebhookNeedsAHost) {
  EXPECT_EQ(only_error(minimal_plus("[alerts]\nwebhook = \"http:///hook\"\n")).message,
            "\"http:///hook\": the URL has no host; expected e.g. \"http://127.0.0.1:9000/hook\"");
  EXPECT_EQ(only_error(minimal_plus("[alerts]\nwebhook = \"http://127.0.0.1:0/x\"\n")).message,
            "\"http://127.0.0.1:0/x\": port 0 is not allowed (1-65535); expected e.g. "
            "\"http://127.0.0.1:9000/hook\"");
  testing::load_ok(minimal_plus("[alerts]\nwebhook = \"http://alerts.internal/hook\"\n"));
  testing::load_ok(minimal_plus("[alerts]\nwebhook = \"http://[::1]:9000\"\n"));
}

TEST(ConfigErrors, AllErrorsAreCollectedInFileOrder) {
  LoadResult result = load(R"([server]
workers = "two"
[[route]]
cluster = "nope"
[cluster.app]
hosts = ["127.0.0.1"]
conect_timeout = "5s"
)");
  const auto errors = error_strings(result);
  ASSERT_EQ(errors.size(), 5u) << ::testing::PrintToString(errors);
  EXPECT_EQ(result.errors[0].key, "server.workers");
  EXPECT_EQ(result.errors[1].key, "route[0].cluster");
  EXPECT_EQ(result.errors[2].key, "cluster.app.hosts[0]");
  EXPECT_EQ(result.errors[3].key, "cluster.app.conect_timeout");
  EXPECT_EQ(result.errors[4].key, "listener");  // no place: last
  EXPECT_FALSE(result.config.has_value());
}

TEST(ConfigErrors, MissingFileIsOneErrorNamingIt) {
  LoadResult result = load_config_file("/nonexistent/needle.toml");
  ASSERT_EQ(result.errors.size(), 1u);
  EXPECT_FALSE(result.config.has_value());
  EXPECT_EQ(result.errors[0].to_string(),
            "/nonexistent/needle.toml: cannot open config file: No such file or directory");
}

TEST(ConfigErrors, DirectoryIsUnreadable) {
  LoadResult result = load_config_file("/");
  ASSERT_EQ(result.errors.size(), 1u);
  EXPECT_EQ(result.errors[0].file, "/");
  EXPECT_NE(result.errors[0].message.find("cannot read config file"), std::string::npos)
      << result.errors[0].message;
}

}  // namespace
}  // namespace needle::config
