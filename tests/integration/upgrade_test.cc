// Binary upgrade (SIGUSR2), socket inheritance (LISTEN_FDS) and /ready during a drain, with the
// real binary (docs/decisions/0009-binary-upgrade.md, docs/architecture.md "Reload and
// shutdown"). The upgraded process is the old one's child: its log lines land in the same
// captured stderr, and the fixture's process-group kill ends it with the test.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <mutex>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "proxy_harness.h"
#include "support/child_process.h"
#include "support/haproxy_fixture.h"
#include "support/scripted_upstream.h"
#include "support/time_scale.h"

namespace needle::test {
namespace {

using namespace proxy;

// The pids named by "upgrade: new process PID is serving" lines, in order.
std::vector<pid_t> serving_pids(const NeedleProcess& needle) {
  static const std::regex line(R"(upgrade: new process (\d+) is serving)");
  std::vector<pid_t> pids;
  const std::string log = needle.operational_log();
  for (std::sregex_iterator it(log.begin(), log.end(), line), end; it != end; ++it) {
    pids.push_back(static_cast<pid_t>(std::stol((*it)[1].str())));
  }
  return pids;
}

// SIGUSR2 to `pid`; the pid of the process serving after the hand-off, or -1.
pid_t upgrade(const NeedleProcess& needle, pid_t pid) {
  const size_t before = serving_pids(needle).size();
  if (::kill(pid, SIGUSR2) != 0) return -1;
  if (!eventually([&] { return serving_pids(needle).size() > before; }, milliseconds(10000))) {
    return -1;
  }
  return serving_pids(needle).back();
}

// Running, not a zombie: a retired process's successor is re-parented when it exits, and
// whoever inherits it (init, a subreaper) may reap it late.
bool process_alive(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text;
  if (!std::getline(stat, text)) return false;
  const size_t paren = text.rfind(')');
  return paren != std::string::npos && paren + 2 < text.size() && text[paren + 2] != 'Z';
}

// Keep-alive GET loops on `port` until stopped: a request without a 200 (no answer, a reset, a
// refused connect) is a failure; `Connection: close` makes the client reconnect, as a browser or
// a gateway would.
class LoadLoop {
 public:
  LoadLoop(int port, int clients) {
    for (int i = 0; i < clients; ++i) {
      threads_.emplace_back([this, port, i] { run(port, i); });
    }
  }
  ~LoadLoop() { stop(); }
  void stop() {
    stop_ = true;
    for (auto& t : threads_) {
      if (t.joinable()) t.join();
    }
  }
  uint64_t ok() const { return ok_; }
  uint64_t failed() const { return failed_; }
  std::string first_failure() {
    std::lock_guard lock(mutex_);
    return first_failure_;
  }

