// Overload and slow clients against the real binary (one worker): slowloris heads, stalled
// bodies, clients that never read, connection floods over the per-worker limit, fd exhaustion
// and a bounded slowhttptest run. needle must time the slow ones out, never crash, and serve
// normal requests again as soon as the pressure is gone.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "support/child_process.h"
#include "support/eventually.h"
#include "support/free_port.h"
#include "support/http_client.h"
#include "support/needle_process.h"
#include "support/scripted_upstream.h"

namespace needle::test {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

long elapsed_ms(Clock::time_point since) {
  return static_cast<long>(
      std::chrono::duration_cast<milliseconds>(Clock::now() - since).count());
}

std::string config_for(int port, int upstream_port, const std::string& server_extra = "",
                       const std::string& cluster_extra = "") {
  return "[server]\nworkers = 1\n" + server_extra + "\n[[listener]]\naddress = \"127.0.0.1:" +
         std::to_string(port) + "\"\n\n[admin]\naddress = \"off\"\n\n[[route]]\npath_prefix = \"/\"\n"
         "cluster = \"app\"\n\n[cluster.app]\nhosts = [\"127.0.0.1:" +
         std::to_string(upstream_port) + "\"]\n" + cluster_extra;
}

bool serves_200(int port, milliseconds timeout = milliseconds(3000)) {
  auto r = get(port, "/probe", {}, timeout);
  return r && r->status == 200;
}

// ---- slow clients ----

TEST(OverloadSlowClient, SlowlorisHeadGets408AfterHeaderTimeout) {
  ScriptedUpstream upstream;
  auto needle = NeedleProcess::start([&](int port) {
    return config_for(port, upstream.port(), "header_timeout = \"500ms\"\n");
  });
  HttpClient client;
  ASSERT_TRUE(client.connect(needle->port()));
  const std::string head = "GET /slow HTTP/1.1\r\nHost: x\r\nX-Drip: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
  const auto start = Clock::now();
  PeerClose seen = PeerClose::still_open;
  size_t sent = 0;
  // One byte every 100 ms; needle must answer before the head is complete (~3.7 s).
  for (; sent < head.size() && seen == PeerClose::still_open; ++sent) {
    if (!client.send_raw(head.substr(sent, 1))) break;
    seen = client.closed_by_peer(milliseconds(100));
  }
  ASSERT_LT(sent, head.size()) << "needle waited for the whole dripped head";
  auto r = client.read_response(milliseconds(2000));
  const long took = elapsed_ms(start);
  ASSERT_TRUE(r.has_value()) << to_string(client.last_error());
  EXPECT_EQ(r->status, 408);
  EXPECT_GE(took, 450);
  EXPECT_LT(took, 1500);
  EXPECT_NE(client.closed_by_peer(milliseconds(2000)), PeerClose::still_open);
  EXPECT_EQ(upstream.requests_received(), 0u);
  EXPECT_TRUE(serves_200(needle->port()));
}

TEST(OverloadSlowClient, StalledBodyGets408AfterBodyTimeout) {
  ScriptedUpstream upstream;
  auto needle = NeedleProcess::start([&](int port) {
    return config_for(port, upstream.port(), "body_timeout = \"500ms\"\n");
  });
  HttpClient client;
  ASSERT_TRUE(client.connect(needle->port()));
  const auto start = Clock::now();
  ASSERT_TRUE(client.send_raw("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n" +
                              std::string(10, 'b')));
  auto r = client.read_response(milliseconds(3000));
  const long took = elapsed_ms(start);
  ASSERT_TRUE(r.has_value()) << to_string(client.last_error());
  EXPECT_EQ(r->status, 408);
  EXPECT_GE(took, 450);
  EXPECT_LT(took, 2000);
  EXPECT_NE(client.closed_by_peer(milliseconds(2000)), PeerClose::still_open);
  EXPECT_EQ(upstream.requests_received(), 0u);
  EXPECT_TRUE(serves_200(needle->port()));
}

TEST(OverloadSlowClient, ClientThatNeverReadsIsDisconnectedAfterSendTimeout) {
  ConnectionScript script;
  script.otherwise = ScriptedStep::respond(200, std::string(32u << 20, 'r'));
  ScriptedUpstream upstream(script);
  auto needle = NeedleProcess::start([&](int port) {
    return config_for(port, upstream.port(), "send_timeout = \"500ms\"\n");
  });

  // A small receive buffer so needle's writes block early.
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  const int small = 16 * 1024;
  ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(needle->port()));
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  const std::string req = "GET /big HTTP/1.1\r\nHost: x\r\n\r\n";
  ASSERT_EQ(::send(fd, req.data(), req.size(), MSG_NOSIGNAL), static_cast<ssize_t>(req.size()));

