// Upgrade tunnels end to end (docs/architecture.md "Upgrade tunnels"): the real needle in front
// of a WebSocket server on the `ws` npm package (tests/support/ws/ws_upstream.js), driven by
// python3-websockets (tests/support/ws/ws_client.py), the `ws` client, and raw sockets where a
// test needs exact bytes or an abrupt close.
#include <sys/wait.h>

#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <memory>
#include <string>
#include <thread>

#include "integration/proxy_harness.h"
#include "support/child_process.h"
#include "support/express_fixture.h"
#include "support/free_port.h"
#include "support/http_client.h"

namespace needle::test::proxy {
namespace {

using namespace std::chrono_literals;

std::filesystem::path ws_support_dir() {
  return std::filesystem::path(NEEDLE_SOURCE_DIR) / "tests" / "support" / "ws";
}

// The WebSocket upstream, shared by the tests of this file (it keeps no state they depend on).
class WsUpstream {
 public:
  WsUpstream() {
    ensure_example_app_dependencies();  // examples/app's node_modules holds `ws`
    started_ = start_on_free_port(
        [this](int port) {
          ChildOptions options;
          options.name = "ws-upstream";
          options.output_dir = dir_.path();
          options.argv = {"node", (ws_support_dir() / "ws_upstream.js").string(),
                          std::to_string(port)};
          options.env = {{"NODE_PATH", (example_app_dir() / "node_modules").string()}};
          return options;
        },
        20s);
  }
  int port() const { return started_.port; }
  // {"upgrades": n, "open": n} from GET /stats; -1 when unreadable.
  int open_tunnels() const {
    auto response = get(started_.port, "/stats");
    if (!response) return -1;
    const std::string open = json_field(response->body, "open");
    return open.empty() ? -1 : std::stoi(open);
  }

 private:
  TempDir dir_{"needle-ws-upstream"};
  StartedServer started_;
};

struct ClientRun {
  std::optional<int> exit_code;
  std::string out;
  std::string err;
};

// A client process (python3-websockets or node ws) that the test waits for or watches.
class WsClient {
 public:
  explicit WsClient(std::vector<std::string> argv) {
    ChildOptions options;
    options.name = "ws-client";
    options.output_dir = dir_.path();
    options.argv = std::move(argv);
    options.env = {{"NODE_PATH", (example_app_dir() / "node_modules").string()}};
    process_ = std::make_unique<ChildProcess>(options);
  }
  static WsClient python(const std::vector<std::string>& args) {
    std::vector<std::string> argv{"/usr/bin/python3", (ws_support_dir() / "ws_client.py").string()};
    argv.insert(argv.end(), args.begin(), args.end());
    return WsClient(std::move(argv));
  }
  ClientRun wait(std::chrono::milliseconds timeout) {
    ClientRun run;
    auto status = process_->wait_exit(scaled(timeout));
    if (status && WIFEXITED(*status)) run.exit_code = WEXITSTATUS(*status);
    run.out = process_->stdout_text();
    run.err = process_->stderr_text();
    return run;
  }
  bool wait_for_output(std::string_view text, std::chrono::milliseconds timeout) {
    return eventually([&] { return process_->stdout_text().find(text) != std::string::npos; },
                      timeout);
  }
  std::string out() const { return process_->stdout_text(); }
  std::string err() const { return process_->stderr_text(); }

 private:
  TempDir dir_{"needle-ws-client"};
  std::unique_ptr<ChildProcess> process_;
};

class WebSocketTunnel : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { upstream_ = std::make_unique<WsUpstream>(); }
  static void TearDownTestSuite() { upstream_.reset(); }

  std::unique_ptr<NeedleProcess> start(std::string server_extra = {}, int admin_port = 0) {
    ConfigSpec spec;
    spec.server_extra = std::move(server_extra);
    spec.clusters.push_back(ClusterSpec{"app", {upstream_->port()}, {}});
    spec.admin_port = admin_port;
    return start_needle(spec);
  }
  static std::string url(const NeedleProcess& needle, std::string_view path) {
    return "ws://127.0.0.1:" + std::to_string(needle.port()) + std::string(path);
  }
  // The access-log line of the tunnel (status 101), once written.
  static std::string tunnel_line(const NeedleProcess& needle, milliseconds timeout = 5000ms) {
    std::string found;
    eventually(
        [&] {
          for (const auto& line : needle.access_log_lines()) {
            if (json_field(line, "status") == "101") found = line;
          }
          return !found.empty();
        },
        timeout);
    return found;
  }

