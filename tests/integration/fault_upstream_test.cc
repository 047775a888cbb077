// Fault scenarios against the real binary (one worker): an upstream that dies in the middle of
// a response, resets before answering, never answers or does not resolve, and a client that
// goes away in the middle of its request or its response. Each reads as a script: what the
// peer does, then what the client must see and what needle must have cleaned up.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "support/eventually.h"
#include "support/http_client.h"
#include "support/needle_process.h"
#include "support/scripted_upstream.h"

namespace needle::test {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// One worker, admin off, access log on stdout, one route "/" to cluster "app".
std::string config_for(int port, const std::string& hosts, const std::string& server_extra = "",
                       const std::string& cluster_extra = "") {
  return "[server]\nworkers = 1\n" + server_extra + "\n[[listener]]\naddress = \"127.0.0.1:" +
         std::to_string(port) + "\"\n\n[admin]\naddress = \"off\"\n\n[[route]]\npath_prefix = \"/\"\n"
         "cluster = \"app\"\n\n[cluster.app]\nhosts = [" + hosts + "]\n" + cluster_extra;
}

std::string upstream_host(const ScriptedUpstream& upstream) {
  return "\"127.0.0.1:" + std::to_string(upstream.port()) + "\"";
}

long count_fds(pid_t pid) {
  long n = 0;
  std::error_code ec;
  for (auto it = std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    ++n;
  }
  return n;
}

long rss_kib(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

// The access log line of the only request whose path is `path`.
std::string log_line_for(const NeedleProcess& needle, const std::string& path) {
  std::string found;
  for (const auto& line : needle.access_log_lines()) {
    if (line.find("\"path\":\"" + path + "\"") != std::string::npos) found = line;
  }
  return found;
}

// Reads raw bytes until EOF, reset or timeout; returns what arrived.
struct RawRead {
  std::string bytes;
  bool eof = false;
  bool reset = false;
};
RawRead read_until_close(int fd, milliseconds timeout) {
  RawRead out;
  const auto deadline = Clock::now() + timeout;
  char buf[16384];
  while (Clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    ::poll(&p, 1, 100);
    const ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n > 0) {
      out.bytes.append(buf, static_cast<size_t>(n));
    } else if (n == 0) {
      out.eof = true;
      return out;
    } else if (errno == ECONNRESET) {
      out.reset = true;
      return out;
    } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
      return out;
    }
  }
  return out;
}

// ---- upstream dies mid-response ----