  // Never read: needle must give up on its own and say why.
  EXPECT_TRUE(needle->wait_for_access_log_lines(1, milliseconds(5000)));
  const auto lines = needle->access_log_lines();
  ASSERT_FALSE(lines.empty());
  EXPECT_NE(lines.back().find("\"cause\":\"client_timeout\""), std::string::npos) << lines.back();

  // Now drain: what arrives is short of the body, and ends in EOF or a reset.
  size_t got = 0;
  bool closed = false;
  char buf[65536];
  const auto deadline = Clock::now() + milliseconds(5000);
  timeval tv{0, 200 * 1000};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  while (Clock::now() < deadline) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n > 0) {
      got += static_cast<size_t>(n);
    } else if (n == 0 || errno == ECONNRESET) {
      closed = true;
      break;
    }
  }
  ::close(fd);
  EXPECT_TRUE(closed) << "needle kept a non-reading client connected";
  EXPECT_LT(got, 32u << 20);
  // The upstream connection of that response is dropped too.
  EXPECT_TRUE(eventually(milliseconds(3000), [&] { return upstream.open_connections() == 0; }));
}

// ---- connection floods ----

// Non-blocking connect to 127.0.0.1:port; the kernel completes it from the listen backlog
// even when needle is not accepting.
int open_raw(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// Which of `fds` have bytes (or EOF) to read within `timeout`.
std::vector<size_t> readable(const std::vector<int>& fds, milliseconds timeout) {
  std::vector<pollfd> p;
  for (int fd : fds) p.push_back({fd, POLLIN, 0});
  ::poll(p.data(), p.size(), static_cast<int>(timeout.count()));
  std::vector<size_t> out;
  for (size_t i = 0; i < p.size(); ++i) {
    if (p[i].revents & (POLLIN | POLLHUP | POLLERR)) out.push_back(i);
  }
  return out;
}

// Reads one whole small response ("HTTP/1.1 200" ... body "ok\n") from fd.
bool got_200(int fd) {
  std::string in;
  char buf[4096];
  const auto deadline = Clock::now() + milliseconds(2000);
  timeval tv{0, 100 * 1000};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  while (Clock::now() < deadline && in.find("\r\n\r\nok\n") == std::string::npos) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n > 0) in.append(buf, static_cast<size_t>(n));
    if (n == 0) break;
  }
  return in.rfind("HTTP/1.1 200", 0) == 0 && in.find("\r\n\r\nok\n") != std::string::npos;
}