  static std::unique_ptr<WsUpstream> upstream_;
};
std::unique_ptr<WsUpstream> WebSocketTunnel::upstream_;

const std::vector<std::pair<std::string, std::string>> kUpgradeHeaders = {
    {"Connection", "Upgrade"},
    {"Upgrade", "websocket"},
    {"Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="},
    {"Sec-WebSocket-Version", "13"}};

TEST_F(WebSocketTunnel, EchoesTextAndBinaryFramesForPythonWebsockets) {
  auto needle = start();
  ClientRun run = WsClient::python({"echo", url(*needle, "/echo")}).wait(20s);
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err << needle->operational_log();
  EXPECT_NE(run.out.find("echo ok"), std::string::npos);
  const std::string line = tunnel_line(*needle);
  ASSERT_FALSE(line.empty()) << needle->access_log();
  EXPECT_EQ(json_field(line, "cause"), "none") << line;
  // The client's close frame is answered by ws, which then ends the TCP connection first
  // (RFC 6455 7.1.1: the server closes the TCP connection).
  EXPECT_EQ(json_field(line, "closed_by"), "upstream") << line;
  EXPECT_GT(std::stoull(json_field(line, "bytes_from_client")), 1024u) << line;
  EXPECT_GT(std::stoull(json_field(line, "bytes_to_client")), 1024u) << line;
}

TEST_F(WebSocketTunnel, EchoesForTheWsClient) {
  auto needle = start();
  WsClient client({"node", (ws_support_dir() / "ws_client.js").string(), url(*needle, "/echo")});
  ClientRun run = client.wait(20s);
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err;
  EXPECT_NE(run.out.find("echo ok"), std::string::npos) << run.out;
}

TEST_F(WebSocketTunnel, RelaysASixteenMiBMessageBothWays) {
  auto needle = start();
  ClientRun run = WsClient::python({"big", url(*needle, "/echo"), "16777216"}).wait(60s);
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err;
  const std::string line = tunnel_line(*needle);
  EXPECT_GT(std::stoull(json_field(line, "bytes_from_client")), 16777216u) << line;
  EXPECT_GT(std::stoull(json_field(line, "bytes_to_client")), 16777216u) << line;
}

TEST_F(WebSocketTunnel, BytesBehindThe101ReachTheClient) {
  // ws sends "hello" right behind its 101: whatever arrives with the head is tunnel data.
  auto needle = start();
  HttpClient client;
  ASSERT_TRUE(client.connect(needle->port()));
  auto response = client.get("/hello", kUpgradeHeaders);
  ASSERT_TRUE(response) << to_string(client.last_error());
  EXPECT_EQ(response->status, 101);
  EXPECT_EQ(response->headers.get("Upgrade"), "websocket");
  EXPECT_EQ(response->headers.get("Sec-WebSocket-Accept"), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
  EXPECT_TRUE(response->headers.get("Connection").find("pgrade") != std::string::npos);
  // An unmasked text frame from the server: 0x81, length 5, "hello".
  if (client.buffered() < 7) client.closed_by_peer(2000ms);
  EXPECT_GE(client.buffered(), 7u);
}

TEST_F(WebSocketTunnel, UpstreamRefusalIsRelayedAndTheClientConnectionGoesOn) {
  auto needle = start();
  HttpClient client;
  ASSERT_TRUE(client.connect(needle->port()));
  auto refused = client.get("/refuse", kUpgradeHeaders);
  ASSERT_TRUE(refused) << to_string(client.last_error());
  EXPECT_EQ(refused->status, 400);
  EXPECT_EQ(refused->body, "refused\n");
  EXPECT_FALSE(refused->headers.has("Upgrade"));
  ASSERT_TRUE(refused->keep_alive) << refused->raw;
  auto next = client.get("/next");
  ASSERT_TRUE(next) << to_string(client.last_error());
  EXPECT_EQ(next->status, 200);
  EXPECT_EQ(next->body, "plain /next\n");
}

TEST_F(WebSocketTunnel, UpstreamClosingMidTunnelClosesTheClient) {
  auto needle = start();
  HttpClient client;
  ASSERT_TRUE(client.connect(needle->port()));
  auto response = client.get("/close-mid", kUpgradeHeaders);
  ASSERT_TRUE(response && response->status == 101);
  // A masked text frame "x" (RFC 6455 5.2): the upstream destroys its socket on it.
  ASSERT_TRUE(client.send_raw(std::string("\x81\x81\x01\x02\x03\x04", 6) + char('x' ^ 0x01)));
  EXPECT_EQ(client.closed_by_peer(5000ms), PeerClose::eof);
  // The upstream's FIN came through as a FIN; the client's direction stays open (half-close)
  // until the client closes too, as a browser does on a FIN.
  client.close();
  const std::string line = tunnel_line(*needle);
  EXPECT_EQ(json_field(line, "closed_by"), "upstream") << line;
}

TEST_F(WebSocketTunnel, ClientClosingMidTunnelClosesTheUpstream) {
  auto needle = start();
  const int before = upstream_->open_tunnels();
  {
    HttpClient client;
    ASSERT_TRUE(client.connect(needle->port()));
    auto response = client.get("/echo", kUpgradeHeaders);
    ASSERT_TRUE(response && response->status == 101);
    EXPECT_TRUE(eventually([&] { return upstream_->open_tunnels() == before + 1; }, 3000ms));
    client.close();  // a TCP close without a close frame
  }
  EXPECT_TRUE(eventually([&] { return upstream_->open_tunnels() == before; }, 5000ms));
  const std::string line = tunnel_line(*needle);
  EXPECT_EQ(json_field(line, "closed_by"), "client") << line;
}

TEST_F(WebSocketTunnel, ClientFinIsRelayedAsAFin) {
  // Half-close: the client's FIN reaches ws as a FIN (shutdown(send) on the upstream side), ws
  // ends its side in turn, and that FIN comes back. The unit tests (TunnelTest) keep the other
  // direction flowing after a FIN, which ws does not do.
  auto needle = start();
  HttpClient client;
  ASSERT_TRUE(client.connect(needle->port()));
  auto response = client.get("/echo", kUpgradeHeaders);
  ASSERT_TRUE(response && response->status == 101);
  client.shutdown_write();
  EXPECT_EQ(client.closed_by_peer(5000ms), PeerClose::eof);
  const std::string line = tunnel_line(*needle);
  EXPECT_EQ(json_field(line, "closed_by"), "client") << line;
}

TEST_F(WebSocketTunnel, IdleTunnelClosesAtTunnelIdleTimeout) {
  auto needle = start("tunnel_idle_timeout = \"600ms\"");
  ClientRun run = WsClient::python({"hold", url(*needle, "/echo"), "quiet"}).wait(20s);
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err;
  const size_t at = run.out.find("closed after ");
  ASSERT_NE(at, std::string::npos) << run.out;
  const long ms = std::stol(run.out.substr(at + 13));
  EXPECT_GE(ms, 500);
  EXPECT_LT(ms, scaled(5000ms).count());
  const std::string line = tunnel_line(*needle);
  EXPECT_EQ(json_field(line, "closed_by"), "idle_timeout") << line;
}

TEST_F(WebSocketTunnel, SigtermLeavesTunnelsOpenUntilDrainTimeout) {
  auto needle = start("drain_timeout = \"1500ms\"");
  WsClient client = WsClient::python({"hold", url(*needle, "/echo")});
  ASSERT_TRUE(client.wait_for_output("connected", 10000ms)) << client.err();
  const auto sent = Clock::now();
  needle->terminate(SIGTERM);
  ClientRun run = client.wait(20s);
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err;
  const auto closed_after = Clock::now() - sent;
  // The client kept echoing through the tunnel (one tick every 100 ms) until the drain timeout.
  EXPECT_GE(closed_after, 1300ms) << run.out;
  ASSERT_TRUE(needle->wait_exit(scaled(5000ms)).has_value());
  const std::string line = tunnel_line(*needle, 1000ms);
  EXPECT_EQ(json_field(line, "closed_by"), "drain") << needle->access_log();
}

TEST_F(WebSocketTunnel, OverTheTunnelLimitAnUpgradeGets503) {
  auto needle = start("max_tunnels_per_worker = 1");
  HttpClient first;
  ASSERT_TRUE(first.connect(needle->port()));
  auto opened = first.get("/echo", kUpgradeHeaders);
  ASSERT_TRUE(opened && opened->status == 101);
  auto refused = get(needle->port(), "/echo", kUpgradeHeaders);
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 503);
  EXPECT_NE(refused->body.find("max_tunnels_per_worker"), std::string::npos) << refused->body;
  auto lines = wait_log_lines(*needle, 1);
  ASSERT_FALSE(lines.empty());
  EXPECT_EQ(json_field(lines.back(), "cause"), "tunnel_limit") << lines.back();
  auto plain = get(needle->port(), "/plain");  // plain requests need no slot
  ASSERT_TRUE(plain);
  EXPECT_EQ(plain->status, 200);
}

TEST_F(WebSocketTunnel, ARouteWithoutTheTokenForwardsPlainHttp) {
  ConfigSpec spec;
  spec.clusters.push_back(ClusterSpec{"app", {upstream_->port()}, {}});
  auto needle = NeedleProcess::start([&](int port) {
    std::string toml = spec.render(port);
    const std::string route = "cluster = \"app\"\n";
    toml.insert(toml.find(route) + route.size(), "upgrade = []\n");
    return toml;
  });
  auto response = get(needle->port(), "/echo", kUpgradeHeaders);
  ASSERT_TRUE(response);
  // Without Upgrade the ws server's plain handler answers.
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->body, "plain /echo\n");
}

