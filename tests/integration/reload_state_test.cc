// What a reload (SIGHUP) keeps and what it applies, through the real binary:
//   - a host listed again (same cluster, same address) keeps its pool: idle connections stay
//     in use, counters only grow, the learned/hinted idle limit stays, a new configured
//     idle_timeout applies at once;
//   - server.access_log, [alerts] and admin.address are applied;
//   - a listener or worker-count change refuses the whole file with file:line:key, and the
//     running configuration keeps serving.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "race_support.h"
#include "support/eventually.h"
#include "support/free_port.h"
#include "support/http_client.h"
#include "support/json_reader.h"
#include "support/needle_process.h"
#include "support/scripted_upstream.h"
#include "support/time_scale.h"

namespace needle::test {
namespace {

using std::chrono::milliseconds;

std::string quoted(int port) {
  return "\"127.0.0.1:" + std::to_string(port) + "\"";
}

// The 1-based line of the first occurrence of `text` in `toml`.
int line_of(const std::string& toml, const std::string& text) {
  const size_t at = toml.find(text);
  if (at == std::string::npos) return 0;
  return 1 + static_cast<int>(std::count(toml.begin(), toml.begin() + at, '\n'));
}

// The whole line of `log` holding `text`, or "".
std::string log_line_with(const std::string& log, const std::string& text) {
  const size_t at = log.find(text);
  if (at == std::string::npos) return "";
  const size_t start = log.rfind('\n', at) == std::string::npos ? 0 : log.rfind('\n', at) + 1;
  return log.substr(start, log.find('\n', at) - start);
}

size_t count_of(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// The value of the first sample of `family` whose labels contain `label` on a /metrics page.
double metric(const std::string& page, const std::string& family, const std::string& label) {
  std::istringstream lines(page);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind(family + "{", 0) != 0 || line.find(label) == std::string::npos) continue;
    return std::stod(line.substr(line.rfind(' ') + 1));
  }
  return -1;
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

struct Layout {
  int upstream_port = 0;
  int admin_port = 0;
  std::string server_extra;   // raw lines in [server]
  std::string cluster_extra;  // raw lines in [cluster.app]
  std::string tail;           // raw TOML after everything ([alerts], ...)
  int workers = 1;
  int listen_port = 0;  // 0: the port needle was started on

