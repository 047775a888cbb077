// Self-tests of tests/support: each fixture does what integration tests will rely on, against
// real peers on loopback. Every test is short (well under 5 s) and every wait is bounded.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <chrono>
#include <string>
#include <thread>

#include "support/child_process.h"
#include "support/delay_line.h"
#include "support/express_fixture.h"
#include "support/free_port.h"
#include "support/haproxy_fixture.h"
#include "support/http_client.h"
#include "support/needle_process.h"
#include "support/nginx_fixture.h"
#include "support/scripted_upstream.h"

namespace needle::test {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

long elapsed_ms(Clock::time_point since) {
  return static_cast<long>(std::chrono::duration_cast<milliseconds>(Clock::now() - since).count());
}

// ---- free_port, TempDir, ChildProcess ----

TEST(FreePort, IsBindableLoopbackPort) {
  int port = free_port();
  EXPECT_GT(port, 0);
  EXPECT_LT(port, 65536);
}

TEST(TempDir, IsRemovedWithItsContents) {
  std::filesystem::path kept;
  {
    TempDir dir;
    kept = dir.path();
    write_text_file(dir.file("a.txt"), "x");
    std::filesystem::create_directories(dir.path() / "sub" / "deeper");
    write_text_file(dir.path() / "sub" / "deeper" / "b.txt", "y");
    EXPECT_EQ(read_text_file(dir.file("a.txt")), "x");
  }
  EXPECT_FALSE(std::filesystem::exists(kept));
}

TEST(ChildProcess, CapturesOutputAndExitStatus) {
  TempDir dir;
  ChildOptions options;
  options.argv = {"sh", "-c", "echo out; echo \"err $EXTRA\" >&2; exit 3"};
  options.env = {{"EXTRA", "added"}};
  options.output_dir = dir.path();
  options.name = "sh";
  ChildProcess child(options);
  auto status = child.wait_exit(milliseconds(3000));
  ASSERT_TRUE(status.has_value());
  ASSERT_TRUE(WIFEXITED(*status));
  EXPECT_EQ(WEXITSTATUS(*status), 3);
  EXPECT_EQ(child.stdout_text(), "out\n");
  EXPECT_EQ(child.stderr_text(), "err added\n");
}

TEST(ChildProcess, TerminateAndReportMissingProgram) {
  TempDir dir;
  ChildOptions options;
  options.argv = {"sleep", "30"};
  options.output_dir = dir.path();
  options.name = "sleep";
  ChildProcess sleeper(options);
  EXPECT_FALSE(sleeper.wait_exit(milliseconds(50)).has_value());
  sleeper.terminate(SIGTERM);
  auto status = sleeper.wait_exit(milliseconds(3000));
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(WIFSIGNALED(*status));
  EXPECT_EQ(WTERMSIG(*status), SIGTERM);

  options.argv = {"/nonexistent/program"};
  EXPECT_THROW(ChildProcess{options}, std::runtime_error);
}

// ---- HttpClient against nginx ----

NginxAppServer small_app() {
  NginxAppServer app;
  app.routes = {{"/12b", "hello world\n"}, {"/4k", std::string(4096, 'k')}};
  return app;
}

TEST(HttpClientNginx, GetReturns200WithBody) {
  NginxFixture nginx(small_app());
  auto r = get(nginx.port(), "/12b");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "hello world\n");
  EXPECT_EQ(r->headers.get("content-length"), "12");
  EXPECT_EQ(r->headers.get("CONTENT-LENGTH"), "12");  // case-insensitive

  auto big = get(nginx.port(), "/4k");  // served from a file
  ASSERT_TRUE(big.has_value());
  EXPECT_EQ(big->body, std::string(4096, 'k'));
}

