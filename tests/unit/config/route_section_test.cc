// The keys of issue 19 (docs/config.md "Routing", "Header rules", "Weighted hosts",
// "Client address and X-Forwarded-*"): what loads, and each refusal with file:line:key.
#include <gtest/gtest.h>

#include <string>

#include "config_test_util.h"

namespace needle::config {
namespace {

using testing::error_strings;
using testing::load;
using testing::load_ok;

constexpr std::string_view kHead = R"([[listener]]
address = "127.0.0.1:8080"
[cluster.app]
hosts = ["127.0.0.1:3000"]
)";

std::string with(std::string_view rest) {
  return std::string(kHead) + std::string(rest);
}

TEST(RouteSection, LoadsEveryKey) {
  const Config c = load_ok(with(R"([server]
trusted_proxies = ["10.0.0.0/8", "::1/128", "192.0.2.7"]
forwarded = true
server_header = "needle"
via = false
[[route]]
host = "*.example.com"
path_regex = '^/u/[0-9]+$'
methods = ["GET", "HEAD"]
host_rewrite = "$upstream"
response_timeout = "2s"
max_retries = 0
retry_non_idempotent = "never"
cluster = "app"
request_headers = { set = { "X-Env" = "prod" }, add = { "X-Client" = "$client_addr" }, remove = ["X-Debug"] }
response_headers = { remove = ["X-Powered-By"] }
[[route]]
path_prefix = "/api/"
rewrite_prefix = "/"
host_rewrite = "api.internal"
cluster = "app"
[[route]]
path_exact = "/old"
return = { status = 301, headers = { Location = "https://$host/new" }, body = "moved" }
)"));
  ASSERT_EQ(c.routes.size(), 3u);
  const RouteConfig& r0 = c.routes[0];
  EXPECT_EQ(*r0.path_regex, "^/u/[0-9]+$");
  EXPECT_EQ(r0.methods, (std::vector<std::string>{"GET", "HEAD"}));
  EXPECT_EQ(r0.host_rewrite.kind, HostRewrite::Kind::upstream);
  EXPECT_EQ(*r0.overrides.response_timeout, Millis(2000));
  EXPECT_EQ(*r0.overrides.max_retries, 0u);
  EXPECT_EQ(*r0.overrides.retry_non_idempotent, RetryNonIdempotent::never);
  EXPECT_EQ(r0.request_headers.rules().size(), 3u);
  EXPECT_EQ(r0.response_headers.rules().size(), 1u);
  EXPECT_EQ(*c.routes[1].rewrite_prefix, "/");
  EXPECT_EQ(c.routes[1].host_rewrite.value, "api.internal");
  ASSERT_TRUE(c.routes[2].return_action);
  EXPECT_EQ(c.routes[2].return_action->status, 301);
  EXPECT_EQ(c.routes[2].return_action->body, "moved");
  EXPECT_TRUE(c.routes[2].cluster.empty());
  EXPECT_TRUE(c.server.trusted_proxies.contains("10.2.3.4"));
  EXPECT_TRUE(c.server.trusted_proxies.contains("::1"));
  EXPECT_FALSE(c.server.trusted_proxies.contains("192.0.2.8"));
  EXPECT_TRUE(c.server.forwarded);
  EXPECT_EQ(*c.server.server_header, "needle");
  EXPECT_FALSE(c.server.via);
}

TEST(RouteSection, WeightedAndPlainHostsMix) {
  const Config c = load_ok(R"([[listener]]
address = "127.0.0.1:8080"
[[route]]
cluster = "app"
[cluster.app]
hosts = [{ address = "10.0.0.1:80", weight = 3 }, "10.0.0.2:80"]
)");
  ASSERT_EQ(c.clusters[0].hosts.size(), 2u);
  EXPECT_EQ(c.clusters[0].hosts[0].to_string(), "10.0.0.1:80");
  EXPECT_EQ(c.clusters[0].hosts[0].weight, 3u);
  EXPECT_EQ(c.clusters[0].hosts[1].weight, 1u);
}

// `needle check` on header rules that would add framing: refused with file:line:key.
TEST(RouteSection, HeaderRulesMayNotNameFramingFields) {
  const auto result = load(with(R"([[route]]
cluster = "app"
request_headers = { set = { "Content-Length" = "0" } }
response_headers = { add = { "Transfer-Encoding" = "chunked" }, remove = ["Connection"] }
[[route]]
path_prefix = "/b/"
cluster = "app"
request_headers = { set = { "Host" = "x" }, add = { "X-A" = "a\r\nContent-Length: 0" } }
)"));
  const auto errors = error_strings(result);
  ASSERT_EQ(errors.size(), 5u) << ::testing::PrintToString(errors);
  EXPECT_EQ(errors[0].rfind("needle.toml:7:", 0), 0u) << errors[0];
  EXPECT_NE(errors[0].find("route[0].request_headers.set.Content-Length: Content-Length frames "
                           "the message"),
            std::string::npos)
      << errors[0];
  EXPECT_NE(errors[1].find("route[0].response_headers.add.Transfer-Encoding"), std::string::npos);
  EXPECT_NE(errors[2].find("route[0].response_headers.remove[0]"), std::string::npos);
  EXPECT_NE(errors[4].find("route[1].request_headers.add.X-A: a header value may not contain CR"),
            std::string::npos)
      << errors[4];
  EXPECT_NE(errors[3].find("route[1].request_headers.set.Host"), std::string::npos);
  EXPECT_NE(errors[3].find("host_rewrite"), std::string::npos);
}

TEST(RouteSection, RefusesWhatCannotWork) {
  const auto result = load(with(R"([server]
trusted_proxies = ["10.0.0.0/33", "nope"]
[[route]]
path_prefix = "/a/"
path_exact = "/a"
cluster = "app"
[[route]]
path_regex = "(unclosed"
cluster = "app"
[[route]]
path_exact = "/x"
rewrite_prefix = "/y"
methods = ["get"]
cluster = "app"
[[route]]
host = "*example.com"
return = { status = 99 }
cluster = "app"
[[route]]
path_prefix = "/v/"
request_headers = { set = { "X-V" = "$nosuch" } }
cluster = "app"
)"));
  const std::string all = ::testing::PrintToString(error_strings(result));
  for (const char* expected :
       {"server.trusted_proxies[0]: \\\"10.0.0.0/33\\\" has a prefix length",
        "server.trusted_proxies[1]", "route[0]: a route matches its path with one of",
        "route[1].path_regex: not an RE2 regular expression",
        "route[2].rewrite_prefix: rewrite_prefix replaces the matched path_prefix",
        "route[2].methods[0]: \\\"get\\\": methods are case-sensitive",
        "route[3].return.status: expected an HTTP status", "route[3].return: a route with return",
        "route[3].host: \\\"*example.com\\\"",
        "route[4].request_headers.set.X-V: unknown variable"}) {
    EXPECT_NE(all.find(expected), std::string::npos) << expected << "\n" << all;
  }
}

TEST(RouteSection, SameMatchTwiceIsRefusedButDifferentKindsAreNot) {
  load_ok(with(R"([[route]]
path_prefix = "/"
cluster = "app"
[[route]]
path_exact = "/"
cluster = "app"
[[route]]
path_regex = "^/$"
cluster = "app"
[[route]]
path_prefix = "/"
methods = ["POST"]
cluster = "app"
)"));
  const auto dup = load(with(R"([[route]]
path_regex = "^/$"
cluster = "app"
[[route]]
path_regex = "^/$"
cluster = "app"
)"));
  ASSERT_EQ(dup.errors.size(), 1u);
  EXPECT_NE(dup.errors[0].message.find("same host and path match and methods as route[0]"),
            std::string::npos)
      << dup.errors[0].message;
}

TEST(RouteSection, ReturnRouteNeedsNoCluster) {
  const Config c = load_ok(with(R"([[route]]
return = { status = 204 }
)"));
  EXPECT_EQ(c.routes[0].return_action->status, 204);
  const auto missing = load(with("[[route]]\npath_prefix = \"/\"\n"));
  ASSERT_EQ(missing.errors.size(), 1u);
  EXPECT_EQ(missing.errors[0].key, "route[0].cluster");
}

}  // namespace
}  // namespace needle::config

namespace needle::config {
namespace {

// examples/routing.toml: API and web behind one listener (also run through `needle check` in
// tests/integration/routing_headers_test.cc).
TEST(RouteSection, RoutingExampleLoads) {
  LoadResult result = load_config_file(NEEDLE_SOURCE_DIR "/examples/routing.toml");
  for (const auto& e : result.errors) ADD_FAILURE() << e.to_string();
  ASSERT_TRUE(result.config);
  EXPECT_EQ(result.config->routes.size(), 6u);
  EXPECT_EQ(result.config->find_cluster("api")->hosts[0].weight, 3u);
}

}  // namespace
}  // namespace needle::config
