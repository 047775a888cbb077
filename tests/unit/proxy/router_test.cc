#include "proxy/router.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace needle::proxy {
namespace {

struct R {
  std::optional<std::string> host;
  std::string prefix;
  std::string cluster;
};

config::Config make_config(const std::vector<R>& routes) {
  config::Config c;
  for (const R& r : routes) {
    c.routes.push_back(config::RouteConfig{r.host, r.prefix, r.cluster});
    if (!c.find_cluster(r.cluster)) c.clusters.push_back(config::ClusterConfig{.name = r.cluster});
  }
  return c;
}

// The route name that routing picks for (host, target), "-" for none, "400" when refused.
std::string routed(const Router& router, std::string_view host, std::string_view target) {
  std::string forward;
  const RouteDecision d = router.route(host, target, forward);
  if (d.path_refused()) return "400";
  return d.match ? std::string(d.match->route_name) : "-";
}

std::string forwarded(const Router& router, std::string_view target) {
  std::string forward;
  router.route("a.test", target, forward);
  return forward;
}

TEST(Router, LongestPrefixWinsWhateverTheConfigOrder) {
  const Router router(make_config({{{}, "/", "root"},
                                   {{}, "/api/", "api"},
                                   {{}, "/api/v2/", "v2"},
                                   {{}, "/api/v2/admin", "admin"}}));
  EXPECT_EQ(routed(router, "a.test", "/"), "/");
  EXPECT_EQ(routed(router, "a.test", "/api"), "/");
  EXPECT_EQ(routed(router, "a.test", "/api/x"), "/api/");
  EXPECT_EQ(routed(router, "a.test", "/api/v2/x"), "/api/v2/");
  EXPECT_EQ(routed(router, "a.test", "/api/v2/admin/users"), "/api/v2/admin");
  EXPECT_EQ(routed(router, "a.test", "/api/v2/administrator"), "/api/v2/admin");  // plain prefix
}

TEST(Router, MatchReportsTheConfigIndexes) {
  const Router router(make_config({{{}, "/", "root"}, {{}, "/api/", "api"}}));
  std::string forward;
  const RouteDecision d = router.route("a.test", "/api/x", forward);
  ASSERT_TRUE(d.match);
  EXPECT_EQ(d.match->route_index, 1u);
  EXPECT_EQ(d.match->cluster_index, 1u);
}

TEST(Router, PrefixIsAPlainStringPrefix) {
  const Router router(make_config({{{}, "/public", "p"}, {{}, "/public/", "ps"}}));
  EXPECT_EQ(routed(router, "a.test", "/public"), "/public");
  EXPECT_EQ(routed(router, "a.test", "/publicity"), "/public");
  EXPECT_EQ(routed(router, "a.test", "/public/x"), "/public/");
  const Router slash_only(make_config({{{}, "/public/", "ps"}}));
  EXPECT_EQ(routed(slash_only, "a.test", "/public"), "-");
  EXPECT_EQ(routed(slash_only, "a.test", "/publicity"), "-");
}

TEST(Router, RoutesOnTheNormalizedPath) {
  const Router router(make_config({{{}, "/public/", "public"}, {{}, "/admin/", "admin"}}));
  EXPECT_EQ(routed(router, "a.test", "/public/../admin/"), "/admin/");
  EXPECT_EQ(routed(router, "a.test", "/public/%2e%2e/admin/x"), "/admin/");
  EXPECT_EQ(routed(router, "a.test", "/public/./x"), "/public/");
  EXPECT_EQ(routed(router, "a.test", "/%70ublic/x"), "/public/");
  EXPECT_EQ(routed(router, "a.test", "/public/../admin"), "-");  // "/admin" lacks the '/'
  EXPECT_EQ(routed(router, "a.test", "/public/..%2fadmin/"), "400");
  EXPECT_EQ(routed(router, "a.test", "/public/%zz"), "400");
  // The query takes no part in routing and is not normalized.
  EXPECT_EQ(routed(router, "a.test", "/public/x?next=/../admin/"), "/public/");
  EXPECT_EQ(routed(router, "a.test", "/admin/?%zz"), "/admin/");
  EXPECT_EQ(routed(router, "a.test", "http://a.test/public/../admin/?q"), "/admin/");
}

TEST(Router, ForwardsTheNormalizedPathAndTheQueryAsReceived) {
  const Router router(make_config({{{}, "/", "root"}}));
  EXPECT_EQ(forwarded(router, "/a/b"), "");  // unchanged: sent as received
  EXPECT_EQ(forwarded(router, "/a/b?x=/../%2f"), "");
  EXPECT_EQ(forwarded(router, "/a/../b?x=/../%2f&y"), "/b?x=/../%2f&y");
  EXPECT_EQ(forwarded(router, "/a/%2e%2E/b%7e?"), "/b~?");
  EXPECT_EQ(forwarded(router, "http://a.test/a/./b?q=1"), "/a/b?q=1");
  EXPECT_EQ(forwarded(router, "http://a.test/a/./b#frag"), "/a/b");
  EXPECT_EQ(forwarded(router, "/a/%zz"), "");
}

TEST(Router, HostRoutesComeBeforeHostlessOnes) {
  const Router router(make_config({{{}, "/api/v1/", "any-long"},
                                   {"api.test", "/", "api-root"},
                                   {"api.test", "/api/", "api-api"},
                                   {"other.test", "/x/", "other"}}));
  // A host route matches: it wins even over a longer host-less prefix.
  EXPECT_EQ(routed(router, "api.test", "/api/v1/x"), "api.test/api/");
  EXPECT_EQ(routed(router, "API.Test:8080", "/z"), "api.test/");
  // No route of the host matches: host-less routes are the fallback.
  EXPECT_EQ(routed(router, "other.test", "/api/v1/x"), "/api/v1/");
  EXPECT_EQ(routed(router, "other.test", "/y"), "-");
  EXPECT_EQ(routed(router, "unknown.test", "/api/v1/x"), "/api/v1/");
  EXPECT_EQ(routed(router, "unknown.test", "/x/"), "-");
}

TEST(Router, HostMatchingIgnoresCaseAndPortWithoutAllocating) {
  EXPECT_TRUE(host_matches("Example.COM:8080", "example.com"));
  EXPECT_TRUE(host_matches("example.com", "example.com"));
  EXPECT_TRUE(host_matches("[::1]:80", "[::1]"));
  EXPECT_FALSE(host_matches("example.co", "example.com"));
  EXPECT_FALSE(host_matches("example.com.evil", "example.com"));
  EXPECT_EQ(normalize_host("Example.COM:8080"), "example.com");
}

TEST(Router, TargetPathOfEachForm) {
  EXPECT_EQ(target_path("/a?b"), "/a?b");
  EXPECT_EQ(target_path("http://h/a?b"), "/a?b");
  EXPECT_EQ(target_path("http://h"), "/");
  EXPECT_EQ(target_path("*"), "*");
  EXPECT_EQ(path_end("/a?b#c"), 2u);
  EXPECT_EQ(path_end("/a#c?b"), 2u);
  EXPECT_EQ(path_end("/a"), 2u);
}

TEST(Router, FiftyRoutesPickTheLongestMatch) {
  std::vector<R> routes;
  for (int i = 0; i < 50; ++i) {
    routes.push_back({{}, "/svc" + std::to_string(i) + "/", "c" + std::to_string(i % 5)});
  }
  routes.push_back({{}, "/svc1/deep/", "deep"});
  const Router router(make_config(routes));
  EXPECT_EQ(routed(router, "a.test", "/svc1/x"), "/svc1/");
  EXPECT_EQ(routed(router, "a.test", "/svc10/x"), "/svc10/");
  EXPECT_EQ(routed(router, "a.test", "/svc1/deep/x"), "/svc1/deep/");
  EXPECT_EQ(routed(router, "a.test", "/svc49/"), "/svc49/");
  EXPECT_EQ(routed(router, "a.test", "/svc50/"), "-");
}

}  // namespace
}  // namespace needle::proxy