TEST(HttpClientNginx, KeepAliveReusesOneConnection) {
  NginxOptions options;
  options.log_connections = true;
  NginxFixture nginx(small_app(), options);
  HttpClient client;
  ASSERT_TRUE(client.connect(nginx.port()));
  for (int i = 0; i < 3; ++i) {
    auto r = client.get("/12b");
    ASSERT_TRUE(r.has_value()) << to_string(client.last_error());
    EXPECT_EQ(r->status, 200);
    EXPECT_TRUE(r->keep_alive);
  }
  ASSERT_TRUE(nginx.wait_for_access_log_lines(3, milliseconds(2000)));
  auto log = nginx.access_log();
  EXPECT_EQ(nginx.distinct_connections(), 1u);
  EXPECT_EQ(log.back().connection_requests, 3);
  EXPECT_EQ(log.back().request, "GET /12b HTTP/1.1");

  // HEAD: no body on the wire, and the connection stays usable.
  auto head = client.request("HEAD", "/12b");
  ASSERT_TRUE(head.has_value());
  EXPECT_EQ(head->headers.get("content-length"), "12");
  EXPECT_TRUE(head->body.empty());
  auto after = client.get("/12b");
  ASSERT_TRUE(after.has_value());
  EXPECT_EQ(after->body, "hello world\n");
}

TEST(HttpClientNginx, ChunkedResponseIsDecoded) {
  // gzip drops Content-Length, so nginx frames the body with chunked encoding.
  NginxFixture nginx(
      "  server {\n"
      "    listen 127.0.0.1:@PORT@;\n"
      "    gzip on; gzip_min_length 0; gzip_types text/plain;\n"
      "    location / { return 200 \"compress me, compress me, compress me\\n\"; }\n"
      "  }\n");
  auto r = get(nginx.port(), "/", {{"Accept-Encoding", "gzip"}});
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 200);
  EXPECT_TRUE(r->chunked);
  EXPECT_EQ(r->headers.get("content-encoding"), "gzip");
  ASSERT_GE(r->body.size(), 2u);
  EXPECT_EQ(static_cast<unsigned char>(r->body[0]), 0x1f);  // gzip magic
  EXPECT_EQ(static_cast<unsigned char>(r->body[1]), 0x8b);
  EXPECT_NE(r->raw.find("\r\n0\r\n\r\n"), std::string::npos);
}

// ---- ScriptedUpstream ----

TEST(ScriptedUpstream, IdleCloseWithFinIsSeenAtIdleAge) {
  ScriptedUpstream upstream(ConnectionScript{}.close_when_idle(milliseconds(300)));
  HttpClient client;
  ASSERT_TRUE(client.connect(upstream.port()));
  auto r = client.get("/");
  ASSERT_TRUE(r.has_value());
  auto answered = Clock::now();
  EXPECT_EQ(client.closed_by_peer(milliseconds(2000)), PeerClose::eof);
  long ms = elapsed_ms(answered);
  EXPECT_GE(ms, 290);
  EXPECT_LE(ms, 500);
  EXPECT_EQ(upstream.idle_closes(), 1u);
}

TEST(ScriptedUpstream, IdleCloseWithRstIsSeenAsReset) {
  ScriptedUpstream upstream(ConnectionScript{}.close_when_idle(milliseconds(200), CloseHow::rst));
  HttpClient client;
  ASSERT_TRUE(client.connect(upstream.port()));
  ASSERT_TRUE(client.get("/").has_value());
  auto answered = Clock::now();
  EXPECT_EQ(client.closed_by_peer(milliseconds(2000)), PeerClose::reset);
  EXPECT_GE(elapsed_ms(answered), 190);
}

TEST(ScriptedUpstream, ResetsTheNthRequestBeforeAnyResponseByte) {
  ScriptedUpstream upstream(ConnectionScript{}.reset_request(2));
  HttpClient client;
  ASSERT_TRUE(client.connect(upstream.port()));
  auto first = client.get("/one");
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->status, 200);
  auto second = client.get("/two");
  EXPECT_FALSE(second.has_value());
  EXPECT_EQ(client.last_error(), ClientError::reset);
  EXPECT_EQ(upstream.requests_received(), 2u);
  EXPECT_EQ(upstream.requests_on_connection(0), 2u);
  EXPECT_EQ(upstream.connections_accepted(), 1u);
}

