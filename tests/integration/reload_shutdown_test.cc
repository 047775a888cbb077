// Reload (SIGHUP) and shutdown (SIGTERM) of the real binary: a reload switches routes for new
// requests, costs no request under constant load, and refuses a bad file while the running
// configuration keeps serving; SIGTERM lets in-flight requests finish and exits 0.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "support/http_client.h"
#include "support/needle_process.h"
#include "support/scripted_upstream.h"
#include "support/time_scale.h"

namespace needle::test {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// Routes: "/" to cluster `cluster`; clusters "blue" and "green" on the two upstream ports.
std::string config_for(int port, int blue_port, int green_port, const std::string& cluster,
                       const std::string& server_extra = "", int workers = 1, int admin_port = 0) {
  const std::string admin =
      admin_port == 0 ? "off" : "127.0.0.1:" + std::to_string(admin_port);
  return "[server]\nworkers = " + std::to_string(workers) + "\n" + server_extra + "\n[[listener]]\naddress = \"127.0.0.1:" +
         std::to_string(port) + "\"\n\n[admin]\naddress = \"" + admin + "\"\n\n[[route]]\npath_prefix = \"/\"\n"
         "cluster = \"" + cluster + "\"\n\n[cluster.blue]\nhosts = [\"127.0.0.1:" +
         std::to_string(blue_port) + "\"]\n\n[cluster.green]\nhosts = [\"127.0.0.1:" +
         std::to_string(green_port) + "\"]\n";
}

ConnectionScript answering(const std::string& body) {
  ConnectionScript script;
  script.otherwise = ScriptedStep::respond(200, body);
  return script;
}

TEST(ReloadConfig, SighupSwitchesARouteToAnotherCluster) {
  ScriptedUpstream blue(answering("blue\n"));
  ScriptedUpstream green(answering("green\n"));
  int port = 0;
  auto needle = NeedleProcess::start([&](int p) {
    port = p;
    return config_for(p, blue.port(), green.port(), "blue");
  });
  HttpClient keep;  // a keep-alive client that lives across the reload
  ASSERT_TRUE(keep.connect(needle->port()));
  auto before = keep.get("/");
  ASSERT_TRUE(before.has_value());
  EXPECT_EQ(before->body, "blue\n");

  needle->rewrite_config(config_for(port, blue.port(), green.port(), "green"));
  needle->reload();
  ASSERT_TRUE(needle->wait_for_log("reloaded", milliseconds(3000))) << needle->operational_log();

  auto fresh = get(needle->port(), "/");
  ASSERT_TRUE(fresh.has_value());
  EXPECT_EQ(fresh->body, "green\n");
  auto same_connection = keep.get("/");
  ASSERT_TRUE(same_connection.has_value()) << to_string(keep.last_error());
  EXPECT_EQ(same_connection->body, "green\n") << "new requests on old connections follow too";
  EXPECT_EQ(blue.requests_received(), 1u);
  EXPECT_EQ(green.requests_received(), 2u);
}

// 8 bounded client threads (half keep-alive, half a connection per request) count every
// failure exactly while 10 SIGHUPs arrive 400 ms apart, each switching the route's cluster.
// With more than one worker the admin endpoint is on too and scraped between reloads, so the
// control thread's snapshots of worker state run alongside the reloads.
void reload_under_load(int workers) {
  ScriptedUpstream blue(answering("blue\n"));
  ScriptedUpstream green(answering("green\n"));
  int port = 0;
  const int admin_port = workers > 1 ? free_port() : 0;
  NeedleOptions options;
  if (admin_port != 0) options.also_wait_for = {admin_port};
  auto needle = NeedleProcess::start([&](int p) {
    port = p;
    return config_for(p, blue.port(), green.port(), "blue", "access_log = \"off\"\n", workers,
                      admin_port);
  }, options);

  std::atomic<bool> stop{false};
  std::atomic<long> ok{0}, non_2xx{0}, errors{0};
  std::vector<std::string> first_errors;
  std::mutex errors_mutex;
  std::vector<std::thread> clients;
  for (int t = 0; t < 8; ++t) {
    clients.emplace_back([&, t] {
      HttpClient client;
      long done = 0;
      while (!stop.load()) {
        if (!client.connected() && !client.connect(needle->port())) {
          ++errors;
          continue;
        }
        // Half the clients keep connections alive, half open one per request.
        std::vector<std::pair<std::string, std::string>> headers;
        if (t % 2 == 1) headers.push_back({"Connection", "close"});
        auto r = client.get("/load/" + std::to_string(done++), headers, milliseconds(3000));
        if (!r) {
          ++errors;
          std::lock_guard lock(errors_mutex);
          if (first_errors.size() < 5) first_errors.push_back(to_string(client.last_error()));
          client.close();
          continue;
        }
        if (r->status / 100 == 2) {
          ++ok;
        } else {
          ++non_2xx;
        }
        if (!r->keep_alive) client.close();
      }
    });
  }
  std::this_thread::sleep_for(milliseconds(300));
  for (int i = 0; i < 10; ++i) {
    needle->rewrite_config(
        config_for(port, blue.port(), green.port(), i % 2 == 0 ? "green" : "blue",
                   "access_log = \"off\"\n", workers, admin_port));
    needle->reload();
    if (admin_port != 0) {
      auto metrics = get(admin_port, "/metrics", {}, milliseconds(3000));
      EXPECT_TRUE(metrics && metrics->status == 200) << "scrape " << i;
      auto pools = get(admin_port, "/pools", {}, milliseconds(3000));
      EXPECT_TRUE(pools && pools->status == 200) << "pools " << i;
    }
    std::this_thread::sleep_for(milliseconds(400));
  }
  stop = true;
  for (auto& c : clients) c.join();

  size_t reloads = 0;
  const std::string log = needle->operational_log();
  for (size_t at = log.find("reloaded"); at != std::string::npos; at = log.find("reloaded", at + 1)) {
    ++reloads;
  }
  EXPECT_EQ(reloads, 10u) << log;
  // ~50 requests per reload interval in a release build; a sanitizer build serves fewer.
  EXPECT_GT(ok.load(), 500 / time_scale()) << "too little load to mean anything";
  EXPECT_EQ(non_2xx.load(), 0);
  EXPECT_EQ(errors.load(), 0) << (first_errors.empty() ? "" : first_errors.front());
  EXPECT_GT(blue.requests_received(), 0u);
  EXPECT_GT(green.requests_received(), 0u);
  EXPECT_TRUE(needle->process().running());
}

TEST(ReloadConfig, TenReloadsUnderConstantLoadFailNoRequest) { reload_under_load(1); }

// Two workers: each swaps its own runtime from the control thread's post (TSan-relevant).
TEST(ReloadConfig, MultiWorkerTenReloadsUnderConstantLoadFailNoRequest) { reload_under_load(2); }

TEST(ReloadConfig, InvalidFilesAreRefusedAndTheRunningConfigKeepsServing) {
  ScriptedUpstream blue(answering("blue\n"));
  ScriptedUpstream green(answering("green\n"));
  int port = 0;
  auto needle = NeedleProcess::start([&](int p) {
    port = p;
    return config_for(p, blue.port(), green.port(), "blue");
  });
  const std::string file = needle->config_path().string();

  // A TOML syntax error: named by file and line.
  std::string broken = config_for(port, blue.port(), green.port(), "green");
  broken += "[cluster.green\nhosts = \n";
  needle->rewrite_config(broken);
  needle->reload();
  ASSERT_TRUE(needle->wait_for_log("keeping the running configuration", milliseconds(3000)))
      << needle->operational_log();
  std::string log = needle->operational_log();
  EXPECT_NE(log.find(file + ":"), std::string::npos) << log;
  auto r = get(needle->port(), "/");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->body, "blue\n");

