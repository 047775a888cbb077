// Clients that go away while needle waits for the upstream, through the real binary
// (issue 17): the upstream attempt is cancelled at once and the request is logged 499
// client_closed, never a 5xx; a pipelined next request is not an abort; a route with
// ignore_client_abort waits for the response. And needle's own replies that end the connection
// close lingeringly, so a client still sending its body reads the status instead of a reset.
#include <gtest/gtest.h>

#include <string>
#include <string_view>

#include "proxy_harness.h"
#include "support/scripted_upstream.h"

namespace needle::test {
namespace {

using namespace proxy;

constexpr std::string_view kSlowGet = "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n";

// ConfigSpec with admin on, and `route_extra` lines in every [[route]].
std::unique_ptr<NeedleProcess> start_with_route_extra(ConfigSpec& spec,
                                                      const std::string& route_extra) {
  spec.admin_port = free_port();
  NeedleOptions options;
  options.also_wait_for.push_back(spec.admin_port);
  return NeedleProcess::start(
      [spec, route_extra](int port) {
        std::string toml = spec.render(port);
        for (size_t at = toml.find("[[route]]\n"); at != std::string::npos;
             at = toml.find("[[route]]\n", at + 1)) {
          toml.insert(at + 10, route_extra);
        }
        return toml;
      },
      options);
}

ConfigSpec spec_for(int upstream_port, std::string cluster_extra = "") {
  ConfigSpec spec;
  spec.clusters.push_back(ClusterSpec{"app", {upstream_port}, std::move(cluster_extra)});
  return spec;
}

// Sum of the values of every series of `metric` in a /metrics scrape whose line contains
// `label` ("" = all).
double metric_sum(const std::string& metrics, std::string_view metric, std::string_view label) {
  double sum = 0;
  const std::string prefix = std::string(metric) + "{";
  for (size_t at = metrics.find(prefix); at != std::string::npos;
       at = metrics.find(prefix, at + 1)) {
    if (at > 0 && metrics[at - 1] != '\n') continue;
    const std::string line = metrics.substr(at, metrics.find('\n', at) - at);
    if (line.find(label) == std::string::npos) continue;
    sum += std::stod(line.substr(line.rfind(' ') + 1));
  }
  return sum;
}

std::string scrape(int admin_port) {
  auto m = get(admin_port, "/metrics");
  return m && m->status == 200 ? m->body : std::string();
}

enum class Leave { close, reset, half_close };

// The client sends GET /slow to an upstream that never answers (response_timeout 20 s), and
// leaves 0.5 s later. Returns how long after leaving the upstream connection was closed.
void expect_abort_is_499(Leave leave) {
  ConnectionScript script;
  script.otherwise = ScriptedStep::never_answer();
  ScriptedUpstream upstream(script);
  ConfigSpec spec = spec_for(upstream.port(), "response_timeout = \"20s\"\n");
  auto needle = start_with_route_extra(spec, "");
  HttpClient client;
  ASSERT_TRUE(client.connect(needle->port()));
  ASSERT_TRUE(client.send_raw(kSlowGet));
  ASSERT_TRUE(upstream.wait_for_requests(1, scaled(milliseconds(2000))));
  ASSERT_EQ(upstream.open_connections(), 1u);
  std::this_thread::sleep_for(milliseconds(500));
  const auto left_at = Clock::now();
  switch (leave) {
    case Leave::close:
      client.close();
      break;
    case Leave::reset:
      client.reset();
      break;
    case Leave::half_close:
      client.shutdown_write();
      break;
  }
  // The watch looks within two park sweeps (<= 0.5 s) of the request: it already looks, or
  // its first look catches the close that came before it.
  ASSERT_TRUE(eventually([&] { return upstream.open_connections() == 0; }, milliseconds(1500)))
      << "the upstream connection stayed open after the client left";
  const auto took =
      std::chrono::duration_cast<milliseconds>(Clock::now() - left_at).count();
  EXPECT_LT(took, scaled_ms(1000));

  auto lines = wait_log_lines(*needle, 1);
  ASSERT_EQ(lines.size(), 1u) << needle->access_log();
  EXPECT_EQ(json_field(lines[0], "status"), "499") << lines[0];
  EXPECT_EQ(json_field(lines[0], "cause"), "client_closed") << lines[0];
  EXPECT_EQ(json_field(lines[0], "bytes_out"), "0") << lines[0];
  const size_t attempts = lines[0].find("\"attempts\":[");
  ASSERT_NE(attempts, std::string::npos);
  EXPECT_EQ(json_field(lines[0].substr(attempts), "cause"), "client_closed") << lines[0];
  EXPECT_GE(std::stod(json_field(lines[0], "duration_ms")), 450.0) << lines[0];
  EXPECT_LT(std::stod(json_field(lines[0], "duration_ms")), 5000.0) << lines[0];
  if (leave == Leave::half_close) {
    // No reply is owed to a client that is taken to be gone: needle just closes.
    EXPECT_EQ(client.closed_by_peer(milliseconds(2000)), PeerClose::eof);
  }

  // Metrics: a 4xx, no 5xx of any cause, no upstream failure (the upstream did nothing wrong).
  std::string metrics;
  ASSERT_TRUE(eventually(
      [&] {
        metrics = scrape(spec.admin_port);
        return metric_sum(metrics, "needle_requests_total", "status_class=\"4xx\"") == 1;
      },
      milliseconds(2000)))
      << metrics;
  EXPECT_EQ(metric_sum(metrics, "needle_requests_total", ""), 1) << metrics;
  EXPECT_EQ(metric_sum(metrics, "needle_responses_5xx_total", ""), 0) << metrics;
  EXPECT_EQ(metric_sum(metrics, "needle_upstream_failures_total", ""), 0) << metrics;
}

TEST(ClientAbort, ClientThatClosesWhileTheUpstreamWaitsIs499AndFreesTheUpstream) {
  expect_abort_is_499(Leave::close);
}

TEST(ClientAbort, ClientThatResetsWhileTheUpstreamWaitsIs499AndFreesTheUpstream) {
  expect_abort_is_499(Leave::reset);
}

// docs/config.md "ignore_client_abort": a FIN after a complete request cannot be told from a
// close without writing to the client, so it is an abort, as in nginx.
TEST(ClientAbort, HalfCloseAfterACompleteRequestIsAnAbort) {
  expect_abort_is_499(Leave::half_close);
}

// nginx's proxy_ignore_client_abort: the attempt runs to the end and the log tells the
// upstream's answer, relayed into the socket the client had left.
TEST(ClientAbort, IgnoreClientAbortWaitsForTheUpstreamResponse) {
  ConnectionScript script;
  script.otherwise = ScriptedStep::respond(200, "late but whole\n");
  script.otherwise.delay = milliseconds(1500);
  ScriptedUpstream upstream(script);
  ConfigSpec spec = spec_for(upstream.port(), "response_timeout = \"20s\"\n");
  auto needle = start_with_route_extra(spec, "ignore_client_abort = true\n");
  const auto start = Clock::now();
  {
    HttpClient client;
    ASSERT_TRUE(client.connect(needle->port()));
    ASSERT_TRUE(client.send_raw(kSlowGet));
    ASSERT_TRUE(upstream.wait_for_requests(1, scaled(milliseconds(2000))));
    std::this_thread::sleep_for(milliseconds(500));
    client.close();
  }
  // Past two sweeps after the close, the attempt is still on.
  std::this_thread::sleep_for(milliseconds(600));
  EXPECT_EQ(upstream.open_connections(), 1u);
  auto lines = wait_log_lines(*needle, 1, milliseconds(4000));
  ASSERT_EQ(lines.size(), 1u) << needle->access_log();
  EXPECT_GE(std::chrono::duration_cast<milliseconds>(Clock::now() - start).count(), 1400);
  EXPECT_EQ(json_field(lines[0], "status"), "200") << lines[0];
  EXPECT_EQ(json_field(lines[0], "cause"), "none") << lines[0];
  EXPECT_GE(std::stod(json_field(lines[0], "duration_ms")), 1400.0) << lines[0];
  EXPECT_NE(lines[0].find("\"status\":200,\"cause\":\"none\""), std::string::npos)
      << "the attempt records the upstream's answer: " << lines[0];
  EXPECT_NE(json_field(lines[0], "bytes_out"), "0") << lines[0];
}

// A second request sent while the first waits is the client being there, not leaving: whether
// it came in the same packet (left in needle's buffer), before the watch looked (found by the
// look's first recv) or while it looked (the look completes with the byte). It stays in the
// socket or the buffer and is served next.
class ClientAbortPipelined : public ::testing::TestWithParam<int> {};

TEST_P(ClientAbortPipelined, SecondRequestWhileTheFirstWaitsIsNotAnAbort) {
  const milliseconds second_after(GetParam());
  ConnectionScript script;
  script.requests.push_back(ScriptedStep::respond(200, "first\n"));
  script.requests[0].delay = milliseconds(1200);
  script.otherwise = ScriptedStep::respond(200, "second\n");
  ScriptedUpstream upstream(script);
  ConfigSpec spec = spec_for(upstream.port(), "response_timeout = \"20s\"\n");
  auto needle = start_with_route_extra(spec, "");
  HttpClient client;
  ASSERT_TRUE(client.connect(needle->port()));
  const std::string second = "GET /second HTTP/1.1\r\nHost: x\r\n\r\n";
  if (second_after.count() == 0) {
    ASSERT_TRUE(client.send_raw(std::string(kSlowGet) + second));
  } else {
    ASSERT_TRUE(client.send_raw(kSlowGet));
    std::this_thread::sleep_for(second_after);
    ASSERT_TRUE(client.send_raw(second));
  }
  auto responses = client.read_responses(2, milliseconds(5000));
  ASSERT_EQ(responses.size(), 2u) << to_string(client.last_error()) << " "
                                  << client.last_error_detail();
  EXPECT_EQ(responses[0].status, 200);
  EXPECT_EQ(responses[0].body, "first\n");
  EXPECT_EQ(responses[1].status, 200);
  EXPECT_EQ(responses[1].body, "second\n");
  EXPECT_EQ(upstream.connections_accepted(), 1u) << "the first attempt was cancelled";
  auto lines = wait_log_lines(*needle, 2);
  ASSERT_EQ(lines.size(), 2u) << needle->access_log();
  for (const auto& line : lines) {
    EXPECT_EQ(json_field(line, "status"), "200") << line;
    EXPECT_EQ(json_field(line, "cause"), "none") << line;
  }
  // And the connection is still usable.
  auto third = client.get("/third");
  ASSERT_TRUE(third.has_value()) << to_string(client.last_error());
  EXPECT_EQ(third->status, 200);
}

INSTANTIATE_TEST_SUITE_P(SentAfterMs, ClientAbortPipelined, ::testing::Values(0, 100, 700));

// Lingering close for replies that end the connection: the client is still sending a body
// needle will not read. It must be able to send it all and read the status, then EOF.
void expect_reply_then_eof(int port, const std::string& request, int status) {
  HttpClient client;
  ASSERT_TRUE(client.connect(port));
  EXPECT_TRUE(client.send_raw(request, milliseconds(5000)))
      << "sending the body failed: " << to_string(client.last_error()) << " "
      << client.last_error_detail();
  auto r = client.read_response(milliseconds(5000));
  ASSERT_TRUE(r.has_value()) << to_string(client.last_error()) << " "
                             << client.last_error_detail();
  EXPECT_EQ(r->status, status);
  EXPECT_EQ(r->headers.get("connection"), "close");
  EXPECT_EQ(client.closed_by_peer(milliseconds(3000)), PeerClose::eof);
}

std::string big_body(size_t n) { return std::string(n, 'b'); }

TEST(ClientLingeringClose, NoRouteWithALargeBodyReadsThe404) {
  ScriptedUpstream upstream;
  ConfigSpec spec = spec_for(upstream.port());
  spec.routes = {RouteSpec{.path_prefix = "/api"}};
  auto needle = start_needle(spec);
  const size_t n = 8 << 20;
  expect_reply_then_eof(needle->port(),
                        "POST /nothing HTTP/1.1\r\nHost: x\r\nContent-Length: " +
                            std::to_string(n) + "\r\n\r\n" + big_body(n),
                        404);
  EXPECT_EQ(upstream.requests_received(), 0u);
  auto lines = wait_log_lines(*needle, 1);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(json_field(lines[0], "cause"), "no_route");
}

// A chunk-size line that is not hex: 400 from the body prefetch, with megabytes behind it.
TEST(ClientLingeringClose, InvalidChunkedBodyReadsThe400) {
  ScriptedUpstream upstream;
  auto needle = start_needle(spec_for(upstream.port()));
  expect_reply_then_eof(
      needle->port(),
      "POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n" +
          big_body(8 << 20),
      400);
  EXPECT_EQ(upstream.requests_received(), 0u);
  auto lines = wait_log_lines(*needle, 1);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(json_field(lines[0], "cause"), "bad_request");
}

// A chunked body past max_body_bytes, found while it streams to the upstream: 413.
TEST(ClientLingeringClose, TooLargeStreamedBodyReadsThe413) {
  ScriptedUpstream upstream;
  ConfigSpec spec = spec_for(upstream.port());
  spec.server_extra = "max_body_bytes = \"256KiB\"\n";
  auto needle = start_needle(spec);
  std::string request = "POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
  const std::string chunk = "4000\r\n" + big_body(0x4000) + "\r\n";
  for (int i = 0; i < 512; ++i) request += chunk;  // 8 MiB
  expect_reply_then_eof(needle->port(), request, 413);
  auto lines = wait_log_lines(*needle, 1);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(json_field(lines[0], "status"), "413");
  EXPECT_EQ(json_field(lines[0], "cause"), "bad_request");
}

}  // namespace
}  // namespace needle::test