 private:
  void fail(std::string what) {
    ++failed_;
    std::lock_guard lock(mutex_);
    if (first_failure_.empty()) first_failure_ = std::move(what);
  }
  void run(int port, int index) {
    HttpClient client;
    for (uint64_t n = 0; !stop_; ++n) {
      if (!client.connected() && !client.connect(port)) {
        fail(std::string("connect: ") + to_string(client.last_error()));
        continue;
      }
      auto r = client.get("/load/" + std::to_string(index) + "/" + std::to_string(n), {},
                          scaled(milliseconds(5000)));
      if (!r || r->status != 200) {
        fail(r ? "status " + std::to_string(r->status)
               : std::string(to_string(client.last_error())) + " " + client.last_error_detail());
        client.close();
        continue;
      }
      ++ok_;
      if (r->headers.get("connection") == "close") client.close();
    }
  }

  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> ok_{0}, failed_{0};
  std::mutex mutex_;
  std::string first_failure_;
  std::vector<std::thread> threads_;
};

ConfigSpec two_workers(int upstream_port, std::string cluster_extra = {}) {
  ConfigSpec spec;
  spec.admin_port = free_port();
  spec.server_extra = "drain_timeout = \"5s\"\n";
  spec.clusters.push_back(ClusterSpec{"app", {upstream_port}, std::move(cluster_extra)});
  return spec;
}

// Two workers: the old process passes one socket per worker, the new one's workers take one each.
std::unique_ptr<NeedleProcess> start_two_workers(const ConfigSpec& spec,
                                                 NeedleOptions options = {}) {
  options.also_wait_for.push_back(spec.admin_port);
  return NeedleProcess::start(
      [spec](int port) {
        std::string toml = spec.render(port);
        toml.replace(toml.find("workers = 1\n"), 12, "workers = 2\n");
        return toml;
      },
      options);
}

TEST(Upgrade, TenUpgradesUnderLoadFailNoRequest) {
  ScriptedUpstream upstream;
  const ConfigSpec spec = two_workers(upstream.port());
  auto needle = start_two_workers(spec);
  LoadLoop load(needle->port(), 16);
  ASSERT_TRUE(eventually([&] { return load.ok() > 100; }, milliseconds(5000)));
  pid_t serving = needle->process().pid();
  std::vector<pid_t> retired;
  for (int i = 0; i < 10; ++i) {
    const uint64_t ok_before = load.ok();
    const pid_t next = upgrade(*needle, serving);
    ASSERT_GT(next, 0) << "upgrade " << i << " did not complete\n" << needle->operational_log();
    retired.push_back(serving);
    serving = next;
    // Requests keep flowing through the new process before the next upgrade.
    ASSERT_TRUE(eventually([&] { return load.ok() > ok_before + 200; }, milliseconds(5000)))
        << "upgrade " << i;
  }
  load.stop();
  EXPECT_EQ(load.failed(), 0u) << load.first_failure() << "\n" << needle->operational_log();
  EXPECT_GT(load.ok(), 2000u);
  // Every replaced process drained and exited (the first one is the fixture's child).
  EXPECT_TRUE(needle->wait_exit(scaled(milliseconds(5000))).has_value());
  for (pid_t pid : retired) {
    EXPECT_TRUE(eventually([&] { return !process_alive(pid); }, milliseconds(5000))) << pid;
  }
  EXPECT_TRUE(process_alive(serving));
  ::kill(serving, SIGTERM);
  EXPECT_TRUE(eventually([&] { return !process_alive(serving); }, milliseconds(5000)));
}

TEST(Upgrade, BrokenConfigOnDiskKeepsTheOldProcessServing) {
  ScriptedUpstream upstream;
  const ConfigSpec spec = two_workers(upstream.port());
  auto needle = start_two_workers(spec);
  needle->rewrite_config("[server]\nworkers = \"many\"\n");
  needle->terminate(SIGUSR2);
  ASSERT_TRUE(needle->wait_for_log("upgrade failed", scaled(milliseconds(10000))))
      << needle->operational_log();
  const std::string log = needle->operational_log();
  // The old process's line names the cause the new one found, and its exit status.
  EXPECT_TRUE(std::regex_search(
      log, std::regex(R"(upgrade failed: new process \d+: .*configuration error.*workers.*)"
                      R"(\(exited with status 1\); this process keeps serving)")))
      << log;
  EXPECT_TRUE(needle->process().running());
  auto r = get(needle->port(), "/still-here");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 200);
  auto ready = get(spec.admin_port, "/ready");
  ASSERT_TRUE(ready.has_value());
  EXPECT_EQ(ready->status, 200);
}

TEST(Upgrade, LearnedIdleLimitsAreInTheNewProcessPools) {
  ScriptedStep hinted = ScriptedStep::respond(200, "ok\n");
  hinted.keep_alive_hint = 7;
  ConnectionScript script;
  script.otherwise = hinted;
  ScriptedUpstream upstream(script);
  const ConfigSpec spec = two_workers(upstream.port());
  auto needle = start_two_workers(spec);
  // Both workers see the hint (connections spread over them by the kernel's hash).
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(get(needle->port(), "/learn").has_value());
  const size_t requests_before = upstream.requests_received();
  const pid_t next = upgrade(*needle, needle->process().pid());
  ASSERT_GT(next, 0) << needle->operational_log();
  EXPECT_TRUE(needle->wait_for_log("upgrade state: restored 2 host pool(s)", milliseconds(2000)))
      << needle->operational_log();
  // The admin address is the new process's now; it has proxied nothing, yet knows the hint.
  ASSERT_TRUE(needle->wait_exit(scaled(milliseconds(5000))).has_value());
  auto pools = get(spec.admin_port, "/pools");
  ASSERT_TRUE(pools.has_value());
  EXPECT_NE(pools->body.find("\"hint_ms\":7000"), std::string::npos) << pools->body;
  EXPECT_EQ(upstream.requests_received(), requests_before);
  ::kill(next, SIGTERM);
}

TEST(Upgrade, StateFileThatDoesNotParseIsIgnored) {
  ScriptedUpstream upstream;
  TempDir dir("needle-state");
  const auto state = dir.path() / "state.json";
  {
    std::ofstream out(state);
    out << "{\"version\":1,\"workers\":[[{\"cluster\":";
  }
  NeedleOptions options;
  options.env.emplace_back("NEEDLE_UPGRADE_STATE", state.string());
  ConfigSpec spec = two_workers(upstream.port());
  auto needle = start_two_workers(spec, options);
  EXPECT_TRUE(needle->wait_for_log("ignored (not JSON): learning from scratch", milliseconds(2000)))
      << needle->operational_log();
  auto r = get(needle->port(), "/");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 200);
}

