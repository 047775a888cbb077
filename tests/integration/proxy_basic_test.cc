// End to end through the real needle binary: forwarding headers, keep-alive reuse, pipelining,
// bodiless responses, chunked relaying, HTTP/1.0 clients, 100-continue and routing; against
// nginx, the Express example app and ScriptedUpstream.
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "proxy_harness.h"
#include "support/express_fixture.h"
#include "support/nginx_fixture.h"
#include "support/scripted_upstream.h"

namespace needle::test {
namespace {

using namespace proxy;

ConnectionScript respond_always(ScriptedStep step) {
  ConnectionScript script;
  script.otherwise = std::move(step);
  return script;
}

size_t count_of(const std::string& haystack, std::string_view what) {
  size_t n = 0;
  for (size_t at = haystack.find(what); at != std::string::npos; at = haystack.find(what, at + 1)) {
    ++n;
  }
  return n;
}

TEST(ProxyBasic, GetThroughNeedleToNginx) {
  NginxAppServer app;
  app.routes = {{"/hello", "hello from nginx\n"}};
  NginxFixture nginx(app);
  auto needle = start_needle_for(nginx.port());
  auto r = get(needle->port(), "/hello");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "hello from nginx\n");
  EXPECT_EQ(r->headers.get("content-length"), "17");
  EXPECT_EQ(r->headers.get("connection"), "close");
  auto missing = get(needle->port(), "/nope");
  ASSERT_TRUE(missing.has_value());
  EXPECT_EQ(missing->status, 404);  // nginx's own 404, relayed
  auto lines = wait_log_lines(*needle, 2);
  ASSERT_EQ(lines.size(), 2u) << needle->access_log();
  EXPECT_EQ(json_field(lines[0], "status"), "200");
  EXPECT_EQ(json_field(lines[0], "cause"), "none");
  EXPECT_EQ(json_field(lines[0], "path"), "/hello");
}

TEST(ProxyBasic, GetThroughNeedleToExpress) {
  ExpressFixture app;
  auto needle = start_needle_for(app.port());
  auto r = get(needle->port(), "/hello");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "hello\n");
  auto bytes = get(needle->port(), "/bytes?n=100000");
  ASSERT_TRUE(bytes.has_value());
  EXPECT_EQ(bytes->status, 200);
  EXPECT_EQ(bytes->body, std::string(100000, 'x'));
  auto order = request(needle->port(), "POST", "/orders", "{\"item\":1}",
                       {{"Content-Type", "application/json"}});
  ASSERT_TRUE(order.has_value());
  EXPECT_EQ(order->status, 201);
  EXPECT_NE(order->body.find("\"ok\":true"), std::string::npos) << order->body;
}

TEST(ProxyBasic, ForwardingHeadersAndHopByHopRemoval) {
  ScriptedUpstream upstream;
  auto needle = start_needle_for(upstream.port());
  HttpClient client;
  ASSERT_TRUE(client.connect(needle->port()));
  auto r = client.get("/h", {{"Host", "app.example"},
                             {"Connection", "keep-alive, X-Secret-Hop"},
                             {"X-Secret-Hop", "drop me"},
                             {"Keep-Alive", "timeout=9"},
                             {"TE", "trailers"},
                             {"Upgrade", "websocket"},
                             {"Proxy-Connection", "keep-alive"},
                             {"X-Kept", "yes"}});
  ASSERT_TRUE(r.has_value()) << to_string(client.last_error());
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "ok\n");
  const std::string generated_id = r->headers.get("x-request-id");

  // Second request with a client-chosen request id: passed through unchanged.
  auto r2 = client.get("/h2", {{"Host", "app.example"}, {"X-Request-Id", "client-id-42"}});
  ASSERT_TRUE(r2.has_value());
  EXPECT_EQ(r2->status, 200);

  ASSERT_TRUE(upstream.wait_for_requests(2, milliseconds(2000)));
  auto reqs = upstream.requests();
  ASSERT_EQ(reqs.size(), 2u);
  const Headers& h = reqs[0].headers;
  EXPECT_EQ(h.get("host"), "app.example");
  EXPECT_EQ(h.get("x-forwarded-for"), "127.0.0.1");
  EXPECT_EQ(h.get("x-forwarded-proto"), "http");
  EXPECT_EQ(h.get("via"), "1.1 needle");
  EXPECT_EQ(h.get("x-kept"), "yes");
  const std::string upstream_id = h.get("x-request-id");
  EXPECT_FALSE(upstream_id.empty()) << reqs[0].head;
  for (const char* hop : {"x-secret-hop", "keep-alive", "te", "upgrade", "proxy-connection"}) {
    EXPECT_FALSE(h.has(hop)) << hop << " was forwarded:\n" << reqs[0].head;
  }
  // Connection may only carry needle's own option, never the client's tokens.
  EXPECT_EQ(h.get("connection").find("X-Secret-Hop"), std::string::npos) << reqs[0].head;
  EXPECT_EQ(reqs[1].headers.get("x-request-id"), "client-id-42");

  auto lines = wait_log_lines(*needle, 2);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(json_field(lines[0], "request_id"), upstream_id);
  EXPECT_EQ(json_field(lines[1], "request_id"), "client-id-42");
  EXPECT_EQ(json_field(lines[0], "host"), "app.example");
  // docs/access-log.md: `client` is ip:port (X-Forwarded-For above is the ip alone).
  EXPECT_EQ(json_field(lines[0], "client"), "127.0.0.1:" + std::to_string(client.local_port()));
  EXPECT_EQ(generated_id.empty() ? upstream_id : generated_id, upstream_id);
}

