// Issue 19 through the real binary: match order (exact, regex, prefix, wildcard hosts,
// methods), route actions (rewrite_prefix, host_rewrite, return, per-route retries), weighted
// hosts, header rules and the trusted-proxy rules of X-Forwarded-*; against ScriptedUpstream.
#include <gtest/gtest.h>

#include <map>
#include <string>

#include <sys/wait.h>

#include <fstream>

#include "proxy_harness.h"
#include "support/child_process.h"
#include "support/scripted_upstream.h"

namespace needle::test {
namespace {

using namespace proxy;

std::string addr(int port) {
  return "\"127.0.0.1:" + std::to_string(port) + "\"";
}

// An upstream that answers 200 with `body` to every request.
ConnectionScript answer(std::string body) {
  ConnectionScript script;
  script.otherwise = ScriptedStep::respond(200, std::move(body));
  return script;
}

size_t count_attempts(const std::string& line) {
  size_t n = 0;
  for (size_t at = line.find("\"upstream\":"); at != std::string::npos;
       at = line.find("\"upstream\":", at + 1)) {
    ++n;
  }
  return n;
}

std::unique_ptr<NeedleProcess> start_with(std::string body) {
  return NeedleProcess::start([body](int port) {
    return "[server]\nworkers = 1\naccess_log = \"stdout\"\n" + body +
           "\n[[listener]]\naddress = " + addr(port) + "\n[admin]\naddress = \"off\"\n";
  });
}

// The upstream (by its body) that served each of these requests.
TEST(RoutingHeaders, MatchOrderWildcardsAndMethods) {
  ScriptedUpstream exact(answer("exact"));
  ScriptedUpstream regex(answer("regex"));
  ScriptedUpstream prefix(answer("prefix"));
  ScriptedUpstream wild(answer("wild"));
  auto needle = start_with(R"(
[[route]]
path_prefix = "/"
cluster = "prefix"
[[route]]
path_regex = '^/users/[0-9]+$'
methods = ["GET"]
cluster = "regex"
[[route]]
path_exact = "/users/0"
cluster = "exact"
[[route]]
host = "*.example.com"
path_prefix = "/"
cluster = "wild"
[cluster.exact]
hosts = [)" + addr(exact.port()) +
                           R"(]
[cluster.regex]
hosts = [)" + addr(regex.port()) +
                           R"(]
[cluster.prefix]
hosts = [)" + addr(prefix.port()) +
                           R"(]
[cluster.wild]
hosts = [)" + addr(wild.port()) +
                           "]\n");
  ASSERT_TRUE(needle);
  auto body = [&](std::string_view method, std::string_view path, std::string host = "a.test") {
    auto r = request(needle->port(), method, path, {}, {{"Host", host}});
    return r ? std::to_string(r->status) + " " + r->body : std::string("no response");
  };
  EXPECT_EQ(body("GET", "/users/0"), "200 exact");
  EXPECT_EQ(body("GET", "/users/42"), "200 regex");
  EXPECT_EQ(body("GET", "/users/42/../7"), "200 regex");  // on the normalized path
  EXPECT_EQ(body("POST", "/users/42"), "200 prefix");     // the regex route is GET only
  EXPECT_EQ(body("GET", "/users/x"), "200 prefix");
  EXPECT_EQ(body("GET", "/users/0", "shop.Example.com"), "200 wild");
  EXPECT_EQ(body("GET", "/users/0", "example.com"), "200 exact");
}

TEST(RoutingHeaders, MethodOnlyMismatchIs405) {
  ScriptedUpstream app;
  auto needle = start_with(R"(
[[route]]
path_prefix = "/"
methods = ["GET", "HEAD"]
cluster = "app"
[cluster.app]
hosts = [)" + addr(app.port()) +
                           "]\n");
  ASSERT_TRUE(needle);
  auto r = request(needle->port(), "DELETE", "/x");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 405);
  auto ok = request(needle->port(), "GET", "/x");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200);
}

TEST(RoutingHeaders, RewritePrefixAndHostRewrite) {
  ScriptedUpstream api;
  ScriptedUpstream web;
  auto needle = start_with(R"(
[[route]]
path_prefix = "/api/"
rewrite_prefix = "/v2/"
host_rewrite = "api.internal"
cluster = "api"
[[route]]
path_prefix = "/web"
rewrite_prefix = "/"
host_rewrite = "$upstream"
cluster = "web"
[cluster.api]
hosts = [)" + addr(api.port()) +
                           R"(]
[cluster.web]
hosts = [)" + addr(web.port()) +
                           "]\n");
  ASSERT_TRUE(needle);
  ASSERT_TRUE(get(needle->port(), "/api/users/./7?q=a%20b", {{"Host", "shop.test"}}));
  ASSERT_TRUE(get(needle->port(), "/web?x=1", {{"Host", "shop.test"}}));
  ASSERT_TRUE(api.wait_for_requests(1, milliseconds(2000)));
  ASSERT_TRUE(web.wait_for_requests(1, milliseconds(2000)));
  const auto a = api.requests()[0];
  EXPECT_EQ(a.target, "/v2/users/7?q=a%20b");
  EXPECT_EQ(a.headers.get("host"), "api.internal");
  EXPECT_EQ(a.headers.get("x-forwarded-host"), "shop.test");
  const auto w = web.requests()[0];
  EXPECT_EQ(w.target, "/?x=1");
  EXPECT_EQ(w.headers.get("host"), "127.0.0.1:" + std::to_string(web.port()));
  auto lines = wait_log_lines(*needle, 2);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(json_field(lines[0], "path"), "/api/users/./7?q=a%20b");  // as received
}