TEST(ScriptedUpstream, KeepAliveHintChunkedAndRequestLog) {
  ScriptedStep step = ScriptedStep::respond(200, "0123456789abcdef");
  step.keep_alive_hint = 5;
  step.chunked = true;
  step.chunk_size = 5;
  step.headers = {{"X-Upstream", "scripted"}};
  ConnectionScript script;
  script.otherwise = step;
  ScriptedUpstream upstream(script);
  HttpClient client;
  ASSERT_TRUE(client.connect(upstream.port()));
  auto r = client.get("/hinted", {{"X-Trace", "abc"}});
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->headers.get("keep-alive"), "timeout=5");
  EXPECT_EQ(r->headers.get("x-upstream"), "scripted");
  EXPECT_TRUE(r->chunked);
  EXPECT_EQ(r->body, "0123456789abcdef");
  EXPECT_NE(r->raw.find("5\r\n01234\r\n"), std::string::npos);

  auto heads = upstream.request_heads();
  ASSERT_EQ(heads.size(), 1u);
  EXPECT_EQ(heads[0].rfind("GET /hinted HTTP/1.1\r\n", 0), 0u);
  EXPECT_NE(heads[0].find("X-Trace: abc\r\n"), std::string::npos);
  EXPECT_EQ(heads[0].substr(heads[0].size() - 4), "\r\n\r\n");
  auto requests = upstream.requests();
  EXPECT_EQ(requests[0].method, "GET");
  EXPECT_EQ(requests[0].target, "/hinted");
  EXPECT_EQ(requests[0].headers.get("x-trace"), "abc");
}

TEST(ScriptedUpstream, PipelinedRequestsAnswerInOrderAndEchoBodies) {
  ScriptedStep echo;
  echo.echo_request_body = true;
  ConnectionScript script;
  script.otherwise = echo;
  ScriptedUpstream upstream(script);
  HttpClient client;
  ASSERT_TRUE(client.connect(upstream.port()));
  std::string both = HttpClient::format_request("POST", "/a", "first", {}, upstream.port()) +
                     HttpClient::format_request("POST", "/b", "second", {}, upstream.port());
  ASSERT_TRUE(client.send_raw(both));
  auto responses = client.read_responses(2);
  ASSERT_EQ(responses.size(), 2u) << to_string(client.last_error());
  EXPECT_EQ(responses[0].body, "first");
  EXPECT_EQ(responses[1].body, "second");
  EXPECT_EQ(upstream.requests_on_connection(0), 2u);
}

TEST(ScriptedUpstream, NeverAnswerIsATimeoutNotAReset) {
  ConnectionScript script;
  script.otherwise = ScriptedStep::never_answer();
  ScriptedUpstream upstream(script);
  HttpClient client;
  ASSERT_TRUE(client.connect(upstream.port()));
  auto r = client.get("/", {}, milliseconds(200));
  EXPECT_FALSE(r.has_value());
  EXPECT_EQ(client.last_error(), ClientError::timeout);
  EXPECT_EQ(client.closed_by_peer(milliseconds(50)), PeerClose::still_open);
}

TEST(ScriptedUpstream, DelayedPartialAndGarbageAnswers) {
  ConnectionScript delayed;
  delayed.otherwise = ScriptedStep::respond(200, "late");
  delayed.otherwise.delay = milliseconds(200);
  ScriptedUpstream slow(delayed);
  auto start = Clock::now();
  auto r = get(slow.port(), "/");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->body, "late");
  EXPECT_GE(elapsed_ms(start), 200);

  ConnectionScript partial;
  partial.otherwise = ScriptedStep::partial_then_close(40, std::string(100, 'p'));
  ScriptedUpstream half(partial);
  HttpClient client;
  ASSERT_TRUE(client.connect(half.port()));
  EXPECT_FALSE(client.get("/").has_value());
  EXPECT_EQ(client.last_error(), ClientError::incomplete);

  ConnectionScript garbage;
  garbage.otherwise = ScriptedStep::send_garbage("NOT HTTP AT ALL\r\n\r\n");
  ScriptedUpstream junk(garbage);
  ASSERT_TRUE(client.connect(junk.port()));
  EXPECT_FALSE(client.get("/").has_value());
  EXPECT_EQ(client.last_error(), ClientError::parse_error);

  ConnectionScript closing;
  closing.otherwise = ScriptedStep::close_before_response();
  ScriptedUpstream closer(closing);
  ASSERT_TRUE(client.connect(closer.port()));
  EXPECT_FALSE(client.get("/").has_value());
  EXPECT_EQ(client.last_error(), ClientError::eof);
}