TEST(ProxyBasic, UnusableClientRequestIdIsReplacedUpstreamAndInTheLog) {
  ScriptedUpstream upstream;
  auto needle = start_needle_for(upstream.port());
  auto r = get(needle->port(), "/", {{"X-Request-Id", std::string(300, 'i')}});
  ASSERT_TRUE(r.has_value());
  ASSERT_TRUE(upstream.wait_for_requests(1, milliseconds(2000)));
  const std::string sent = upstream.requests()[0].headers.get("x-request-id");
  EXPECT_FALSE(sent.empty());
  EXPECT_NE(sent, std::string(300, 'i'));
  auto lines = wait_log_lines(*needle, 1);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(json_field(lines[0], "request_id"), sent);
}

TEST(ProxyBasic, AppendsToAnExistingForwardedForChain) {
  ScriptedUpstream upstream;
  // Only a trusted peer's chain is extended (docs/config.md "Client address and X-Forwarded-*").
  auto needle = start_needle_for(upstream.port(), "trusted_proxies = [\"127.0.0.1\"]\n");
  auto r = get(needle->port(), "/", {{"X-Forwarded-For", "203.0.113.9"}, {"Via", "1.1 edge"}});
  ASSERT_TRUE(r.has_value());
  ASSERT_TRUE(upstream.wait_for_requests(1, milliseconds(2000)));
  auto h = upstream.requests()[0].headers;
  EXPECT_EQ(h.get("x-forwarded-for"), "203.0.113.9, 127.0.0.1");
  EXPECT_EQ(h.get("via"), "1.1 edge, 1.1 needle");
}

TEST(ProxyBasic, HundredRequestsReuseOneExpressConnection) {
  ExpressFixture app;
  auto needle = start_needle_for(app.port(), {}, "idle_timeout = \"5s\"\n");
  HttpClient client;
  ASSERT_TRUE(client.connect(needle->port()));
  for (int i = 0; i < 100; ++i) {
    auto r = client.get("/hello");
    ASSERT_TRUE(r.has_value()) << i << ": " << to_string(client.last_error());
    ASSERT_EQ(r->status, 200);
    ASSERT_EQ(r->body, "hello\n");
    ASSERT_TRUE(r->keep_alive);
  }
  auto stats = app.stats();
  ASSERT_TRUE(stats.has_value());
  EXPECT_EQ(stats->requests, 100u);
  EXPECT_EQ(stats->connections, 1u);
}

TEST(ProxyBasic, HundredRequestsReuseOneNginxConnection) {
  NginxAppServer app;
  app.routes = {{"/n", "n\n"}};
  NginxOptions options;
  options.log_connections = true;
  NginxFixture nginx(app, options);
  auto needle = start_needle_for(nginx.port());
  HttpClient client;
  ASSERT_TRUE(client.connect(needle->port()));
  for (int i = 0; i < 100; ++i) {
    auto r = client.get("/n");
    ASSERT_TRUE(r.has_value()) << i << ": " << to_string(client.last_error());
    ASSERT_EQ(r->status, 200);
  }
  ASSERT_TRUE(nginx.wait_for_access_log_lines(100, milliseconds(3000)));
  EXPECT_EQ(nginx.distinct_connections(), 1u);
}