TEST(OverloadConnections, OverTheLimitAcceptPausesAndResumes) {
  ScriptedUpstream upstream;
  auto needle = NeedleProcess::start([&](int port) {
    return config_for(port, upstream.port(),
                      "max_connections_per_worker = 50\naccess_log = \"off\"\n");
  });
  const int port = needle->port();
  std::vector<int> fds;
  for (int i = 0; i < 200; ++i) {
    const int fd = open_raw(port);
    ASSERT_GE(fd, 0) << "connect " << i;
    fds.push_back(fd);
  }
  const std::string req = "GET /flood HTTP/1.1\r\nHost: x\r\n\r\n";
  for (int fd : fds) ASSERT_EQ(::send(fd, req.data(), req.size(), MSG_NOSIGNAL), (ssize_t)req.size());

  // Exactly the limit is served; the rest wait in the backlog (not closed, not reset).
  std::this_thread::sleep_for(milliseconds(500));
  auto first = readable(fds, milliseconds(500));
  EXPECT_EQ(first.size(), 50u);
  std::vector<bool> served(fds.size(), false);
  for (size_t i : first) {
    EXPECT_TRUE(got_200(fds[i])) << "connection " << i;
    served[i] = true;
  }
  // Closing served connections lets needle accept the waiting ones, 50 at a time.
  size_t total = first.size();
  for (int round = 0; round < 8 && total < fds.size(); ++round) {
    for (size_t i = 0; i < fds.size(); ++i) {
      if (served[i] && fds[i] >= 0) {
        ::close(fds[i]);
        fds[i] = -1;
      }
    }
    std::vector<int> waiting;
    std::vector<size_t> index;
    for (size_t i = 0; i < fds.size(); ++i) {
      if (fds[i] >= 0) {
        waiting.push_back(fds[i]);
        index.push_back(i);
      }
    }
    std::this_thread::sleep_for(milliseconds(300));
    auto next = readable(waiting, milliseconds(2000));
    EXPECT_LE(next.size(), 50u);
    for (size_t k : next) {
      EXPECT_TRUE(got_200(waiting[k])) << "connection " << index[k];
      served[index[k]] = true;
    }
    total += next.size();
  }
  EXPECT_EQ(total, fds.size()) << "every waiting connection is served once others close";
  for (int fd : fds) {
    if (fd >= 0) ::close(fd);
  }
  EXPECT_TRUE(needle->process().running());
  EXPECT_TRUE(serves_200(port));
}

// needle runs out of fds while its upstream is healthy: the upstream connects that fail with
// EMFILE are needle's own failure (cause local_resource_exhausted, the errno in the detail) and
// must not eject the host. One counted failure would eject it for a minute here, so serving
// again at once after the flood proves nothing was counted.
TEST(OverloadConnections, FileDescriptorExhaustionIsSurvivedWithoutEjectingTheHost) {
  // The warm-up's answer closes its connection, so no connection that answers at once is left
  // in the pool for the flood to share (an ASan run once served the whole flood on one).
  ScriptedStep closing = ScriptedStep::respond(200, "ok\n");
  closing.connection_close = true;
  ScriptedUpstream upstream(ConnectionScript{.otherwise = closing});
  TempDir dir("needle-fd");
  const std::string binary = NEEDLE_BINARY_PATH;
  std::unique_ptr<ChildProcess> needle;
  int port = 0;
  for (int attempt = 0; attempt < 3 && !needle; ++attempt) {
    port = free_port();
    write_text_file(dir.file("needle.toml"),
                    config_for(port, upstream.port(), "header_timeout = \"3s\"\n",
                               "eject_after_connect_failures = 1\neject_duration = \"60s\"\n"));
    ChildOptions options;
    options.name = "needle";
    options.output_dir = dir.path();
    // A low fd limit: epoll, eventfds, listener, logs... leave room for only a few clients.
    options.argv = {"prlimit", "--nofile=40:40", binary, "run", "-c",
                    dir.file("needle.toml").string()};
    auto child = std::make_unique<ChildProcess>(options);
    if (wait_for_port(port, milliseconds(5000), child.get())) needle = std::move(child);
  }
  ASSERT_TRUE(needle) << "needle did not start under prlimit";
  ASSERT_TRUE(serves_200(port));
  // Slow answers from now on: the flood's sessions are all waiting at once, so each needs an
  // upstream connection of its own and the last ones find no fd for it. (With instant answers
  // they could all take turns on one pooled connection, and nothing would be exhausted.)
  ScriptedStep slow = ScriptedStep::respond(200, "ok\n");
  slow.delay = milliseconds(300);
  upstream.set_script(ConnectionScript{.otherwise = slow});

  std::vector<int> fds;
  for (int i = 0; i < 100; ++i) {
    const int fd = open_raw(port);
    if (fd >= 0) fds.push_back(fd);
  }
  const std::string req = "GET /many HTTP/1.1\r\nHost: x\r\n\r\n";
  for (int fd : fds) ::send(fd, req.data(), req.size(), MSG_NOSIGNAL);
  std::this_thread::sleep_for(milliseconds(1500));
  EXPECT_TRUE(needle->running()) << needle->describe();
  const std::string log = needle->stderr_text();
  EXPECT_NE(log.find("accept failed"), std::string::npos) << log;
  // Backoff and rate-limited reports: not one line per retry.
  size_t reports = 0;
  for (size_t at = log.find("accept failed"); at != std::string::npos;
       at = log.find("accept failed", at + 1)) {
    ++reports;
  }
  EXPECT_LE(reports, 5u) << log;
  // The sessions accepted last found no fd for their upstream socket: a 502 that says so.
  const std::string access = needle->stdout_text();
  EXPECT_NE(access.find("\"cause\":\"local_resource_exhausted\""), std::string::npos)
      << access.substr(0, 4000);
  EXPECT_NE(access.find("Too many open files"), std::string::npos) << access.substr(0, 4000);
  EXPECT_EQ(access.find("Operation aborted"), std::string::npos) << access.substr(0, 4000);
  EXPECT_EQ(access.find("no_healthy_host"), std::string::npos) << access.substr(0, 4000);
  for (int fd : fds) ::close(fd);

  // Once the flood is gone needle serves again: the host was never ejected (60 s if it were).
  const auto freed = Clock::now();
  EXPECT_TRUE(eventually(milliseconds(3000), [&] { return serves_200(port, milliseconds(1000)); }))
      << needle->stdout_text().substr(0, 4000) << needle->stderr_text().substr(0, 4000);
  EXPECT_LT(elapsed_ms(freed), 2000);
  EXPECT_EQ(needle->stdout_text().find("no_healthy_host"), std::string::npos);
  EXPECT_TRUE(needle->running()) << needle->describe();
  needle->terminate(SIGTERM);
  auto status = needle->wait_exit(milliseconds(5000));
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << describe_wait_status(status);
}

