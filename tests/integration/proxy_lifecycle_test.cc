// needle as a process: graceful SIGTERM drain with a request in flight, `needle check`, the
// command-line quick mode, and the admin endpoint.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <string>
#include <thread>

#include "proxy_harness.h"
#include "support/child_process.h"
#include "support/scripted_upstream.h"

namespace needle::test {
namespace {

using namespace proxy;

// Every request is answered 200 with `body`, `delay` after it arrived.
ConnectionScript answers_after(milliseconds delay, std::string body) {
  ConnectionScript script;
  script.otherwise = ScriptedStep::respond(200, std::move(body));
  script.otherwise.delay = delay;
  return script;
}

TEST(ProxyShutdown, SigtermFinishesTheInFlightRequestWithConnectionClose) {
  ScriptedUpstream upstream(answers_after(milliseconds(500), "finished\n"));
  auto needle = start_needle_for(upstream.port(), "drain_timeout = \"5s\"\n");
  HttpClient client;
  ASSERT_TRUE(client.connect(needle->port()));
  ASSERT_TRUE(client.send_raw(HttpClient::format_request("GET", "/inflight", {}, {}, 0)));
  ASSERT_TRUE(upstream.wait_for_requests(1, milliseconds(2000)));
  const auto signalled = Clock::now();
  needle->terminate(SIGTERM);
  auto r = client.read_response(milliseconds(3000));
  ASSERT_TRUE(r.has_value()) << to_string(client.last_error());
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "finished\n");
  EXPECT_EQ(r->headers.get("connection"), "close");
  EXPECT_EQ(client.closed_by_peer(milliseconds(2000)), PeerClose::eof);
  auto status = needle->wait_exit(milliseconds(5000));
  ASSERT_TRUE(status.has_value()) << "needle still running after the drain timeout";
  EXPECT_TRUE(WIFEXITED(*status)) << describe_wait_status(status);
  EXPECT_EQ(WEXITSTATUS(*status), 0);
  EXPECT_LT(std::chrono::duration_cast<milliseconds>(Clock::now() - signalled).count(), 5000);
  EXPECT_NE(needle->access_log().find("/inflight"), std::string::npos) << needle->access_log();
}

// The drain timeout ends requests that do not finish: the worker stops with their sessions and
// exchanges still suspended, and destroying them must not touch the worker state they point to
// (under ASan a use-after-free here fails the run; in release it can crash at exit).
TEST(ProxyShutdown, DrainTimeoutWithStuckRequestsExitsCleanly) {
  ScriptedUpstream upstream(answers_after(milliseconds(10000), "too late\n"));
  auto needle = start_needle_for(upstream.port(), "drain_timeout = \"300ms\"\n");
  std::vector<std::unique_ptr<HttpClient>> clients;
  for (int i = 0; i < 3; ++i) {
    auto client = std::make_unique<HttpClient>();
    ASSERT_TRUE(client->connect(needle->port()));
    ASSERT_TRUE(client->send_raw(HttpClient::format_request("GET", "/stuck", {}, {}, 0)));
    clients.push_back(std::move(client));
  }
  HttpClient idle;  // and one idle keep-alive client, mid-wait for its next request
  ASSERT_TRUE(idle.connect(needle->port()));
  ASSERT_TRUE(upstream.wait_for_requests(3, milliseconds(3000)));
  needle->terminate(SIGTERM);
  auto status = needle->wait_exit(milliseconds(5000));
  ASSERT_TRUE(status.has_value()) << "needle still running well after the drain timeout";
  EXPECT_TRUE(WIFEXITED(*status)) << describe_wait_status(status);
  EXPECT_EQ(WEXITSTATUS(*status), 0) << describe_wait_status(status);
  for (auto& client : clients) {
    EXPECT_NE(client->closed_by_peer(milliseconds(2000)), PeerClose::still_open);
  }
}

// The keep-alive park (proxy/keepalive_park.h), seen from outside: /metrics counts the client as
// parked once it idled past the sweep period, and its next request on the same connection is
// served as if it had never left its session; through a SIGTERM drain a parked client keeps its
// connection until its next response, which carries Connection: close.
std::optional<std::string> client_connections(int admin, std::string_view state) {
  auto m = get(admin, "/metrics");
  if (!m || m->status != 200) return std::nullopt;
  const std::string series = "needle_client_connections{state=\"" + std::string(state) + "\"} ";
  const size_t at = m->body.find(series);
  if (at == std::string::npos) return std::nullopt;
  const size_t begin = at + series.size();
  return m->body.substr(begin, m->body.find('\n', begin) - begin);
}

// An idle client (still in its session, or parked) is not closed by SIGTERM: closing it would
// race a request it may be sending (docs/architecture.md "Reload and shutdown"). Its next
// request is answered with Connection: close, and needle exits 0 as soon as it is gone, long
// before its drain timeout.
void expect_sigterm_closes_idle_client(bool wait_until_parked) {
  ScriptedUpstream upstream;
  ConfigSpec spec;
  spec.admin_port = free_port();
  spec.server_extra = "drain_timeout = \"5s\"\n";
  spec.clusters.push_back(ClusterSpec{"app", {upstream.port()}, ""});
  auto needle = start_needle(spec);
  HttpClient client;
  ASSERT_TRUE(client.connect(needle->port()));
  ASSERT_TRUE(client.get("/").has_value());
  if (wait_until_parked) {
    ASSERT_TRUE(eventually([&] { return client_connections(spec.admin_port, "parked") == "1"; },
                           milliseconds(3000)));
  }
  const auto signalled = Clock::now();
  needle->terminate(SIGTERM);
  EXPECT_EQ(client.closed_by_peer(milliseconds(300)), PeerClose::still_open);
  EXPECT_TRUE(needle->process().running());
  auto last = client.get("/after-sigterm");
  ASSERT_TRUE(last.has_value()) << to_string(client.last_error());
  EXPECT_EQ(last->status, 200);
  EXPECT_EQ(last->headers.get("connection"), "close");
  EXPECT_EQ(client.closed_by_peer(milliseconds(2000)), PeerClose::eof);
  auto status = needle->wait_exit(milliseconds(3000));
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << describe_wait_status(status);
  EXPECT_LT(std::chrono::duration_cast<milliseconds>(Clock::now() - signalled).count(), 2000);
}

TEST(ProxyShutdown, SigtermAnswersAnIdleClientOnceWithConnectionCloseAndExitsPromptly) {
  expect_sigterm_closes_idle_client(false);
}

TEST(ProxyKeepAlivePark, SigtermAnswersAParkedClientOnceWithConnectionCloseAndExitsPromptly) {
  expect_sigterm_closes_idle_client(true);
}

struct CommandResult {
  int exit_code = -1;
  std::string out, err;
};

CommandResult run_needle(std::vector<std::string> args, const TempDir& dir) {
  ChildOptions options;
  options.argv = {NEEDLE_BINARY_PATH};
  options.argv.insert(options.argv.end(), args.begin(), args.end());
  options.output_dir = dir.path();
  options.name = "needle-cli";
  ChildProcess child(options);
  CommandResult result;
  auto status = child.wait_exit(milliseconds(5000));
  if (status && WIFEXITED(*status)) result.exit_code = WEXITSTATUS(*status);
  result.out = child.stdout_text();
  result.err = child.stderr_text();
  return result;
}

TEST(ProxyCli, CheckReportsFileLineAndKey) {
  TempDir dir;
  const auto path = dir.file("broken.toml");
  write_text_file(path,
                  "[server]\n"
                  "workers = 1\n"
                  "[[listener]]\n"
                  "address = \"127.0.0.1:18080\"\n"
                  "[[route]]\n"
                  "path_prefix = \"/\"\n"
                  "cluster = \"app\"\n"
                  "[cluster.app]\n"
                  "hosts = [\"127.0.0.1:3000\"]\n"
                  "conect_timeout = \"5s\"\n");
  auto result = run_needle({"check", "-c", path.string()}, dir);
  EXPECT_EQ(result.exit_code, 1) << result.out << result.err;
  EXPECT_NE(result.err.find("broken.toml:10:"), std::string::npos) << result.err;
  EXPECT_NE(result.err.find("cluster.app.conect_timeout"), std::string::npos) << result.err;
  EXPECT_NE(result.err.find("connect_timeout"), std::string::npos) << result.err;  // suggestion
}

TEST(ProxyCli, CheckAcceptsTheExample) {
  TempDir dir;
  auto result = run_needle(
      {"check", "-c", std::string(NEEDLE_SOURCE_DIR) + "/examples/needle.toml"}, dir);
  EXPECT_EQ(result.exit_code, 0) << result.out << result.err;
}

TEST(ProxyCli, QuickModeProxiesWithoutAConfigFile) {
  ScriptedUpstream upstream;
  TempDir dir;
  StartedServer server = start_on_free_port(
      [&](int port) {
        ChildOptions options;
        options.argv = {NEEDLE_BINARY_PATH, "run", "--listen", "127.0.0.1:" + std::to_string(port),
                        "--upstream", "127.0.0.1:" + std::to_string(upstream.port()),
                        "--workers", "1", "--admin", "off"};
        options.output_dir = dir.path();
        options.name = "needle-quick";
        return options;
      },
      milliseconds(10000));
  auto r = get(server.port, "/quick");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "ok\n");
  ASSERT_EQ(upstream.requests_received(), 1u);
  EXPECT_EQ(upstream.requests()[0].target, "/quick");
}