TEST(ProxyBasic, PipelinedRequestsAnsweredInOrder) {
  ConnectionScript script;  // the nth request on the upstream connection gets body "n"
  script.requests = {ScriptedStep::respond(200, "1"), ScriptedStep::respond(200, "2"),
                     ScriptedStep::respond(200, "3")};
  ScriptedUpstream upstream(script);
  auto needle = start_needle_for(upstream.port());
  HttpClient client;
  ASSERT_TRUE(client.connect(needle->port()));
  std::string three;
  for (const char* p : {"/one", "/two", "/three"}) {
    three += HttpClient::format_request("GET", p, {}, {}, needle->port());
  }
  ASSERT_TRUE(client.send_raw(three));
  auto responses = client.read_responses(3);
  ASSERT_EQ(responses.size(), 3u) << to_string(client.last_error());
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(responses[i].status, 200);
    EXPECT_EQ(responses[i].body, std::to_string(i + 1));
  }
  EXPECT_EQ(upstream.connections_accepted(), 1u);
  ASSERT_TRUE(upstream.wait_for_requests(3, milliseconds(2000)));
  auto reqs = upstream.requests();
  EXPECT_EQ(reqs[0].target, "/one");
  EXPECT_EQ(reqs[1].target, "/two");
  EXPECT_EQ(reqs[2].target, "/three");
  auto lines = wait_log_lines(*needle, 3);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(json_field(lines[0], "path"), "/one");
  EXPECT_EQ(json_field(lines[2], "path"), "/three");
}

TEST(ProxyBasic, PipelinedResponsesCarryTheirOwnBodies) {
  ScriptedStep echo;
  echo.echo_request_body = true;
  ScriptedUpstream upstream(respond_always(echo));
  auto needle = start_needle_for(upstream.port());
  HttpClient client;
  ASSERT_TRUE(client.connect(needle->port()));
  std::string three = HttpClient::format_request("POST", "/a", "first", {}, needle->port()) +
                      HttpClient::format_request("POST", "/b", "second", {}, needle->port()) +
                      HttpClient::format_request("POST", "/c", "third", {}, needle->port());
  ASSERT_TRUE(client.send_raw(three));
  auto responses = client.read_responses(3);
  ASSERT_EQ(responses.size(), 3u) << to_string(client.last_error());
  EXPECT_EQ(responses[0].body, "first");
  EXPECT_EQ(responses[1].body, "second");
  EXPECT_EQ(responses[2].body, "third");
}

TEST(ProxyBasic, HeadNoContentAndNotModifiedCarryNoBody) {
  ScriptedStep s204 = ScriptedStep::respond(204, "");
  ScriptedStep s304 = ScriptedStep::respond(304, "");
  s304.headers = {{"ETag", "\"v1\""}};
  ConnectionScript ordered;  // steps by request index on the upstream connection
  ordered.requests = {s204, s304};
  ordered.otherwise = ScriptedStep::respond(200, "after\n");
  ScriptedUpstream upstream(ordered);
  auto needle = start_needle_for(upstream.port());
  HttpClient client;
  ASSERT_TRUE(client.connect(needle->port()));

  auto r204 = client.get("/no-content");
  ASSERT_TRUE(r204.has_value()) << to_string(client.last_error());
  EXPECT_EQ(r204->status, 204);
  EXPECT_TRUE(r204->body.empty());
  EXPECT_FALSE(r204->headers.has("transfer-encoding"));
  auto r304 = client.get("/cached", {{"If-None-Match", "\"v1\""}});
  ASSERT_TRUE(r304.has_value()) << to_string(client.last_error());
  EXPECT_EQ(r304->status, 304);
  EXPECT_TRUE(r304->body.empty());
  EXPECT_EQ(r304->headers.get("etag"), "\"v1\"");
  auto after = client.get("/after");
  ASSERT_TRUE(after.has_value()) << to_string(client.last_error());
  EXPECT_EQ(after->body, "after\n");
  EXPECT_EQ(client.buffered(), 0u);
}