TEST(OverloadConnections, SlowHttpTestDoesNotStopNormalRequests) {
  const std::string tool = find_in_path("slowhttptest");
  if (tool.empty()) {
    FAIL() << "slowhttptest is not installed: run scripts/install-deps.sh (Debian package "
              "slowhttptest)";
  }
  ScriptedUpstream upstream;
  auto needle = NeedleProcess::start([&](int port) {
    return config_for(port, upstream.port(), "header_timeout = \"2s\"\naccess_log = \"off\"\n");
  });
  TempDir dir("slowhttptest");
  ChildOptions options;
  options.name = "slowhttptest";
  options.output_dir = dir.path();
  options.argv = {tool, "-c", "200", "-H", "-i", "10", "-r", "100", "-t", "GET", "-u",
                  "http://127.0.0.1:" + std::to_string(needle->port()) + "/", "-x", "24", "-p",
                  "3", "-l", "6"};
  ChildProcess attack(options);
  std::this_thread::sleep_for(milliseconds(2500));  // 200 slow connections are open by now
  int during_ok = 0;
  for (int i = 0; i < 5; ++i) {
    if (serves_200(needle->port(), milliseconds(2000))) ++during_ok;
    std::this_thread::sleep_for(milliseconds(300));
  }
  EXPECT_EQ(during_ok, 5) << "normal requests failed during the slowloris run";
  auto status = attack.wait_exit(milliseconds(10000));
  EXPECT_TRUE(status.has_value()) << "slowhttptest did not finish";
  EXPECT_TRUE(needle->process().running());
  EXPECT_TRUE(serves_200(needle->port()));
  // needle timed the slow heads out itself (408 or closed), not the attacker's -l.
  const std::string report = attack.stdout_text();
  EXPECT_EQ(report.find("service available:   NO"), std::string::npos) << report;
}

}  // namespace
}  // namespace needle::test