  std::string render(int port) const {
    const int listen = listen_port != 0 ? listen_port : port;
    return "[server]\nworkers = " + std::to_string(workers) + "\n" + server_extra +
           "\n[[listener]]\naddress = " + quoted(listen) + "\n\n[admin]\naddress = " +
           (admin_port != 0 ? quoted(admin_port) : std::string("\"off\"")) +
           "\n\n[[route]]\npath_prefix = \"/\"\ncluster = \"app\"\n\n[cluster.app]\nhosts = [" +
           quoted(upstream_port) + "]\n" + cluster_extra + "\n" + tail;
  }
};

// One keep-alive client sends requests back to back (each waits for the previous answer), so
// needle needs one upstream connection the whole time: a reload that dropped the pool would
// make it open a second one. The SIGHUP lands while requests are in flight.
TEST(ReloadState, AKeptHostKeepsItsConnectionsCountersAndLearnedLimitsUnderLoad) {
  ConnectionScript script;
  script.otherwise = ScriptedStep::respond(200, "app\n");
  script.otherwise.keep_alive_hint = 30;  // the upstream says it keeps idle connections 30 s
  ScriptedUpstream upstream(script);
  Layout layout;
  layout.upstream_port = upstream.port();
  layout.admin_port = free_port();
  layout.server_extra = "access_log = \"off\"\n";
  int port = 0;
  NeedleOptions options;
  options.also_wait_for = {layout.admin_port};
  auto needle = NeedleProcess::start(
      [&](int p) {
        port = p;
        return layout.render(p);
      },
      options);

  std::atomic<bool> stop{false};
  std::atomic<long> ok{0}, failed{0};
  std::thread client_thread([&] {
    HttpClient client;
    for (int i = 0; i < 100000 && !stop.load(); ++i) {
      if (!client.connected() && !client.connect(needle->port())) {
        ++failed;
        continue;
      }
      auto r = client.get("/load/" + std::to_string(i), {}, milliseconds(3000));
      if (r && r->status == 200) {
        ++ok;
      } else {
        ++failed;
        client.close();
      }
    }
  });
  ASSERT_TRUE(upstream.wait_for_requests(50, scaled(milliseconds(5000))));
  const auto before = race::pool_snapshot(layout.admin_port);
  const std::string metrics_before = race::admin_get(layout.admin_port, "/metrics");
  ASSERT_TRUE(before) << race::admin_get(layout.admin_port, "/pools");
  EXPECT_EQ((*before)["hint_ms"].integer(), 30000);

  // Other cluster settings change too; a configured idle_timeout applies at once.
  layout.cluster_extra = "idle_timeout = \"20s\"\nmax_retries = 3\n";
  needle->rewrite_config(layout.render(port));
  needle->reload();
  ASSERT_TRUE(needle->wait_for_log("reloaded", scaled(milliseconds(3000))))
      << needle->operational_log();
  const long ok_at_reload = ok.load();
  ASSERT_TRUE(
      upstream.wait_for_requests(upstream.requests_received() + 50, scaled(milliseconds(5000))));
  stop = true;
  client_thread.join();

  const auto after = race::pool_snapshot(layout.admin_port);
  const std::string metrics_after = race::admin_get(layout.admin_port, "/metrics");
  ASSERT_TRUE(after);
  const std::string pools = race::admin_get(layout.admin_port, "/pools");
  EXPECT_EQ(failed.load(), 0);
  EXPECT_GT(ok.load(), ok_at_reload);
  EXPECT_EQ(upstream.connections_accepted(), 1u) << "the reload cost the pooled connection";
  EXPECT_EQ((*after)["opened"].integer(), (*before)["opened"].integer()) << pools;
  EXPECT_GT((*after)["reused"].integer(), (*before)["reused"].integer()) << pools;
  EXPECT_EQ((*after)["hint_ms"].integer(), 30000) << "the hint was forgotten: " << pools;
  EXPECT_EQ((*after)["configured_ms"].integer(), 20000) << pools;
  EXPECT_EQ((*after)["limit_source"].str(), "configured") << pools;
  for (const char* family :
       {"needle_upstream_connections_opened_total", "needle_upstream_connections_reused_total"}) {
    const double was = metric(metrics_before, family, "cluster=\"app\"");
    const double now = metric(metrics_after, family, "cluster=\"app\"");
    EXPECT_GE(was, 1) << family << "\n" << metrics_before;
    EXPECT_GE(now, was) << family << " went backwards across the reload";
  }
}

// A host the new file drops loses its pool; one it lists again under another cluster name is a
// new pool (the identity is cluster + address).
TEST(ReloadState, ADroppedHostsPoolIsDrainedAndARenamedClusterStartsAfresh) {
  ScriptedUpstream upstream;
  Layout layout;
  layout.upstream_port = upstream.port();
  layout.admin_port = free_port();
  int port = 0;
  NeedleOptions options;
  options.also_wait_for = {layout.admin_port};
  auto needle = NeedleProcess::start(
      [&](int p) {
        port = p;
        return layout.render(p);
      },
      options);
  HttpClient client;
  ASSERT_TRUE(client.connect(needle->port()));
  ASSERT_TRUE(client.get("/one"));
  ASSERT_TRUE(upstream.wait_for_connections(1, scaled(milliseconds(2000))));

  std::string renamed = layout.render(port);
  for (size_t at; (at = renamed.find("\"app\"")) != std::string::npos;) {
    renamed.replace(at, 5, "\"web\"");
  }
  renamed.replace(renamed.find("[cluster.app]"), 13, "[cluster.web]");
  needle->rewrite_config(renamed);
  needle->reload();
  ASSERT_TRUE(needle->wait_for_log("reloaded", scaled(milliseconds(3000))));
  auto r = client.get("/two");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(upstream.connections_accepted(), 2u);
  const auto pool = race::pool_snapshot(layout.admin_port);
  ASSERT_TRUE(pool);
  EXPECT_EQ((*pool)["cluster"].str(), "web");
  EXPECT_EQ((*pool)["opened"].integer(), 1);
  EXPECT_EQ((*pool)["reused"].integer(), 0);
}

TEST(ReloadState, AccessLogPathChangeIsAppliedOnReload) {
  ScriptedUpstream upstream;
  const auto dir =
      std::filesystem::temp_directory_path() /
      ("needle-reload-log-" + std::to_string(::getpid()) + "-" + std::to_string(free_port()));
  std::filesystem::create_directories(dir);
  const auto first = dir / "first.log";
  const auto second = dir / "second.log";
  Layout layout;
  layout.upstream_port = upstream.port();
  layout.server_extra = "access_log = \"" + first.string() + "\"\n";
  int port = 0;
  auto needle = NeedleProcess::start([&](int p) {
    port = p;
    return layout.render(p);
  });
  ASSERT_TRUE(get(needle->port(), "/before-reload"));
  ASSERT_TRUE(eventually(scaled(milliseconds(3000)), [&] {
    return read_file(first).find("/before-reload") != std::string::npos;
  })) << read_file(first);

  layout.server_extra = "access_log = \"" + second.string() + "\"\n";
  needle->rewrite_config(layout.render(port));
  needle->reload();
  ASSERT_TRUE(needle->wait_for_log("reloaded", scaled(milliseconds(3000))))
      << needle->operational_log();
  ASSERT_TRUE(get(needle->port(), "/after-reload"));
  EXPECT_TRUE(
      eventually(scaled(milliseconds(3000)),
                 [&] { return read_file(second).find("/after-reload") != std::string::npos; }))
      << "second: " << read_file(second) << "\n"
      << needle->operational_log();
  EXPECT_EQ(read_file(first).find("/after-reload"), std::string::npos) << read_file(first);

  // "off" is applied too: nothing more is written anywhere.
  layout.server_extra = "access_log = \"off\"\n";
  needle->rewrite_config(layout.render(port));
  needle->reload();
  ASSERT_TRUE(eventually(scaled(milliseconds(3000)),
                         [&] { return count_of(needle->operational_log(), "reloaded") == 2; }));
  ASSERT_TRUE(get(needle->port(), "/while-off"));
  std::this_thread::sleep_for(milliseconds(300));  // two flush periods
  EXPECT_EQ(read_file(second).find("/while-off"), std::string::npos);
  EXPECT_EQ(read_file(first).find("/while-off"), std::string::npos);
  std::filesystem::remove_all(dir);
}

TEST(ReloadState, AlertsWebhookChangeIsAppliedOnReload) {
  ScriptedUpstream first_receiver;
  ScriptedUpstream second_receiver;
  const int down_port = free_port();  // nothing listens: every request is a 502
  Layout layout;
  layout.upstream_port = down_port;
  auto alerts = [](int receiver) {
    return "[alerts]\nwebhook = \"http://127.0.0.1:" + std::to_string(receiver) +
           "/hooks/needle\"\nwindow = \"200ms\"\n";
  };
  layout.tail = alerts(first_receiver.port());
  int port = 0;
  auto needle = NeedleProcess::start([&](int p) {
    port = p;
    return layout.render(p);
  });
  auto r = get(needle->port(), "/first");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 502);
  ASSERT_TRUE(first_receiver.wait_for_requests(1, scaled(milliseconds(5000))))
      << needle->operational_log();