TEST(ProxyBasic, HeadToNginxThenGetOnTheSameConnection) {
  NginxAppServer app;
  app.routes = {{"/f", std::string(5000, 'f')}};
  NginxFixture nginx(app);
  auto needle = start_needle_for(nginx.port());
  HttpClient client;
  ASSERT_TRUE(client.connect(needle->port()));
  auto head = client.request("HEAD", "/f");
  ASSERT_TRUE(head.has_value()) << to_string(client.last_error());
  EXPECT_EQ(head->status, 200);
  EXPECT_EQ(head->headers.get("content-length"), "5000");
  EXPECT_TRUE(head->body.empty());
  // Nothing after the head: the next response parses cleanly.
  EXPECT_EQ(client.closed_by_peer(milliseconds(100)), PeerClose::still_open);
  auto r = client.get("/f");
  ASSERT_TRUE(r.has_value()) << to_string(client.last_error());
  EXPECT_EQ(r->body, std::string(5000, 'f'));
}

TEST(ProxyBasic, ChunkedUpstreamResponseRelayedIntact) {
  std::string body;
  for (int i = 0; i < 500; ++i) body += std::to_string(i) + ",";
  ScriptedStep step = ScriptedStep::respond(200, body);
  step.chunked = true;
  step.chunk_size = 7;
  ScriptedUpstream upstream(respond_always(step));
  auto needle = start_needle_for(upstream.port());
  HttpClient client;
  ASSERT_TRUE(client.connect(needle->port()));
  for (int i = 0; i < 2; ++i) {
    auto r = client.get("/chunked");
    ASSERT_TRUE(r.has_value()) << to_string(client.last_error());
    EXPECT_EQ(r->status, 200);
    EXPECT_TRUE(r->chunked);
    EXPECT_EQ(r->body, body);
    EXPECT_TRUE(r->keep_alive);
  }
}

TEST(ProxyBasic, ChunkedResponseToHttp10ClientIsCloseDelimited) {
  const std::string body(3000, 'c');
  ScriptedStep step = ScriptedStep::respond(200, body);
  step.chunked = true;
  step.chunk_size = 100;
  ScriptedUpstream upstream(respond_always(step));
  auto needle = start_needle_for(upstream.port());
  HttpClient client;
  ASSERT_TRUE(client.connect(needle->port()));
  ASSERT_TRUE(client.send_raw("GET /c HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n\r\n"));
  auto r = client.read_response();
  ASSERT_TRUE(r.has_value()) << to_string(client.last_error());
  EXPECT_EQ(r->status, 200);
  EXPECT_FALSE(r->chunked);
  EXPECT_TRUE(r->close_delimited);
  EXPECT_EQ(r->body, body);
  EXPECT_FALSE(r->headers.has("transfer-encoding"));
  EXPECT_EQ(client.closed_by_peer(milliseconds(1000)), PeerClose::eof);
}

TEST(ProxyBasic, ExpectContinueGetsInterimThenFinal) {
  ExpressFixture app;
  auto needle = start_needle_for(app.port());
  HttpClient client;
  ASSERT_TRUE(client.connect(needle->port()));
  ASSERT_TRUE(client.send_raw(
      "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\nExpect: 100-continue\r\n\r\n"));
  auto interim = client.read_response(milliseconds(2000));
  ASSERT_TRUE(interim.has_value()) << to_string(client.last_error());
  EXPECT_EQ(interim->status, 100);
  EXPECT_EQ(interim->reason, "Continue");
  ASSERT_TRUE(client.send_raw("hello world"));
  auto final_response = client.read_response();
  ASSERT_TRUE(final_response.has_value()) << to_string(client.last_error());
  EXPECT_EQ(final_response->status, 200);
  EXPECT_EQ(final_response->body, "hello world");
  // Exactly one 100 Continue: needle answered it and dropped any the upstream sent.
  EXPECT_EQ(count_of(interim->raw + final_response->raw, "100 Continue"), 1u);
}

TEST(ProxyBasic, Http10ClientWithoutKeepAliveIsClosed) {
  ScriptedUpstream upstream;
  auto needle = start_needle_for(upstream.port());
  HttpClient client;
  ASSERT_TRUE(client.connect(needle->port()));
  ASSERT_TRUE(client.send_raw("GET /ten HTTP/1.0\r\nHost: x\r\n\r\n"));
  auto r = client.read_response();
  ASSERT_TRUE(r.has_value()) << to_string(client.last_error());
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "ok\n");
  EXPECT_FALSE(r->keep_alive);
  EXPECT_EQ(client.closed_by_peer(milliseconds(1000)), PeerClose::eof);
}