// A load balancer's view of a rolling restart: /ready turns 503 at SIGTERM while /healthz stays
// 200, the request in flight completes, and an idle keep-alive client is not cut off: its next
// request is answered, with Connection: close.
TEST(ReadyDrain, ReadyTurns503OnSigtermWhileClientsAreServed) {
  ConnectionScript script;
  script.otherwise = ScriptedStep::respond(200, "done\n");
  script.otherwise.delay = milliseconds(800);
  ScriptedUpstream upstream(script);
  ConfigSpec spec;
  spec.admin_port = free_port();
  spec.server_extra = "drain_timeout = \"5s\"\n";
  spec.clusters.push_back(ClusterSpec{"app", {upstream.port()}, ""});
  auto needle = start_needle(spec);
  auto ready = get(spec.admin_port, "/ready");
  ASSERT_TRUE(ready.has_value());
  EXPECT_EQ(ready->status, 200);

  HttpClient idle;  // served once, then idle in keep-alive
  ASSERT_TRUE(idle.connect(needle->port()));
  auto first = idle.get("/first");
  ASSERT_TRUE(first.has_value());
  EXPECT_NE(first->headers.get("connection"), "close");
  HttpClient busy;
  ASSERT_TRUE(busy.connect(needle->port()));
  ASSERT_TRUE(busy.send_raw(HttpClient::format_request("GET", "/in-flight", {}, {}, 0)));
  ASSERT_TRUE(upstream.wait_for_requests(2, milliseconds(2000)));

  needle->terminate(SIGTERM);
  ASSERT_TRUE(eventually(
      [&] {
        auto r = get(spec.admin_port, "/ready");
        return r && r->status == 503;
      },
      milliseconds(1000)));
  auto health = get(spec.admin_port, "/healthz");
  ASSERT_TRUE(health.has_value());
  EXPECT_EQ(health->status, 200);

  auto finished = busy.read_response(milliseconds(3000));
  ASSERT_TRUE(finished.has_value()) << to_string(busy.last_error());
  EXPECT_EQ(finished->status, 200);
  EXPECT_EQ(finished->headers.get("connection"), "close");

  auto next = idle.get("/after-sigterm");
  ASSERT_TRUE(next.has_value()) << to_string(idle.last_error());
  EXPECT_EQ(next->status, 200);
  EXPECT_EQ(next->headers.get("connection"), "close");
  EXPECT_EQ(idle.closed_by_peer(milliseconds(2000)), PeerClose::eof);

  auto status = needle->wait_exit(milliseconds(3000));
  ASSERT_TRUE(status.has_value()) << "needle still draining with no client left";
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << describe_wait_status(status);
}