TEST(ScriptedUpstream, PerConnectionScripts) {
  ScriptedUpstream upstream;
  upstream.set_connection_script(1, ConnectionScript{}.reset_request(1));
  EXPECT_TRUE(get(upstream.port(), "/").has_value());   // connection 0: default
  EXPECT_FALSE(get(upstream.port(), "/").has_value());  // connection 1: reset
  EXPECT_TRUE(get(upstream.port(), "/").has_value());   // connection 2: default
  EXPECT_EQ(upstream.connections_accepted(), 3u);
}

// ---- DelayLine ----

TEST(DelayLine, AddsTheDelayBothWays) {
  ScriptedUpstream upstream;
  DelayLine line(upstream.port(), milliseconds(100));
  HttpClient client;
  ASSERT_TRUE(client.connect(line.port()));
  auto start = Clock::now();
  auto r = client.get("/");
  ASSERT_TRUE(r.has_value()) << to_string(client.last_error());
  long ms = elapsed_ms(start);
  EXPECT_GE(ms, 200);  // request +100 ms, response +100 ms
  EXPECT_LT(ms, 1000);
  EXPECT_EQ(r->body, "ok\n");
}

TEST(DelayLine, PassesFinAndRstAfterTheDelay) {
  ConnectionScript closing;
  closing.otherwise = ScriptedStep::close_before_response();
  ScriptedUpstream fin_upstream(closing);
  DelayLine fin_line(fin_upstream.port(), milliseconds(100));
  HttpClient client;
  ASSERT_TRUE(client.connect(fin_line.port()));
  auto start = Clock::now();
  EXPECT_FALSE(client.get("/").has_value());
  EXPECT_EQ(client.last_error(), ClientError::eof);
  EXPECT_GE(elapsed_ms(start), 200);

  ScriptedUpstream rst_upstream(ConnectionScript{}.reset_request(1));
  DelayLine rst_line(rst_upstream.port(), milliseconds(100));
  ASSERT_TRUE(client.connect(rst_line.port()));
  start = Clock::now();
  EXPECT_FALSE(client.get("/").has_value());
  EXPECT_EQ(client.last_error(), ClientError::reset);
  EXPECT_GE(elapsed_ms(start), 200);
  EXPECT_EQ(rst_line.resets_passed(), 1u);
}

TEST(DelayLine, IdleCloseArrivesOneDelayLater) {
  ScriptedUpstream upstream(ConnectionScript{}.close_when_idle(milliseconds(200)));
  DelayLine line(upstream.port(), milliseconds(100));
  HttpClient client;
  ASSERT_TRUE(client.connect(line.port()));
  ASSERT_TRUE(client.get("/").has_value());
  auto answered = Clock::now();  // upstream's idle age here is ~100 ms (one delay)
  EXPECT_EQ(client.closed_by_peer(milliseconds(2000)), PeerClose::eof);
  long ms = elapsed_ms(answered);
  EXPECT_GE(ms, 190);  // (200 - 100) until the close, +100 on the way back
  EXPECT_LE(ms, 450);
}

// ---- Express app ----