TEST(RoutingHeaders, ReturnActionRedirectsWithoutACluster) {
  auto needle = start_with(R"(
[[route]]
host = "old.test"
return = { status = 301, headers = { Location = "https://new.test$request_uri" } }
[[route]]
path_exact = "/healthz"
return = { status = 200, body = "ok from needle\n" }
)");
  ASSERT_TRUE(needle);
  HttpClient client;
  ASSERT_TRUE(client.connect(needle->port()));
  auto r = client.get("/a/b?c=d", {{"Host", "old.test"}});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 301);
  EXPECT_EQ(r->headers.get("location"), "https://new.test/a/b?c=d");
  EXPECT_EQ(r->headers.get("content-length"), "0");
  // The connection is kept: a second request on it.
  auto h = client.get("/healthz", {{"Host", "any.test"}});
  ASSERT_TRUE(h) << to_string(client.last_error());
  EXPECT_EQ(h->status, 200);
  EXPECT_EQ(h->body, "ok from needle\n");
  auto none = client.get("/other", {{"Host", "any.test"}});
  ASSERT_TRUE(none);
  EXPECT_EQ(none->status, 404);
  auto lines = wait_log_lines(*needle, 3);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(json_field(lines[0], "status"), "301");
  EXPECT_EQ(json_field(lines[0], "cause"), "none");
}

TEST(RoutingHeaders, PerRouteRetriesOverrideTheCluster) {
  // The only host refuses connections: the cluster would retry twice, the route says never.
  const int closed_port = free_port();
  const int other_closed_port = free_port();
  auto needle = start_with(R"(
[[route]]
path_prefix = "/noretry/"
max_retries = 0
cluster = "app"
[[route]]
path_prefix = "/"
cluster = "app"
[cluster.app]
hosts = [)" + addr(closed_port) +
                           R"(, )" + addr(other_closed_port) + "]\n");
  ASSERT_TRUE(needle);
  ASSERT_TRUE(get(needle->port(), "/noretry/x"));
  ASSERT_TRUE(get(needle->port(), "/x"));
  auto lines = wait_log_lines(*needle, 2);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(count_attempts(lines[0]), 1u) << lines[0];
  EXPECT_EQ(count_attempts(lines[1]), 2u) << lines[1];
}

TEST(RoutingHeaders, WeightedRoundRobinSharesRequests) {
  ScriptedUpstream heavy(answer("heavy"));
  ScriptedUpstream light(answer("light"));
  auto needle = start_with(R"(
[[route]]
cluster = "app"
[cluster.app]
hosts = [{ address = )" + addr(heavy.port()) +
                           R"(, weight = 3 }, )" + addr(light.port()) + "]\n");
  ASSERT_TRUE(needle);
  HttpClient client;
  ASSERT_TRUE(client.connect(needle->port()));
  std::map<std::string, int> served;
  for (int i = 0; i < 8; ++i) {
    auto r = client.get("/", {{"Connection", "keep-alive"}});
    ASSERT_TRUE(r);
    ++served[r->body];
  }
  EXPECT_EQ(served["heavy"], 6);
  EXPECT_EQ(served["light"], 2);
}

TEST(RoutingHeaders, HeaderRulesOnRequestAndResponse) {
  ScriptedStep step = ScriptedStep::respond(200, "ok\n");
  step.headers = {{"Server", "Express"}, {"X-Powered-By", "Express"}};
  ConnectionScript script;
  script.otherwise = step;
  ScriptedUpstream app(script);
  auto needle = start_with(R"(server_header = "needle"
[[route]]
path_prefix = "/"
cluster = "app"
request_headers = { set = { "X-Env" = "prod" }, add = { "X-Client" = "$client_addr $scheme" }, remove = ["X-Debug"] }
response_headers = { set = { "Cache-Control" = "no-store" }, remove = ["X-Powered-By"] }
[cluster.app]
hosts = [)" + addr(app.port()) +
                           "]\n");
  ASSERT_TRUE(needle);
  auto r = get(needle->port(), "/", {{"X-Env", "dev"}, {"X-Debug", "1"}});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->headers.get("server"), "needle");
  EXPECT_EQ(r->headers.get("cache-control"), "no-store");
  EXPECT_FALSE(r->headers.has("x-powered-by"));
  ASSERT_TRUE(app.wait_for_requests(1, milliseconds(2000)));
  const auto received = app.requests();
  const auto& h = received[0].headers;
  EXPECT_EQ(h.get("x-env"), "prod");
  EXPECT_EQ(h.get("x-client"), "127.0.0.1 http");
  EXPECT_FALSE(h.has("x-debug"));
  EXPECT_EQ(received[0].head.find("dev"), std::string::npos) << received[0].head;
}