// 1,000 tunnels on one worker: each costs two descriptors while open, and the descriptors and
// the memory go back once they close.
TEST_F(WebSocketTunnel, AThousandTunnelsOnOneWorkerAndBackToBaseline) {
  constexpr int kTunnels = 1000;
  const int admin = free_port();
  auto needle = start({}, admin);
  const pid_t pid = needle->process().pid();
  // Warm up: one tunnel through every code path, so lazily built state is in the baseline.
  ASSERT_EQ(WsClient::python({"echo", url(*needle, "/echo")}).wait(20s).exit_code, 0);
  std::this_thread::sleep_for(600ms);  // a park sweep gives spare buffers back
  const int fds_before = fd_count(pid);
  const long rss_before = rss_kib(pid);

  TempDir flag_dir("needle-ws-flag");
  const auto flag = flag_dir.file("release");
  WsClient client = WsClient::python({"many", url(*needle, "/echo"), std::to_string(kTunnels),
                                      flag.string()});
  ASSERT_TRUE(client.wait_for_output("opened", 120000ms)) << client.err();
  const int fds_open = fd_count(pid);
  const long rss_open = rss_kib(pid);
  EXPECT_GE(fds_open, fds_before + 2 * kTunnels);
  auto metrics = get(admin, "/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_NE(metrics->body.find("needle_tunnels_active " + std::to_string(kTunnels)),
            std::string::npos);

  write_text_file(flag, "go");
  ClientRun run = client.wait(60s);
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err;
  EXPECT_TRUE(eventually([&] { return fd_count(pid) <= fds_before; }, 10000ms))
      << fd_count(pid) << " fds, " << fds_before << " before";
  // Every tunnel's memory goes back (jemalloc returns freed pages after about a second,
  // base/heap_release.cc): what stays is well under what the tunnels held. Only with jemalloc:
  // a sanitizer build runs on its own allocator, whose quarantine keeps freed memory.
  const long bound = (rss_open - rss_before) / 4 + 2048;
  if (needle->operational_log().find("malloc jemalloc") != std::string::npos) {
    EXPECT_TRUE(eventually([&] { return rss_kib(pid) - rss_before < bound; }, 8000ms))
        << "RSS KiB before " << rss_before << ", open " << rss_open << ", now " << rss_kib(pid);
  }
  const long rss_after = rss_kib(pid);
  metrics = get(admin, "/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_NE(metrics->body.find("needle_tunnels_active 0"), std::string::npos);
  std::cout << "[ measured ] " << kTunnels << " tunnels: fds " << fds_before << " -> " << fds_open
            << " -> " << fd_count(pid) << ", RSS KiB " << rss_before << " -> " << rss_open
            << " -> " << rss_after << "\n";
}

}  // namespace
}  // namespace needle::test::proxy