TEST(ProxyBasic, Http10ClientWithKeepAliveIsKept) {
  ScriptedUpstream upstream;
  auto needle = start_needle_for(upstream.port());
  HttpClient client;
  ASSERT_TRUE(client.connect(needle->port()));
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(client.send_raw("GET /ten HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n\r\n"));
    auto r = client.read_response();
    ASSERT_TRUE(r.has_value()) << i << ": " << to_string(client.last_error());
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->body, "ok\n");
    EXPECT_EQ(r->headers.get("connection"), "keep-alive");
    EXPECT_TRUE(r->keep_alive);
  }
  EXPECT_EQ(client.closed_by_peer(milliseconds(200)), PeerClose::still_open);
}

TEST(ProxyBasic, RoutesByHostAndPathPrefix) {
  ScriptedUpstream api(respond_always(ScriptedStep::respond(200, "api\n")));
  ScriptedUpstream web(respond_always(ScriptedStep::respond(200, "web\n")));
  ConfigSpec spec;
  spec.routes = {RouteSpec{"api.example", "/v1/", "api"}, RouteSpec{"", "/static/", "web"},
                 RouteSpec{"www.example", "/", "web"}};
  spec.clusters = {ClusterSpec{"api", {api.port()}, ""}, ClusterSpec{"web", {web.port()}, ""}};
  auto needle = start_needle(spec);
  const int port = needle->port();

  auto a = get(port, "/v1/users", {{"Host", "API.example:8080"}});
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->body, "api\n");
  auto b = get(port, "/static/app.js", {{"Host", "api.example"}});
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(b->body, "web\n");
  auto c = get(port, "/anything", {{"Host", "www.example"}});
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->body, "web\n");
  auto none = get(port, "/v2/users", {{"Host", "api.example"}});
  ASSERT_TRUE(none.has_value());
  EXPECT_EQ(none->status, 404);
  EXPECT_EQ(api.requests_received(), 1u);
  EXPECT_EQ(web.requests_received(), 2u);
  // A 404 for no route keeps the client connection usable.
  HttpClient client;
  ASSERT_TRUE(client.connect(port));
  auto nr = client.get("/nowhere", {{"Host", "other.example"}});
  ASSERT_TRUE(nr.has_value());
  EXPECT_EQ(nr->status, 404);
  auto ok = client.get("/static/x", {{"Host", "other.example"}});
  ASSERT_TRUE(ok.has_value()) << to_string(client.last_error());
  EXPECT_EQ(ok->body, "web\n");

  auto lines = wait_log_lines(*needle, 6);
  ASSERT_GE(lines.size(), 4u);
  EXPECT_EQ(json_field(lines[3], "status"), "404");
  EXPECT_EQ(json_field(lines[3], "cause"), "no_route");
  EXPECT_EQ(json_field(lines[0], "cluster"), "api");
}

TEST(ProxyBasic, KeepAliveTimeoutAnnouncedByDefault) {
  ScriptedUpstream upstream;
  auto needle = start_needle_for(upstream.port());
  HttpClient client;
  ASSERT_TRUE(client.connect(needle->port()));
  auto r = client.get("/");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->headers.get("keep-alive"), "timeout=75");
  EXPECT_TRUE(r->keep_alive);
}

TEST(ProxyBasic, IdleClientConnectionClosedAfterClientIdleTimeout) {
  ScriptedUpstream upstream;
  auto needle = start_needle_for(upstream.port(), "client_idle_timeout = \"300ms\"\n");
  HttpClient client;
  ASSERT_TRUE(client.connect(needle->port()));
  auto r = client.get("/");
  ASSERT_TRUE(r.has_value());
  const auto idle_since = Clock::now();
  EXPECT_EQ(client.closed_by_peer(milliseconds(2000)), PeerClose::eof);
  const auto waited =
      std::chrono::duration_cast<milliseconds>(Clock::now() - idle_since).count();
  EXPECT_GE(waited, 250);
  EXPECT_LE(waited, 1000);
}

}  // namespace
}  // namespace needle::test
