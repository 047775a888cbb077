// The match order of docs/config.md "Match order": exact host, wildcard hosts (longest suffix
// first), then the default; in a group path_exact, path_regex in config order, then the longest
// path_prefix; methods filter each candidate.
#include <gtest/gtest.h>

#include <string>

#include "proxy/router.h"

namespace needle::proxy {
namespace {

config::Config load(std::string routes) {
  const std::string text = R"([[listener]]
address = "127.0.0.1:8080"
[cluster.app]
hosts = ["127.0.0.1:3000"]
)" + routes;
  config::LoadResult result = config::parse_config(text, "needle.toml");
  for (const auto& e : result.errors) ADD_FAILURE() << e.to_string();
  return result.config.value_or(config::Config{});
}

// The name of the route picked, "-" for none, "405" when only another method's route matched.
std::string routed(const Router& router, std::string_view method, std::string_view host,
                   std::string_view target) {
  std::string forward;
  const RouteDecision d = router.route(method, host, target, forward);
  if (d.method_refused) return "405";
  return d.match ? std::string(d.match->route_name) : "-";
}

TEST(RouteMatch, ExactThenRegexThenLongestPrefix) {
  const config::Config c = load(R"(
[[route]]
path_prefix = "/"
cluster = "app"
[[route]]
path_prefix = "/static/"
cluster = "app"
[[route]]
path_regex = "\\.php$"
cluster = "app"
[[route]]
path_exact = "/static/index.php"
cluster = "app"
)");
  const Router router(c);
  EXPECT_EQ(routed(router, "GET", "a", "/static/index.php"), "=/static/index.php");
  EXPECT_EQ(routed(router, "GET", "a", "/static/other.php"), "~\\.php$");
  EXPECT_EQ(routed(router, "GET", "a", "/x.php?y=1"), "~\\.php$");  // the query is not matched
  EXPECT_EQ(routed(router, "GET", "a", "/static/a.css"), "/static/");
  EXPECT_EQ(routed(router, "GET", "a", "/other"), "/");
}

TEST(RouteMatch, RegexesAreTriedInConfigOrder) {
  const config::Config c = load(R"(
[[route]]
path_regex = "^/users/[0-9]+$"
cluster = "app"
[[route]]
path_regex = "^/users/"
cluster = "app"
)");
  const Router router(c);
  EXPECT_EQ(routed(router, "GET", "a", "/users/42"), "~^/users/[0-9]+$");
  EXPECT_EQ(routed(router, "GET", "a", "/users/bob"), "~^/users/");
  EXPECT_EQ(routed(router, "GET", "a", "/user"), "-");
}

TEST(RouteMatch, RegexMatchesTheNormalizedPath) {
  const config::Config c = load(R"(
[[route]]
path_regex = "^/admin/"
cluster = "app"
)");
  const Router router(c);
  EXPECT_EQ(routed(router, "GET", "a", "/public/../admin/x"), "~^/admin/");
  EXPECT_EQ(routed(router, "GET", "a", "/%61dmin/x"), "~^/admin/");
}

TEST(RouteMatch, ExactHostThenLongestWildcardThenDefault) {
  const config::Config c = load(R"(
[[route]]
host = "*.example.com"
path_prefix = "/"
cluster = "app"
[[route]]
host = "*.api.example.com"
path_prefix = "/"
cluster = "app"
[[route]]
host = "www.example.com"
path_prefix = "/www/"
cluster = "app"
[[route]]
path_prefix = "/"
cluster = "app"
)");
  const Router router(c);
  EXPECT_EQ(routed(router, "GET", "www.example.com", "/www/x"), "www.example.com/www/");
  // The exact host has no route for this path: the wildcard group is next.
  EXPECT_EQ(routed(router, "GET", "www.example.com", "/x"), "*.example.com/");
  EXPECT_EQ(routed(router, "GET", "v1.API.Example.com:8080", "/x"), "*.api.example.com/");
  EXPECT_EQ(routed(router, "GET", "a.b.example.com", "/x"), "*.example.com/");
  // "*.example.com" needs a label before the suffix.
  EXPECT_EQ(routed(router, "GET", "example.com", "/x"), "/");
  EXPECT_EQ(routed(router, "GET", "badexample.com", "/x"), "/");
}

TEST(RouteMatch, MethodsFilterCandidatesAndExplainA405) {
  const config::Config c = load(R"(
[[route]]
path_prefix = "/api/"
methods = ["GET", "HEAD"]
cluster = "app"
[[route]]
path_prefix = "/api/"
methods = ["POST"]
cluster = "app"
[[route]]
path_exact = "/upload"
methods = ["PUT"]
cluster = "app"
[[route]]
path_prefix = "/"
methods = ["GET"]
cluster = "app"
)");
  const Router router(c);
  std::string forward;
  const auto get = router.route("GET", "a", "/api/x", forward);
  const auto post = router.route("POST", "a", "/api/x", forward);
  ASSERT_TRUE(get.match && post.match);
  EXPECT_EQ(get.match->route_index, 0u);
  EXPECT_EQ(post.match->route_index, 1u);
  EXPECT_EQ(routed(router, "get", "a", "/api/x"), "405");  // RFC 9110 9.1: case-sensitive
  EXPECT_EQ(routed(router, "DELETE", "a", "/api/x"), "405");
  // The exact route refuses GET, the catch-all prefix takes it.
  EXPECT_EQ(routed(router, "GET", "a", "/upload"), "/");
  EXPECT_EQ(routed(router, "PUT", "a", "/upload"), "=/upload");
}

TEST(RouteMatch, LongestPrefixAmongFiftyRoutes) {
  std::string routes;
  for (int i = 0; i < 50; ++i) {
    routes += "[[route]]\npath_prefix = \"/svc" + std::to_string(i) + "/\"\ncluster = \"app\"\n";
  }
  routes += "[[route]]\npath_prefix = \"/svc1/deep/\"\ncluster = \"app\"\n";
  const config::Config c = load(routes);
  const Router router(c);
  EXPECT_EQ(routed(router, "GET", "a", "/svc1/deep/x"), "/svc1/deep/");
  EXPECT_EQ(routed(router, "GET", "a", "/svc1/x"), "/svc1/");
  EXPECT_EQ(routed(router, "GET", "a", "/svc49/x"), "/svc49/");
  EXPECT_EQ(routed(router, "GET", "a", "/svc50/x"), "-");
}

TEST(RouteMatch, ReturnRouteHasNoCluster) {
  const config::Config c = load(R"(
[[route]]
path_prefix = "/old/"
return = { status = 301, headers = { Location = "/new/" } }
[[route]]
path_prefix = "/"
cluster = "app"
)");
  const Router router(c);
  std::string forward;
  const auto d = router.route("GET", "a", "/old/x", forward);
  ASSERT_TRUE(d.match);
  EXPECT_EQ(d.match->cluster_index, RouteMatch::kNoCluster);
  EXPECT_TRUE(c.routes[d.match->route_index].return_action);
}

}  // namespace
}  // namespace needle::proxy
