// Failure paths through the real needle binary: upstream down, slow, ejected; the client going
// away mid-body; header timeouts and request limits. Each asserts the exact status and the
// access log's cause.
#include <gtest/gtest.h>

#include <string>

#include "proxy_harness.h"
#include "support/scripted_upstream.h"

namespace needle::test {
namespace {

using namespace proxy;

TEST(ProxyErrors, UpstreamDownIs502ConnectRefused) {
  const int dead_port = free_port();  // nothing listens there
  auto needle = start_needle_for(dead_port);
  auto r = get(needle->port(), "/down");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 502);
  EXPECT_NE(r->body.find("connect_refused"), std::string::npos) << r->body;
  auto lines = wait_log_lines(*needle, 1);
  ASSERT_EQ(lines.size(), 1u) << needle->access_log();
  EXPECT_EQ(json_field(lines[0], "status"), "502");
  EXPECT_EQ(json_field(lines[0], "cause"), "connect_refused");
  EXPECT_NE(json_field(lines[0], "detail").find("127.0.0.1:" + std::to_string(dead_port)),
            std::string::npos)
      << lines[0];
  EXPECT_TRUE(needle->wait_for_log("connect_refused", milliseconds(2000)))
      << needle->operational_log();
  EXPECT_NE(needle->operational_log().find("502"), std::string::npos) << needle->operational_log();
}

// Found by fuzz_session: needle's own error answer to a HEAD carried its text body, so on a
// kept connection the client read those bytes as the start of the next response.
TEST(ProxyErrors, ErrorAnswerToHeadHasNoBodyAndTheConnectionStaysInStep) {
  auto needle = start_needle_for(free_port());  // nothing listens there: 502 connect_refused
  HttpClient client;
  ASSERT_TRUE(client.connect(needle->port()));
  auto head = client.request("HEAD", "/down");
  ASSERT_TRUE(head.has_value()) << to_string(client.last_error());
  EXPECT_EQ(head->status, 502);
  EXPECT_TRUE(head->keep_alive);
  EXPECT_TRUE(head->body.empty());
  auto next = client.get("/down");
  ASSERT_TRUE(next.has_value()) << to_string(client.last_error()) << " "
                                << client.last_error_detail();
  EXPECT_EQ(next->status, 502);
  EXPECT_NE(next->body.find("connect_refused"), std::string::npos) << next->body;
}

TEST(ProxyErrors, SlowUpstreamIs504ResponseTimeout) {
  ConnectionScript script;
  script.otherwise = ScriptedStep::respond(200, "too late\n");
  script.otherwise.delay = milliseconds(1500);
  ScriptedUpstream upstream(script);
  auto needle = start_needle_for(upstream.port(), {}, "response_timeout = \"300ms\"\n");
  const auto start = Clock::now();
  auto r = get(needle->port(), "/slow");
  const auto took = std::chrono::duration_cast<milliseconds>(Clock::now() - start).count();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 504);
  EXPECT_GE(took, 280);
  EXPECT_LT(took, 1400) << "needle waited for the upstream instead of timing out";
  auto lines = wait_log_lines(*needle, 1);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(json_field(lines[0], "status"), "504");
  EXPECT_EQ(json_field(lines[0], "cause"), "response_timeout");
}

TEST(ProxyErrors, EjectedHostGives503NoHealthyHost) {
  const int dead_port = free_port();
  auto needle = start_needle_for(dead_port, {},
                                 "eject_after_connect_failures = 1\neject_duration = \"10s\"\n");
  HttpClient client;
  ASSERT_TRUE(client.connect(needle->port()));
  auto first = client.get("/a");
  ASSERT_TRUE(first.has_value()) << to_string(client.last_error());
  EXPECT_EQ(first->status, 502);
  auto second = client.get("/b");
  ASSERT_TRUE(second.has_value()) << to_string(client.last_error());
  EXPECT_EQ(second->status, 503);
  auto lines = wait_log_lines(*needle, 2);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(json_field(lines[0], "cause"), "connect_refused");
  EXPECT_EQ(json_field(lines[1], "status"), "503");
  EXPECT_EQ(json_field(lines[1], "cause"), "no_healthy_host");
  EXPECT_NE(lines[1].find("\"attempts\":[]"), std::string::npos) << lines[1];
}

TEST(ProxyErrors, ClientDisconnectMidBodyAbortsUpstreamAndFreesFds) {
  ScriptedUpstream upstream;
  auto needle = start_needle_for(upstream.port());
  const pid_t pid = needle->process().pid();
  // Warm: one request, then let its connections settle, so the baseline holds the pool's fd.
  ASSERT_TRUE(get(needle->port(), "/warm").has_value());
  ASSERT_TRUE(needle->wait_for_access_log_lines(1, milliseconds(2000)));
  std::this_thread::sleep_for(milliseconds(100));
  const int baseline = fd_count(pid);
  ASSERT_GT(baseline, 0);
  const size_t accepted_before = upstream.connections_accepted();
  {
    HttpClient client;
    ASSERT_TRUE(client.connect(needle->port()));
    ASSERT_TRUE(client.send_raw("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: " +
                                std::to_string(10 << 20) + "\r\n\r\n"));
    const std::string mib(1 << 20, 'u');
    ASSERT_TRUE(client.send_raw(mib));
    // Let needle forward what it got before the client vanishes.
    std::this_thread::sleep_for(milliseconds(200));
    client.close();
  }
  auto lines = wait_log_lines(*needle, 2);
  ASSERT_EQ(lines.size(), 2u) << needle->access_log();
  EXPECT_EQ(json_field(lines[1], "status"), "499");
  EXPECT_EQ(json_field(lines[1], "cause"), "client_closed");
  EXPECT_EQ(json_field(lines[1], "path"), "/upload");
  // The upstream never got a whole request, and its connection for it was closed.
  EXPECT_EQ(upstream.requests_received(), 1u);  // only /warm
  // Whether the aborted request went down the pooled connection or a fresh one, exactly the
  // one that carried it is closed.
  EXPECT_TRUE(eventually(
      [&] { return upstream.open_connections() + 1 == upstream.connections_accepted(); },
      milliseconds(2000)))
      << "accepted " << upstream.connections_accepted() << " (before: " << accepted_before
      << "), open " << upstream.open_connections();
  EXPECT_TRUE(eventually([&] { return fd_count(pid) <= baseline; }, milliseconds(2000)))
      << "fds: baseline " << baseline << ", now " << fd_count(pid);
}