TEST(ProxyAdmin, HealthzMetricsAndPools) {
  ScriptedUpstream upstream;
  const int dead_port = free_port();
  ConfigSpec spec;
  spec.admin_port = free_port();
  spec.routes = {RouteSpec{"", "/dead/", "dead"}, RouteSpec{"", "/", "app"}};
  spec.clusters = {ClusterSpec{"app", {upstream.port()}, ""},
                   ClusterSpec{"dead", {dead_port}, ""}};
  auto needle = start_needle(spec);
  const int admin = spec.admin_port;

  auto health = get(admin, "/healthz");
  ASSERT_TRUE(health.has_value());
  EXPECT_EQ(health->status, 200);

  auto ok = get(needle->port(), "/fine");
  ASSERT_TRUE(ok.has_value());
  EXPECT_EQ(ok->status, 200);
  auto refused = get(needle->port(), "/dead/x");
  ASSERT_TRUE(refused.has_value());
  EXPECT_EQ(refused->status, 502);

  std::string metrics;
  const bool seen = eventually(
      [&] {
        auto m = get(admin, "/metrics");
        if (!m || m->status != 200) return false;
        metrics = m->body;
        return metrics.find("needle_upstream_failures_total{") != std::string::npos &&
               metrics.find("cause=\"connect_refused\"") != std::string::npos;
      },
      milliseconds(3000));
  EXPECT_TRUE(seen) << metrics;
  EXPECT_NE(metrics.find("needle_requests_total{"), std::string::npos) << metrics;
  // The failure line itself carries the cause label.
  bool failure_line = false;
  for (size_t at = metrics.find("needle_upstream_failures_total{"); at != std::string::npos;
       at = metrics.find("needle_upstream_failures_total{", at + 1)) {
    const std::string line = metrics.substr(at, metrics.find('\n', at) - at);
    if (line.find("cause=\"connect_refused\"") != std::string::npos) failure_line = true;
  }
  EXPECT_TRUE(failure_line) << metrics;

  auto pools = get(admin, "/pools");
  ASSERT_TRUE(pools.has_value());
  EXPECT_EQ(pools->status, 200);
  EXPECT_NE(pools->headers.get("content-type").find("json"), std::string::npos);
  EXPECT_NE(pools->body.find("127.0.0.1:" + std::to_string(upstream.port())), std::string::npos)
      << pools->body;
  EXPECT_NE(pools->body.find("127.0.0.1:" + std::to_string(dead_port)), std::string::npos)
      << pools->body;
}