TEST(RoutingHeaders, UntrustedClientCannotSpoofForwardingHeaders) {
  ScriptedUpstream app;
  auto needle = start_with(R"(forwarded = true
[[route]]
cluster = "app"
[cluster.app]
hosts = [)" + addr(app.port()) +
                           "]\n");
  ASSERT_TRUE(needle);
  ASSERT_TRUE(get(needle->port(), "/",
                  {{"Host", "a.test"},
                   {"X-Forwarded-For", "1.2.3.4"},
                   {"X-Forwarded-Proto", "https"},
                   {"X-Forwarded-Host", "evil.test"},
                   {"Forwarded", "for=1.2.3.4"}}));
  ASSERT_TRUE(app.wait_for_requests(1, milliseconds(2000)));
  const auto received = app.requests();
  const auto& h = received[0].headers;
  EXPECT_EQ(h.get("x-forwarded-for"), "127.0.0.1");
  EXPECT_EQ(h.get("x-forwarded-proto"), "http");
  EXPECT_EQ(h.get("x-forwarded-host"), "a.test");
  EXPECT_EQ(h.get("forwarded"), "for=127.0.0.1;host=\"a.test\";proto=http");
  auto lines = wait_log_lines(*needle, 1);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(json_field(lines[0], "client").rfind("127.0.0.1:", 0), 0u) << lines[0];
}

TEST(RoutingHeaders, TrustedProxyChainIsExtendedAndTheLogShowsTheRealClient) {
  ScriptedUpstream app;
  auto needle = start_with(R"(trusted_proxies = ["127.0.0.0/8", "10.0.0.0/8"]
[[route]]
cluster = "app"
request_headers = { set = { "X-Real-IP" = "$client_addr" } }
[cluster.app]
hosts = [)" + addr(app.port()) +
                           "]\n");
  ASSERT_TRUE(needle);
  ASSERT_TRUE(get(needle->port(), "/",
                  {{"X-Forwarded-For", "198.51.100.1, 203.0.113.9, 10.1.1.1"},
                   {"X-Forwarded-Proto", "https"}}));
  ASSERT_TRUE(app.wait_for_requests(1, milliseconds(2000)));
  const auto received = app.requests();
  const auto& h = received[0].headers;
  EXPECT_EQ(h.get("x-forwarded-for"), "198.51.100.1, 203.0.113.9, 10.1.1.1, 127.0.0.1");
  EXPECT_EQ(h.get("x-forwarded-proto"), "https");
  EXPECT_EQ(h.get("x-real-ip"), "203.0.113.9");
  auto lines = wait_log_lines(*needle, 1);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(json_field(lines[0], "client"), "203.0.113.9");
}

struct CheckResult {
  int exit_code = -1;
  std::string err;
};

CheckResult needle_check(const std::string& path, const TempDir& dir) {
  ChildOptions options;
  options.argv = {NEEDLE_BINARY_PATH, "check", "-c", path};
  options.output_dir = dir.path();
  options.name = "needle-check";
  ChildProcess child(options);
  CheckResult result;
  auto status = child.wait_exit(milliseconds(5000));
  if (status && WIFEXITED(*status)) result.exit_code = WEXITSTATUS(*status);
  result.err = child.stderr_text();
  return result;
}

TEST(RoutingHeaders, CheckAcceptsTheRoutingExample) {
  TempDir dir;
  const auto result = needle_check(std::string(NEEDLE_SOURCE_DIR) + "/examples/routing.toml", dir);
  EXPECT_EQ(result.exit_code, 0) << result.err;
}

TEST(RoutingHeaders, CheckRefusesAFramingHeaderRuleWithFileLineAndKey) {
  TempDir dir;
  const auto path = dir.path() / "rules.toml";
  std::ofstream(path) << "[[listener]]\naddress = \"127.0.0.1:18080\"\n"
                         "[[route]]\ncluster = \"app\"\n"
                         "request_headers = { add = { \"Transfer-Encoding\" = \"chunked\" } }\n"
                         "[cluster.app]\nhosts = [\"127.0.0.1:3000\"]\n";
  const auto result = needle_check(path.string(), dir);
  EXPECT_EQ(result.exit_code, 1) << result.err;
  EXPECT_NE(result.err.find("rules.toml:5:"), std::string::npos) << result.err;
  EXPECT_NE(result.err.find("route[0].request_headers.add.Transfer-Encoding"), std::string::npos)
      << result.err;
}

}  // namespace
}  // namespace needle::test