  // A route to a cluster that does not exist: file, line and key.
  std::string unknown = config_for(port, blue.port(), green.port(), "purple");
  const size_t route_line = [&] {
    size_t line = 1;
    for (size_t i = 0; i < unknown.find("cluster = \"purple\""); ++i) line += unknown[i] == '\n';
    return line;
  }();
  needle->rewrite_config(unknown);
  needle->reload();
  ASSERT_TRUE(needle->wait_for_log("route[0].cluster", milliseconds(3000)))
      << needle->operational_log();
  log = needle->operational_log();
  const std::string expected = file + ":" + std::to_string(route_line) + ":";
  const size_t at = log.find("route[0].cluster");
  const size_t line_start = log.rfind('\n', at) == std::string::npos ? 0 : log.rfind('\n', at) + 1;
  const std::string line = log.substr(line_start, log.find('\n', at) - line_start);
  EXPECT_NE(line.find(expected), std::string::npos) << line;
  EXPECT_NE(line.find("purple"), std::string::npos) << line;
  r = get(needle->port(), "/");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->body, "blue\n");
  EXPECT_EQ(green.requests_received(), 0u);

  // A good file afterwards is taken.
  needle->rewrite_config(config_for(port, blue.port(), green.port(), "green"));
  needle->reload();
  ASSERT_TRUE(needle->wait_for_log("reloaded", milliseconds(3000)));
  r = get(needle->port(), "/");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->body, "green\n");
}