  layout.tail = alerts(second_receiver.port());
  needle->rewrite_config(layout.render(port));
  needle->reload();
  ASSERT_TRUE(needle->wait_for_log("reloaded", scaled(milliseconds(3000))))
      << needle->operational_log();
  r = get(needle->port(), "/second");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 502);
  ASSERT_TRUE(second_receiver.wait_for_requests(1, scaled(milliseconds(5000))))
      << "the new webhook got nothing\n"
      << needle->operational_log();
  EXPECT_NE(second_receiver.requests().at(0).body.find("/second"), std::string::npos)
      << second_receiver.requests().at(0).body;
  EXPECT_EQ(first_receiver.requests_received(), 1u);
}

TEST(ReloadState, AdminAddressChangeIsAppliedAndAnUnbindableOneRefused) {
  ScriptedUpstream upstream([] {
    ConnectionScript s;
    s.otherwise = ScriptedStep::respond(200, "first\n");
    return s;
  }());
  ScriptedUpstream other([] {
    ConnectionScript s;
    s.otherwise = ScriptedStep::respond(200, "other\n");
    return s;
  }());
  Layout layout;
  layout.upstream_port = upstream.port();
  layout.admin_port = free_port();
  const int first_admin = layout.admin_port;
  int port = 0;
  NeedleOptions options;
  options.also_wait_for = {first_admin};
  auto needle = NeedleProcess::start(
      [&](int p) {
        port = p;
        return layout.render(p);
      },
      options);
  ASSERT_EQ(race::admin_get(first_admin, "/healthz"), "ok\n");

  layout.admin_port = free_port();
  const int second_admin = layout.admin_port;
  needle->rewrite_config(layout.render(port));
  needle->reload();
  ASSERT_TRUE(needle->wait_for_log("reloaded", scaled(milliseconds(3000))))
      << needle->operational_log();
  EXPECT_EQ(race::admin_get(second_admin, "/healthz"), "ok\n") << needle->operational_log();
  EXPECT_FALSE(get(first_admin, "/healthz", {}, milliseconds(500)).has_value());

  // An address that cannot be bound (the other upstream listens there): the whole file is
  // refused at admin.address, the route change in it is not applied either.
  layout.admin_port = other.port();
  layout.upstream_port = other.port();
  const std::string refused = layout.render(port);
  needle->rewrite_config(refused);
  needle->reload();
  ASSERT_TRUE(needle->wait_for_log("admin.address", scaled(milliseconds(3000))))
      << needle->operational_log();
  const std::string line = log_line_with(needle->operational_log(), "admin.address");
  const std::string place =
      needle->config_path().string() + ":" + std::to_string(line_of(refused, "[admin]") + 1) + ":";
  EXPECT_NE(line.find(place), std::string::npos) << line;
  EXPECT_EQ(race::admin_get(second_admin, "/healthz"), "ok\n");
  auto r = get(needle->port(), "/");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "first\n");
  EXPECT_EQ(count_of(needle->operational_log(), "reloaded"), 1u);
}