TEST(ProxyErrors, PartialHeadTimesOutWith408ThenClose) {
  ScriptedUpstream upstream;
  auto needle = start_needle_for(upstream.port(), "header_timeout = \"300ms\"\n");
  HttpClient client;
  ASSERT_TRUE(client.connect(needle->port()));
  const auto start = Clock::now();
  ASSERT_TRUE(client.send_raw("GET /partial HTTP/1.1\r\nHost: x\r\nX-Half: "));
  auto r = client.read_response(milliseconds(2000));
  const auto took = std::chrono::duration_cast<milliseconds>(Clock::now() - start).count();
  ASSERT_TRUE(r.has_value()) << to_string(client.last_error());
  EXPECT_EQ(r->status, 408);
  EXPECT_EQ(r->headers.get("connection"), "close");
  EXPECT_GE(took, 250);
  EXPECT_LT(took, 1500);
  EXPECT_EQ(client.closed_by_peer(milliseconds(2000)), PeerClose::eof);
  EXPECT_EQ(upstream.requests_received(), 0u);
  auto lines = wait_log_lines(*needle, 1);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(json_field(lines[0], "status"), "408");
  EXPECT_EQ(json_field(lines[0], "cause"), "client_timeout");
  // docs/access-log.md: time and duration_ms start when the head started arriving.
  EXPECT_GE(std::stod(json_field(lines[0], "duration_ms")), 250.0) << lines[0];
  EXPECT_EQ(json_field(lines[0], "client"), "127.0.0.1:" + std::to_string(client.local_port()));
}

class ProxyLimits : public ::testing::Test {
 protected:
  void SetUp() override {
    needle_ = start_needle_for(upstream_.port(),
                               "max_request_line = \"1KiB\"\nmax_header_bytes = \"4KiB\"\n"
                               "max_body_bytes = \"2KiB\"\n");
  }
  // Sends raw bytes on a fresh connection and returns the status (0 on no response).
  int status_for(const std::string& bytes) {
    HttpClient client;
    if (!client.connect(needle_->port())) return -1;
    client.send_raw(bytes);
    auto r = client.read_response(milliseconds(3000));
    if (!r) return 0;
    last_close_ = client.closed_by_peer(milliseconds(2000));
    return r->status;
  }
  ScriptedUpstream upstream_;
  std::unique_ptr<NeedleProcess> needle_;
  PeerClose last_close_ = PeerClose::still_open;
};

TEST_F(ProxyLimits, LongRequestLineIs414) {
  EXPECT_EQ(status_for("GET /" + std::string(2000, 'a') + " HTTP/1.1\r\nHost: x\r\n\r\n"), 414);
  EXPECT_EQ(last_close_, PeerClose::eof);
  EXPECT_EQ(upstream_.requests_received(), 0u);
}

TEST_F(ProxyLimits, LargeHeaderSectionIs431) {
  std::string head = "GET / HTTP/1.1\r\nHost: x\r\n";
  for (int i = 0; i < 10; ++i) head += "X-Big-" + std::to_string(i) + ": " + std::string(800, 'h') + "\r\n";
  head += "\r\n";
  EXPECT_EQ(status_for(head), 431);
  EXPECT_EQ(last_close_, PeerClose::eof);
  EXPECT_EQ(upstream_.requests_received(), 0u);
}

TEST_F(ProxyLimits, LargeBodyIs413WithContentLengthAndChunked) {
  EXPECT_EQ(status_for("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4096\r\n\r\n" +
                       std::string(4096, 'b')),
            413);
  EXPECT_EQ(upstream_.requests_received(), 0u);
  std::string chunked = "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (int i = 0; i < 4; ++i) chunked += "400\r\n" + std::string(1024, 'c') + "\r\n";
  chunked += "0\r\n\r\n";
  EXPECT_EQ(status_for(chunked), 413);
  // Under the limits everything still works.
  EXPECT_EQ(status_for("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2048\r\nConnection: close\r\n\r\n" +
                       std::string(2048, 'b')),
            200);
  auto lines = wait_log_lines(*needle_, 3);
  ASSERT_EQ(lines.size(), 3u) << needle_->access_log();
  EXPECT_EQ(json_field(lines[0], "status"), "413");
  EXPECT_EQ(json_field(lines[0], "cause"), "bad_request");
}

}  // namespace
}  // namespace needle::test