TEST(ExpressFixture, HelloAndConnectionStats) {
  ExpressFixture app;
  HttpClient client;
  ASSERT_TRUE(client.connect(app.port()));
  auto hello = client.get("/hello");
  ASSERT_TRUE(hello.has_value());
  EXPECT_EQ(hello->status, 200);
  EXPECT_EQ(hello->body, "hello\n");
  EXPECT_EQ(hello->headers.get("keep-alive"), "timeout=5");  // Node's default
  ASSERT_TRUE(client.get("/hello").has_value());             // same connection
  auto order = request(app.port(), "POST", "/orders", R"({"item":"book"})",
                       {{"Content-Type", "application/json"}});
  ASSERT_TRUE(order.has_value());
  EXPECT_EQ(order->status, 201);
  EXPECT_NE(order->body.find("\"ok\":true"), std::string::npos);

  auto stats = app.stats();
  ASSERT_TRUE(stats.has_value());
  EXPECT_EQ(stats->connections, 2u);
  EXPECT_EQ(stats->requests, 3u);
  EXPECT_NE(app.output().find("GET /hello 200"), std::string::npos);
}

TEST(ExpressFixture, KeepAliveTimeoutIsConfigurable) {
  ExpressOptions options;
  options.keep_alive_timeout_ms = 300;
  ExpressFixture app(options);
  HttpClient client;
  ASSERT_TRUE(client.connect(app.port()));
  auto echo = client.request("POST", "/echo", "raw bytes", {{"Content-Type", "text/x-raw"}});
  ASSERT_TRUE(echo.has_value());
  EXPECT_EQ(echo->body, "raw bytes");
  EXPECT_EQ(echo->headers.get("content-type"), "text/x-raw");
  // Node closes idle connections some time after keepAliveTimeout (its timer slop is ~1 s).
  EXPECT_EQ(client.closed_by_peer(milliseconds(3000)), PeerClose::eof);
}

// ---- HAProxy and needle ----

TEST(HaproxyFixture, ProxiesToAnUpstream) {
  ScriptedUpstream upstream;
  HaproxyFixture haproxy(HaproxyFixture::proxy_config(upstream.port()));
  auto r = get(haproxy.port(), "/via-haproxy");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "ok\n");
  ASSERT_EQ(upstream.requests_received(), 1u);
  EXPECT_EQ(upstream.requests()[0].target, "/via-haproxy");
}

TEST(NginxFixture, ProxyConfigForwardsToUpstream) {
  ScriptedUpstream upstream;
  NginxFixture proxy(NginxFixture::proxy_config(upstream.port()));
  HttpClient client;
  ASSERT_TRUE(client.connect(proxy.port()));
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(client.get("/p").has_value());
  EXPECT_EQ(upstream.requests_received(), 3u);
  EXPECT_EQ(upstream.connections_accepted(), 1u);  // upstream keepalive pool
}

TEST(NeedleProcess, ReportsAnEarlyExitWithItsOutput) {
  int port = free_port();
  try {
    NeedleOptions options;
    options.start_timeout = milliseconds(3000);
    NeedleProcess needle("this is not [valid toml", port, options);
    FAIL() << "needle listened with an invalid config";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("needle"), std::string::npos) << e.what();
  }
}

TEST(NeedleProcess, ProxiesToAScriptedUpstreamAndLogsAccess) {
  ScriptedUpstream upstream;
  auto needle = NeedleProcess::start([&](int port) {
    return "[server]\nworkers = 1\naccess_log = \"stdout\"\n"
           "[[listener]]\naddress = \"127.0.0.1:" +
           std::to_string(port) +
           "\"\n"
           "[admin]\naddress = \"off\"\n"
           "[[route]]\npath_prefix = \"/\"\ncluster = \"app\"\n"
           "[cluster.app]\nhosts = [\"127.0.0.1:" +
           std::to_string(upstream.port()) + "\"]\n";
  });
  auto r = get(needle->port(), "/through-needle");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "ok\n");
  ASSERT_EQ(upstream.requests_received(), 1u);
  EXPECT_EQ(upstream.requests()[0].target, "/through-needle");
  EXPECT_TRUE(needle->wait_for_access_log_lines(1, milliseconds(2000))) << needle->access_log();

  needle->terminate();
  auto status = needle->wait_exit(milliseconds(4000));
  ASSERT_TRUE(status.has_value()) << "needle did not exit on SIGTERM";
}

}  // namespace
}  // namespace needle::test