TEST(FaultUpstream, DiesMidContentLengthResponseClientSeesTruncationAndEof) {
  const std::string body(100000, 'b');
  ConnectionScript script;
  script.otherwise = ScriptedStep::partial_then_close(20000, body);  // head + ~19.9 KB of body
  ScriptedUpstream upstream(script);
  auto needle = NeedleProcess::start([&](int port) {
    return config_for(port, upstream_host(upstream));
  });

  HttpClient client;
  ASSERT_TRUE(client.connect(needle->port()));
  ASSERT_TRUE(client.send_raw("GET /half HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto raw = read_until_close(client.fd(), milliseconds(5000));
  EXPECT_TRUE(raw.eof || raw.reset) << "needle must close the client connection";
  const size_t blank = raw.bytes.find("\r\n\r\n");
  ASSERT_NE(blank, std::string::npos) << raw.bytes.substr(0, 200);
  EXPECT_NE(raw.bytes.find("Content-Length: 100000"), std::string::npos) << raw.bytes.substr(0, blank);
  EXPECT_LT(raw.bytes.size() - (blank + 4), body.size()) << "a truncated body passed as complete";

  // The upstream connection is gone: the next request opens a new one.
  upstream.set_script(ConnectionScript{});
  auto next = get(needle->port(), "/after");
  ASSERT_TRUE(next.has_value());
  EXPECT_EQ(next->status, 200);
  EXPECT_EQ(upstream.connections_accepted(), 2u);

  ASSERT_TRUE(needle->wait_for_access_log_lines(2, milliseconds(3000)));
  EXPECT_NE(log_line_for(*needle, "/half").find("\"cause\":\"closed_mid_response\""),
            std::string::npos)
      << needle->access_log();
}

TEST(FaultUpstream, DiesMidChunkedResponseClientNeverGetsTheLastChunk) {
  ScriptedStep step = ScriptedStep::partial_then_close(3000, std::string(20000, 'c'));
  step.chunked = true;
  step.chunk_size = 1000;
  ConnectionScript script;
  script.otherwise = step;
  ScriptedUpstream upstream(script);
  auto needle = NeedleProcess::start([&](int port) {
    return config_for(port, upstream_host(upstream));
  });

  HttpClient client;
  ASSERT_TRUE(client.connect(needle->port()));
  ASSERT_TRUE(client.send_raw("GET /chunks HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto raw = read_until_close(client.fd(), milliseconds(5000));
  EXPECT_TRUE(raw.eof || raw.reset);
  ASSERT_NE(raw.bytes.find("Transfer-Encoding: chunked"), std::string::npos) << raw.bytes;
  EXPECT_EQ(raw.bytes.find("\r\n0\r\n\r\n"), std::string::npos)
      << "the terminating chunk must not be sent for a truncated body";
  // And a parser agrees: the response is incomplete.
  HttpClient again;
  ASSERT_TRUE(again.connect(needle->port()));
  auto r = again.get("/chunks2");
  EXPECT_FALSE(r.has_value());
  EXPECT_TRUE(again.last_error() == ClientError::incomplete ||
              again.last_error() == ClientError::reset)
      << to_string(again.last_error());
  EXPECT_EQ(upstream.connections_accepted(), 2u);
}

// ---- upstream fails before any response byte ----

TEST(FaultUpstream, ResetBeforeResponseOnNewConnectionIs502) {
  ConnectionScript script;
  script.otherwise = ScriptedStep::reset_before_response();
  ScriptedUpstream upstream(script);
  auto needle = NeedleProcess::start([&](int port) {
    return config_for(port, upstream_host(upstream));
  });

  auto r = request(needle->port(), "POST", "/reset", "payload");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 502);
  ASSERT_TRUE(needle->wait_for_access_log_lines(1, milliseconds(3000)));
  const std::string line = log_line_for(*needle, "/reset");
  EXPECT_NE(line.find("\"cause\":\"reset_before_response_on_new\""), std::string::npos) << line;
  EXPECT_EQ(upstream.requests_received(), 1u) << "a POST on a new connection is not replayed";

  // A GET is retried (fresh connections) and still ends as 502 with the same cause.
  auto g = get(needle->port(), "/reset-get");
  ASSERT_TRUE(g.has_value());
  EXPECT_EQ(g->status, 502);
  ASSERT_TRUE(needle->wait_for_access_log_lines(2, milliseconds(3000)));
  EXPECT_NE(log_line_for(*needle, "/reset-get").find("\"cause\":\"reset_before_response_on_new\""),
            std::string::npos);
}

TEST(FaultUpstream, NeverAnsweringUpstreamIs504AfterResponseTimeout) {
  ConnectionScript script;
  script.otherwise = ScriptedStep::never_answer();
  ScriptedUpstream upstream(script);
  auto needle = NeedleProcess::start([&](int port) {
    return config_for(port, upstream_host(upstream), "", "response_timeout = \"300ms\"\n");
  });

  const auto start = Clock::now();
  auto r = get(needle->port(), "/silent", {}, milliseconds(5000));
  const auto took = std::chrono::duration_cast<milliseconds>(Clock::now() - start).count();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 504);
  EXPECT_GE(took, 280);
  EXPECT_LT(took, 2500);
  ASSERT_TRUE(needle->wait_for_access_log_lines(1, milliseconds(3000)));
  EXPECT_NE(log_line_for(*needle, "/silent").find("\"cause\":\"response_timeout\""),
            std::string::npos);
  // The silent connection is not kept.
  EXPECT_TRUE(eventually(milliseconds(2000), [&] { return upstream.open_connections() == 0; }));
}

TEST(FaultUpstream, UnresolvableHostIs502AndOtherRoutesKeepServing) {
  ScriptedUpstream good(ConnectionScript{});
  auto needle = NeedleProcess::start([&](int port) {
    return "[server]\nworkers = 1\n[[listener]]\naddress = \"127.0.0.1:" + std::to_string(port) +
           "\"\n[admin]\naddress = \"off\"\n"
           "[[route]]\npath_prefix = \"/dead\"\ncluster = \"dead\"\n"
           "[[route]]\npath_prefix = \"/\"\ncluster = \"app\"\n"
           "[cluster.dead]\nhosts = [\"doesnotexist.invalid:80\"]\nconnect_timeout = \"2s\"\n"
           "[cluster.app]\nhosts = [" + upstream_host(good) + "]\n";
  });

  for (int i = 0; i < 3; ++i) {
    auto dead = get(needle->port(), "/dead/" + std::to_string(i), {}, milliseconds(5000));
    ASSERT_TRUE(dead.has_value());
    EXPECT_EQ(dead->status, 502);
    auto live = get(needle->port(), "/live/" + std::to_string(i));
    ASSERT_TRUE(live.has_value());
    EXPECT_EQ(live->status, 200);
  }
  ASSERT_TRUE(needle->wait_for_access_log_lines(6, milliseconds(3000)));
  const std::string line = log_line_for(*needle, "/dead/0");
  EXPECT_NE(line.find("\"cause\":\"resolve_failed\""), std::string::npos) << line;
  EXPECT_EQ(good.requests_received(), 3u);
}

// ---- the client goes away ----

// One warm-up request, so pooled buffers and lazily made state exist before the baseline.
struct Baseline {
  long fds;
  long rss;
};
Baseline measure(pid_t pid) { return {count_fds(pid), rss_kib(pid)}; }

TEST(FaultClient, AbortMidResponseClosesUpstreamAndReleasesResources) {
  const size_t big = 20u << 20;
  ConnectionScript script;
  script.otherwise = ScriptedStep::respond(200, std::string(big, 'z'));
  ScriptedUpstream upstream(script);
  auto needle = NeedleProcess::start([&](int port) {
    return config_for(port, upstream_host(upstream), "access_log = \"off\"\n",
                      "max_idle_per_host = 0\n");
  });
  const pid_t pid = needle->process().pid();

  auto small = get(needle->port(), "/warm", {}, milliseconds(10000));
  ASSERT_TRUE(small.has_value());
  ASSERT_EQ(small->body.size(), big);
  ASSERT_TRUE(eventually(milliseconds(2000), [&] { return upstream.open_connections() == 0; }));
  const Baseline before = measure(pid);

  for (int round = 0; round < 5; ++round) {
    HttpClient client;
    ASSERT_TRUE(client.connect(needle->port()));
    ASSERT_TRUE(client.send_raw("GET /bytes HTTP/1.1\r\nHost: x\r\n\r\n"));
    size_t got = 0;
    char buf[65536];
    const auto deadline = Clock::now() + milliseconds(5000);
    while (got < (1u << 20) && Clock::now() < deadline) {
      pollfd p{client.fd(), POLLIN, 0};
      ::poll(&p, 1, 100);
      const ssize_t n = ::recv(client.fd(), buf, sizeof buf, MSG_DONTWAIT);
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) continue;
      ASSERT_GT(n, 0) << "round " << round << " after " << got << " bytes";
      got += static_cast<size_t>(n);
    }
    ASSERT_GE(got, 1u << 20) << "round " << round;
    ASSERT_TRUE(upstream.wait_for_connections(static_cast<size_t>(round) + 2, milliseconds(2000)));
    client.close();  // unread bytes: the kernel sends RST
    EXPECT_TRUE(eventually(milliseconds(3000), [&] { return upstream.open_connections() == 0; }))
        << "round " << round << ": needle kept the upstream connection of an aborted client";
  }

  // Resources return to the baseline (small slack for allocator caching).
  EXPECT_TRUE(eventually(milliseconds(3000), [&] { return count_fds(pid) <= before.fds; }))
      << "fds before " << before.fds << " after " << count_fds(pid);
  const long rss_after = rss_kib(pid);
  EXPECT_LE(rss_after, before.rss + 8 * 1024) << "RSS KiB before " << before.rss;
  auto after = get(needle->port(), "/again", {}, milliseconds(10000));
  ASSERT_TRUE(after.has_value());
  EXPECT_EQ(after->status, 200);
}

TEST(FaultClient, AbortMidRequestBodyClosesUpstreamAndReleasesResources) {
  ScriptedUpstream upstream(ConnectionScript{});
  auto needle = NeedleProcess::start([&](int port) {
    return config_for(port, upstream_host(upstream), "access_log = \"off\"\n",
                      "max_idle_per_host = 0\n");
  });
  const pid_t pid = needle->process().pid();
  auto warm = request(needle->port(), "POST", "/warm", std::string(200000, 'w'));
  ASSERT_TRUE(warm.has_value());
  ASSERT_EQ(warm->status, 200);
  ASSERT_TRUE(eventually(milliseconds(2000), [&] { return upstream.open_connections() == 0; }));
  const Baseline before = measure(pid);

  for (int round = 0; round < 5; ++round) {
    HttpClient client;
    ASSERT_TRUE(client.connect(needle->port()));
    // Larger than the retry buffer: needle streams it, so the upstream is already connected.
    ASSERT_TRUE(client.send_raw("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\n" +
                                std::string(200000, 'u')));
    ASSERT_TRUE(upstream.wait_for_connections(static_cast<size_t>(round) + 2, milliseconds(3000)))
        << "round " << round;
    client.reset();
    EXPECT_TRUE(eventually(milliseconds(3000), [&] { return upstream.open_connections() == 0; }))
        << "round " << round << ": needle kept the upstream connection of an aborted upload";
  }
  EXPECT_TRUE(eventually(milliseconds(3000), [&] { return count_fds(pid) <= before.fds; }))
      << "fds before " << before.fds << " after " << count_fds(pid);
  EXPECT_LE(rss_kib(pid), before.rss + 8 * 1024) << "RSS KiB before " << before.rss;
  auto after = get(needle->port(), "/again");
  ASSERT_TRUE(after.has_value());
  EXPECT_EQ(after->status, 200);
}

}  // namespace
}  // namespace needle::test