// A rolling deploy behind an L4 balancer: three needles behind HAProxy in TCP mode, which checks
// /ready every 100 ms (and retries a refused connect on another server); each needle in turn
// gets SIGTERM, drains, exits and is started again on the same ports, under constant load.
// No request fails: /ready turns 503 before anything else changes, a client of a draining needle
// gets Connection: close on its next response and reconnects through HAProxy.
TEST(RollingDeploy, ThreeNeedlesBehindHaproxyRestartedInTurnFailNoRequest) {
  ScriptedUpstream upstream;
  struct Instance {
    ConfigSpec spec;
    int port = 0;
    std::unique_ptr<NeedleProcess> process;
  };
  std::vector<Instance> instances(3);
  for (auto& instance : instances) {
    instance.spec.admin_port = free_port();
    instance.spec.server_extra = "drain_timeout = \"5s\"\n";
    instance.spec.clusters.push_back(ClusterSpec{"app", {upstream.port()}, ""});
    instance.process = start_needle(instance.spec);
    instance.port = instance.process->port();
  }
  std::string config =
      "global\n  maxconn 1000\n"
      "defaults\n  mode tcp\n  timeout connect 1s\n  timeout client 10s\n"
      "  timeout server 10s\n  retries 3\n  option redispatch\n"
      "frontend fe\n  bind 127.0.0.1:@PORT@\n  default_backend needles\n"
      "backend needles\n  balance roundrobin\n  option httpchk GET /ready\n"
      "  http-check expect status 200\n";
  for (size_t i = 0; i < instances.size(); ++i) {
    config += "  server n" + std::to_string(i) + " 127.0.0.1:" +
              std::to_string(instances[i].port) + " check port " +
              std::to_string(instances[i].spec.admin_port) + " inter 100 fall 1 rise 1\n";
  }
  HaproxyFixture haproxy(config);
  LoadLoop load(haproxy.port(), 16);
  ASSERT_TRUE(eventually([&] { return load.ok() > 200; }, milliseconds(5000)));
  for (auto& instance : instances) {
    instance.process->terminate(SIGTERM);
    auto status = instance.process->wait_exit(scaled(milliseconds(6000)));
    ASSERT_TRUE(status.has_value()) << instance.process->operational_log();
    EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << describe_wait_status(status);
    NeedleOptions options;
    options.also_wait_for.push_back(instance.spec.admin_port);
    instance.process = std::make_unique<NeedleProcess>(instance.spec.render(instance.port),
                                                       instance.port, options);
    const uint64_t ok_before = load.ok();
    ASSERT_TRUE(eventually([&] { return load.ok() > ok_before + 200; }, milliseconds(5000)));
    std::this_thread::sleep_for(milliseconds(300));  // HAProxy sees it up again (rise 1)
  }
  load.stop();
  EXPECT_EQ(load.failed(), 0u) << load.first_failure();
  EXPECT_GT(load.ok(), 1000u);
}

// systemd socket activation, by hand: the test binds and listens, a client connects and sends
// its request before needle exists (it waits in the accept queue), then needle is exec'ed with
// the socket as fd 3 and LISTEN_FDS=1: it serves the queued request on the inherited socket.
TEST(ListenFds, NeedleServesTheQueueOfAnInheritedSocket) {
  ScriptedUpstream upstream;
  const int listener = ::socket(AF_INET, SOCK_STREAM, 0);  // inherited: no CLOEXEC
  ASSERT_GE(listener, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  ASSERT_EQ(::listen(listener, 16), 0);
  socklen_t len = sizeof address;
  ASSERT_EQ(::getsockname(listener, reinterpret_cast<sockaddr*>(&address), &len), 0);
  const int port = ntohs(address.sin_port);

  HttpClient early;
  ASSERT_TRUE(early.connect(port));
  ASSERT_TRUE(early.send_raw(HttpClient::format_request("GET", "/queued", {}, {}, 0)));

  ConfigSpec spec;
  spec.clusters.push_back(ClusterSpec{"app", {upstream.port()}, ""});
  TempDir dir("needle-listen-fds");
  const auto config = dir.path() / "needle.toml";
  {
    std::ofstream out(config);
    out << spec.render(port);
  }
  ChildOptions options;
  options.name = "needle";
  options.output_dir = dir.path();
  options.argv = {"/bin/sh", "-c",
                  "exec 3<&" + std::to_string(listener) + " " + std::to_string(listener) +
                      "<&-; LISTEN_PID=$$ LISTEN_FDS=1 LISTEN_FDNAMES=web exec \"$0\" run -c "
                      "\"$1\"",
                  NEEDLE_BINARY_PATH, config.string()};
  ChildProcess needle(options);
  ::close(listener);  // only needle holds it now: no bind of its own could have served /queued

  auto r = early.read_response(scaled(milliseconds(5000)));
  ASSERT_TRUE(r.has_value()) << to_string(early.last_error()) << needle.describe();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(upstream.requests_received(), 1u);
  EXPECT_NE(needle.stderr_text().find("1 inherited socket(s)"), std::string::npos)
      << needle.stderr_text();
  auto later = get(port, "/later");
  ASSERT_TRUE(later.has_value());
  EXPECT_EQ(later->status, 200);
}

}  // namespace
}  // namespace needle::test