TEST(ReloadState, ListenerAndWorkerChangesAreRefusedWithFileLineKey) {
  ScriptedUpstream blue([] {
    ConnectionScript s;
    s.otherwise = ScriptedStep::respond(200, "blue\n");
    return s;
  }());
  ScriptedUpstream green([] {
    ConnectionScript s;
    s.otherwise = ScriptedStep::respond(200, "green\n");
    return s;
  }());
  Layout layout;
  layout.upstream_port = blue.port();
  int port = 0;
  auto needle = NeedleProcess::start([&](int p) {
    port = p;
    return layout.render(p);
  });
  const std::string file = needle->config_path().string();

  // A new listener address plus a route change: nothing of it is applied.
  Layout moved = layout;
  moved.upstream_port = green.port();
  moved.listen_port = free_port();
  const std::string text = moved.render(port);
  needle->rewrite_config(text);
  needle->reload();
  ASSERT_TRUE(needle->wait_for_log("keeping the running configuration", scaled(milliseconds(3000))))
      << needle->operational_log();
  std::string line = log_line_with(needle->operational_log(), "listener[0].address");
  EXPECT_NE(line.find(file + ":" + std::to_string(line_of(text, "[[listener]]") + 1) + ":"),
            std::string::npos)
      << line;
  EXPECT_NE(line.find("restart"), std::string::npos) << line;
  auto r = get(needle->port(), "/");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "blue\n");
  EXPECT_EQ(green.requests_received(), 0u);
  EXPECT_FALSE(get(moved.listen_port, "/", {}, milliseconds(300)).has_value());

  // The worker count.
  Layout more_workers = layout;
  more_workers.workers = 2;
  more_workers.upstream_port = green.port();
  const std::string workers_text = more_workers.render(port);
  needle->rewrite_config(workers_text);
  needle->reload();
  ASSERT_TRUE(needle->wait_for_log("server.workers", scaled(milliseconds(3000))))
      << needle->operational_log();
  line = log_line_with(needle->operational_log(), "server.workers");
  EXPECT_NE(line.find(file + ":" + std::to_string(line_of(workers_text, "workers =")) + ":"),
            std::string::npos)
      << line;
  r = get(needle->port(), "/");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "blue\n");
  EXPECT_EQ(count_of(needle->operational_log(), "reloaded"), 0u);

  // The same change with the listener and workers as they run is applied.
  Layout switched = layout;
  switched.upstream_port = green.port();
  needle->rewrite_config(switched.render(port));
  needle->reload();
  ASSERT_TRUE(needle->wait_for_log("reloaded", scaled(milliseconds(3000))));
  r = get(needle->port(), "/");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "green\n");
}

}  // namespace
}  // namespace needle::test