TEST(ProxyKeepAlivePark, IdleClientIsParkedAndItsNextRequestIsServed) {
  ScriptedUpstream upstream;
  ConfigSpec spec;
  spec.admin_port = free_port();
  spec.clusters.push_back(ClusterSpec{"app", {upstream.port()}, ""});
  auto needle = start_needle(spec);
  HttpClient client;
  ASSERT_TRUE(client.connect(needle->port()));
  auto first = client.get("/first");
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->status, 200);
  // Parked within two sweep periods (500 ms) of going idle.
  EXPECT_TRUE(eventually([&] { return client_connections(spec.admin_port, "parked") == "1"; },
                         milliseconds(3000)))
      << client_connections(spec.admin_port, "parked").value_or("no series");
  auto second = client.get("/second");
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(second->status, 200);
  EXPECT_TRUE(second->keep_alive);
  ASSERT_EQ(upstream.requests_received(), 2u);
  EXPECT_EQ(upstream.requests()[1].target, "/second");
  // Forwarding facts survive the park: the upstream sees the same client address.
  EXPECT_EQ(upstream.requests()[1].headers.get("x-forwarded-for"), "127.0.0.1");
  EXPECT_EQ(client_connections(spec.admin_port, "session"), "1");
  auto third = client.get("/third");  // and the resumed session serves keep-alive as usual
  ASSERT_TRUE(third.has_value());
  EXPECT_EQ(third->status, 200);
}

TEST(ProxyKeepAlivePark, ParkedClientClosesAtItsIdleTimeout) {
  ScriptedUpstream upstream;
  auto needle = start_needle_for(upstream.port(), "client_idle_timeout = \"1200ms\"\n");
  HttpClient client;
  ASSERT_TRUE(client.connect(needle->port()));
  ASSERT_TRUE(client.get("/").has_value());
  const auto idle_since = Clock::now();
  EXPECT_EQ(client.closed_by_peer(milliseconds(3000)), PeerClose::eof);
  const auto waited = std::chrono::duration_cast<milliseconds>(Clock::now() - idle_since).count();
  // Parked after 250-500 ms; the park's own timer closes it at the session's deadline.
  EXPECT_GE(waited, 1150);
  EXPECT_LE(waited, 1700);
}

}  // namespace
}  // namespace needle::test