void drain_in_flight(int workers) {
  ScriptedStep slow = ScriptedStep::respond(200, "slow\n");
  slow.delay = milliseconds(300);
  ConnectionScript script;
  script.otherwise = slow;
  ScriptedUpstream upstream(script);
  auto needle = NeedleProcess::start([&](int p) {
    return config_for(p, upstream.port(), upstream.port(), "blue", "drain_timeout = \"5s\"\n",
                      workers);
  });

  constexpr int kInFlight = 20;
  std::vector<int> statuses(kInFlight, 0);
  std::vector<std::string> bodies(kInFlight);
  std::vector<std::thread> clients;
  for (int i = 0; i < kInFlight; ++i) {
    clients.emplace_back([&, i] {
      HttpClient client;
      if (!client.connect(needle->port())) return;
      auto r = client.get("/drain/" + std::to_string(i), {}, milliseconds(5000));
      if (r) {
        statuses[i] = r->status;
        bodies[i] = r->body;
      }
    });
  }
  ASSERT_TRUE(upstream.wait_for_requests(kInFlight, milliseconds(3000)))
      << upstream.requests_received();
  const auto signalled = Clock::now();
  needle->terminate(SIGTERM);
  for (auto& c : clients) c.join();
  for (int i = 0; i < kInFlight; ++i) {
    EXPECT_EQ(statuses[i], 200) << "request " << i;
    EXPECT_EQ(bodies[i], "slow\n") << "request " << i;
  }
  auto status = needle->wait_exit(milliseconds(5000));
  ASSERT_TRUE(status.has_value()) << "needle did not exit after draining";
  EXPECT_TRUE(WIFEXITED(*status)) << describe_wait_status(status);
  EXPECT_EQ(WEXITSTATUS(*status), 0) << needle->operational_log();
  EXPECT_LT(std::chrono::duration_cast<milliseconds>(Clock::now() - signalled).count(), 3000);
  // New connections are refused once draining.
  EXPECT_FALSE(get(needle->port(), "/late", {}, milliseconds(500)).has_value());
}

TEST(ReloadShutdown, SigtermDrainsInFlightRequestsAndExitsZero) { drain_in_flight(1); }
TEST(ReloadShutdown, MultiWorkerSigtermDrainsInFlightRequestsAndExitsZero) { drain_in_flight(2); }

}  // namespace
}  // namespace needle::test
