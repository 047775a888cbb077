// needle doctor against real peers on 127.0.0.1: a scripted upstream that closes idle
// connections at exactly 700 ms (FIN, then RST), a real nginx with `keepalive_timeout 2s;`, and
// the Express app of the 502 story (Node's default keep-alive). The doctor runs in-process
// through diagnose_target()/run_doctor(), and once through the real binary with --json.
#include <sys/wait.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <regex>
#include <string>
#include <thread>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "doctor/doctor_command.h"
#include "support/child_process.h"
#include "support/free_port.h"
#include "support/scripted_upstream.h"

namespace needle::doctor {
namespace {

using namespace std::chrono_literals;
using test::ChildOptions;
using test::ChildProcess;
using test::CloseHow;
using test::ConnectionScript;
using test::ScriptedUpstream;
using test::TempDir;

// "within 10% or 50 ms", whichever is larger.
Millis tolerance_for(Millis expected) {
  return std::max(Millis(50), expected / 10);
}

#define EXPECT_NEAR_MS(actual, expected)                                                      \
  EXPECT_LE(std::chrono::abs((actual) - (expected)).count(), tolerance_for(expected).count()) \
      << "measured " << (actual).count() << " ms, expected " << (expected).count() << " ms"

std::string url_for(int port, std::string_view path = "/") {
  return fmt::format("http://127.0.0.1:{}{}", port, path);
}

DoctorOptions options_for(int port, Millis max_wait, std::string_view path = "/") {
  DoctorOptions o;
  o.url = url_for(port, path);
  o.max_wait = max_wait;
  o.probes = 4;
  return o;
}

// A real nginx serving `return 200` with the given keepalive_timeout, everything (pid, logs,
// temp paths) inside a temp dir, in the foreground (daemon off), on a free port.
class Nginx {
 public:
  explicit Nginx(std::string keepalive_timeout) {
    for (int attempt = 0; attempt < 5; ++attempt) {
      port_ = test::free_port();
      const auto dir = temp_.path().string();
      test::write_text_file(temp_.file("nginx.conf"), fmt::format(R"(
pid {0}/nginx.pid;
error_log {0}/error.log;
worker_processes 1;
events {{ worker_connections 64; }}
http {{
  access_log off;
  client_body_temp_path {0}/client_body;
  proxy_temp_path {0}/proxy;
  fastcgi_temp_path {0}/fastcgi;
  uwsgi_temp_path {0}/uwsgi;
  scgi_temp_path {0}/scgi;
  keepalive_timeout {2};
  server {{
    listen 127.0.0.1:{1};
    location / {{ return 200 "hello from nginx\n"; }}
  }}
}}
)",
                                                                  dir, port_, keepalive_timeout));
      ChildOptions o;
      o.argv = {"/usr/sbin/nginx",   "-p", dir,          "-e", dir + "/error.log", "-c",
                dir + "/nginx.conf", "-g", "daemon off;"};
      o.output_dir = temp_.path();
      o.name = fmt::format("nginx{}", attempt);
      child_ = std::make_unique<ChildProcess>(o);
      if (test::wait_for_port(port_, 5s, child_.get())) return;
      description_ = child_->describe() + "\n" + test::read_text_file(temp_.file("error.log"));
      child_.reset();
    }
  }
  bool running() const { return child_ != nullptr; }
  int port() const { return port_; }
  const std::string& failure() const { return description_; }

 private:
  TempDir temp_{"needle-doctor-nginx"};
  int port_ = 0;
  std::unique_ptr<ChildProcess> child_;
  std::string description_;
};

// examples/app (Express, Node's default keep-alive) on a free port.
class ExpressApp {
 public:
  ExpressApp() {
    for (int attempt = 0; attempt < 5; ++attempt) {
      port_ = test::free_port();
      ChildOptions o;
      o.argv = {"node", std::string(NEEDLE_SOURCE_DIR) + "/examples/app/server.js"};
      o.env = {{"PORT", std::to_string(port_)}};
      o.output_dir = temp_.path();
      o.name = fmt::format("express{}", attempt);
      child_ = std::make_unique<ChildProcess>(o);
      if (test::wait_for_port(port_, 10s, child_.get())) return;
      description_ = child_->describe();
      child_.reset();
    }
  }
  bool running() const { return child_ != nullptr; }
  int port() const { return port_; }
  const std::string& failure() const { return description_; }

 private:
  TempDir temp_{"needle-doctor-express"};
  int port_ = 0;
  std::unique_ptr<ChildProcess> child_;
  std::string description_;
};

// The integer value of a JSON field, found by name (the binary's output is one flat-ish line).
std::optional<long long> json_number(const std::string& json, const std::string& key) {
  std::smatch m;
  if (!std::regex_search(json, m, std::regex("\"" + key + "\":(-?[0-9]+)"))) return std::nullopt;
  return std::stoll(m[1].str());
}
std::optional<std::string> json_string(const std::string& json, const std::string& key) {
  std::smatch m;
  if (!std::regex_search(json, m, std::regex("\"" + key + "\":\"([^\"]*)\""))) return std::nullopt;
  return m[1].str();
}

TEST(DoctorIntegration, ScriptedUpstreamFinAt700ms) {
  ScriptedUpstream upstream(ConnectionScript{}.close_when_idle(700ms, CloseHow::fin));
  DoctorOptions o = options_for(upstream.port(), 5s);
  o.proxy_idle_timeout = 1s;
  const auto started = std::chrono::steady_clock::now();
  const DoctorRun run = diagnose_target(o);
  const auto took = std::chrono::steady_clock::now() - started;
  ASSERT_TRUE(run.error.empty()) << run.error;
  ASSERT_TRUE(run.measurement && run.diagnosis);
  const Measurement& m = *run.measurement;
  const Diagnosis& d = *run.diagnosis;
  EXPECT_EQ(m.status, 200);
  EXPECT_FALSE(m.keep_alive_hint);
  EXPECT_FALSE(m.connection_close);
  ASSERT_EQ(m.samples.size(), 4u);
  for (const ProbeSample& s : m.samples) {
    ASSERT_TRUE(s.idle_close);
    EXPECT_EQ(s.kind, CloseKind::fin);
    EXPECT_NEAR_MS(*s.idle_close, 700ms);
  }
  EXPECT_EQ(d.close.kind, CloseKind::fin);
  EXPECT_NEAR_MS(*d.close.min, 700ms);
  EXPECT_NEAR_MS(*d.close.median, 700ms);
  EXPECT_EQ(upstream.connections_accepted(), 4u);
  EXPECT_EQ(upstream.idle_closes(), 4u);
  // The probes run in parallel: the whole run takes about one idle period, not four.
  EXPECT_LT(took, 2s);
  // A 1 s proxy idle timeout is above the 700 ms close: mismatch, exit 1.
  ASSERT_EQ(d.verdicts.size(), 1u);
  EXPECT_EQ(d.verdicts[0].kind, VerdictKind::mismatch);
  EXPECT_EQ(run.exit_status, 1);
  fmt::print("measured (FIN): min {} ms, median {} ms, max {} ms\n", d.close.min->count(),
             d.close.median->count(), d.close.max->count());
}

TEST(DoctorIntegration, ScriptedUpstreamRstAt700ms) {
  ScriptedUpstream upstream(ConnectionScript{}.close_when_idle(700ms, CloseHow::rst));
  DoctorOptions o = options_for(upstream.port(), 5s);
  o.proxy_idle_timeout = 500ms;
  const DoctorRun run = diagnose_target(o);
  ASSERT_TRUE(run.error.empty()) << run.error;
  const Diagnosis& d = *run.diagnosis;
  ASSERT_EQ(run.measurement->samples.size(), 4u);
  for (const ProbeSample& s : run.measurement->samples) {
    ASSERT_TRUE(s.idle_close);
    EXPECT_EQ(s.kind, CloseKind::rst);
  }
  EXPECT_EQ(d.close.kind, CloseKind::rst);
  EXPECT_NEAR_MS(*d.close.min, 700ms);
  // 500 ms is below the safe 600 ms: ok, exit 0 (through run_doctor, printing the report).
  EXPECT_EQ(d.verdicts[0].kind, VerdictKind::ok);
  EXPECT_EQ(run_doctor(o), 0);
  fmt::print("measured (RST): min {} ms, median {} ms\n", d.close.min->count(),
             d.close.median->count());
}

TEST(DoctorIntegration, NoIdleCloseWithinMaxWait) {
  ScriptedUpstream upstream;  // never closes idle connections
  DoctorOptions o = options_for(upstream.port(), 400ms);
  o.probes = 2;
  o.proxy_idle_timeout = 300ms;
  const DoctorRun run = diagnose_target(o);
  ASSERT_TRUE(run.error.empty()) << run.error;
  EXPECT_FALSE(run.diagnosis->close.min);
  EXPECT_EQ(run.diagnosis->close.open, 2u);
  EXPECT_EQ(run.diagnosis->verdicts[0].kind, VerdictKind::ok);
  EXPECT_EQ(run.exit_status, 0);
}

TEST(DoctorIntegration, ConnectionRefusedIsAProbeError) {
  const int port = test::free_port();  // nothing listens there
  DoctorOptions o = options_for(port, 1s);
  const DoctorRun run = diagnose_target(o);
  EXPECT_FALSE(run.measurement);
  EXPECT_NE(run.error.find("refused"), std::string::npos) << run.error;
  EXPECT_EQ(run.exit_status, 2);
  EXPECT_EQ(run_doctor(o), 2);
}

TEST(DoctorIntegration, ConfigComparesTheClusterThatListsTheProbedHost) {
  ScriptedUpstream upstream(ConnectionScript{}.close_when_idle(700ms, CloseHow::fin));
  TempDir dir("needle-doctor-config");
  test::write_text_file(dir.file("needle.toml"), fmt::format(R"(
[[listener]]
address = "127.0.0.1:{1}"

[[route]]
path_prefix = "/"
cluster = "app"

[[route]]
host = "other.example"
cluster = "other"

[cluster.app]
hosts = ["127.0.0.1:{0}"]
idle_timeout = "5s"

[cluster.other]
hosts = ["127.0.0.1:1"]
)",
                                                             upstream.port(), test::free_port()));
  DoctorOptions o = options_for(upstream.port(), 5s);
  o.config_path = dir.file("needle.toml").string();
  const DoctorRun run = diagnose_target(o);
  ASSERT_TRUE(run.error.empty()) << run.error;
  ASSERT_EQ(run.diagnosis->verdicts.size(), 1u);
  const Verdict& v = run.diagnosis->verdicts[0];
  EXPECT_EQ(v.proxy, "cluster app");
  // idle_timeout 5 s but the upstream closes at 700 ms: needle would reuse up to 4.5 s.
  EXPECT_EQ(v.kind, VerdictKind::mismatch);
  EXPECT_EQ(run.exit_status, 1);
  std::string fixes;
  for (const auto& f : v.fixes) fixes += f;
  // The advice is the measured close rounded down to 100 ms (700 ms, or 600 ms should the
  // probe see the close a hair early).
  std::smatch advice;
  ASSERT_TRUE(std::regex_search(
      fixes, advice, std::regex("idle_timeout = \"([0-9]+)ms\"` in \\[cluster\\.app\\]")))
      << fixes;
  EXPECT_TRUE(advice[1] == "700" || advice[1] == "600") << fixes;
}

TEST(DoctorIntegration, NginxKeepaliveTimeout2s) {
  Nginx nginx("2s");
  ASSERT_TRUE(nginx.running()) << nginx.failure();
  DoctorOptions o = options_for(nginx.port(), 10s);
  o.proxy_idle_timeout = 75s;
  const DoctorRun run = diagnose_target(o);
  ASSERT_TRUE(run.error.empty()) << run.error;
  const Measurement& m = *run.measurement;
  const Diagnosis& d = *run.diagnosis;
  EXPECT_EQ(m.status, 200);
  EXPECT_EQ(m.server.rfind("nginx", 0), 0u) << m.server;
  EXPECT_FALSE(m.keep_alive_hint) << "nginx sends a hint only with a second argument";
  ASSERT_EQ(d.close.closed, 4u);
  EXPECT_EQ(d.close.kind, CloseKind::fin);
  EXPECT_NEAR_MS(*d.close.min, 2000ms);
  EXPECT_NEAR_MS(*d.close.max, 2000ms);
  EXPECT_EQ(d.verdicts[0].kind, VerdictKind::mismatch);
  // nginx recognised from its Server header: the app-side fix names its own directive.
  EXPECT_NE(d.verdicts[0].fixes[1].find("nginx: `keepalive_timeout 84s;`"), std::string::npos)
      << d.verdicts[0].fixes[1];
  fmt::print("measured (nginx 2s): min {} ms, median {} ms, max {} ms\n", d.close.min->count(),
             d.close.median->count(), d.close.max->count());
}

TEST(DoctorIntegration, NginxThroughTheRealBinaryWithJson) {
  ASSERT_TRUE(std::filesystem::exists(NEEDLE_BINARY_PATH)) << NEEDLE_BINARY_PATH;
  Nginx nginx("2s");
  ASSERT_TRUE(nginx.running()) << nginx.failure();
  TempDir dir("needle-doctor-binary");
  test::write_text_file(dir.file("needle.toml"), fmt::format(R"(
[[listener]]
address = "127.0.0.1:{1}"

[[route]]
path_prefix = "/"
cluster = "web"

[cluster.web]
hosts = ["127.0.0.1:{0}"]
)",
                                                             nginx.port(), test::free_port()));
  ChildOptions co;
  co.argv = {NEEDLE_BINARY_PATH,
             "doctor",
             url_for(nginx.port()),
             "--proxy-idle-timeout",
             "60s",
             "-c",
             dir.file("needle.toml").string(),
             "--json",
             "--max-wait",
             "10s"};
  co.output_dir = dir.path();
  co.name = "doctor";
  ChildProcess doctor(co);
  const auto status = doctor.wait_exit(15s);
  ASSERT_TRUE(status) << "needle doctor still running after 15 s";
  ASSERT_TRUE(WIFEXITED(*status)) << doctor.describe();
  EXPECT_EQ(WEXITSTATUS(*status), 1) << doctor.stdout_text() << doctor.stderr_text();
  const std::string json = doctor.stdout_text();
  ASSERT_EQ(json.front(), '{') << json;
  EXPECT_EQ(json_number(json, "status"), 200);
  EXPECT_EQ(json_string(json, "kind"), "FIN");  // idle_close.kind comes first
  EXPECT_NE(json.find("\"keep_alive_hint_ms\":null"), std::string::npos) << json;
  const auto min_ms = json_number(json, "min_ms");
  ASSERT_TRUE(min_ms) << json;
  EXPECT_NEAR_MS(Millis(*min_ms), 2000ms);
  // Both comparisons: the 60 s proxy (mismatch) and cluster web without idle_timeout (adapts).
  EXPECT_NE(json.find("\"proxy\":\"--proxy-idle-timeout 60s\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"proxy\":\"cluster web\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"verdict\":\"adapts\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"verdict\":\"mismatch\",\"exit_status\":1"), std::string::npos) << json;
}

TEST(DoctorIntegration, ExpressDefaultsHint5sCloseLater) {
  ExpressApp app;
  ASSERT_TRUE(app.running()) << app.failure();
  DoctorOptions o = options_for(app.port(), 10s, "/hello");
  o.proxy_idle_timeout = 75s;
  const DoctorRun run = diagnose_target(o);
  ASSERT_TRUE(run.error.empty()) << run.error;
  const Measurement& m = *run.measurement;
  const Diagnosis& d = *run.diagnosis;
  EXPECT_EQ(m.status, 200);
  EXPECT_EQ(m.keep_alive_hint, 5s);
  ASSERT_EQ(d.close.closed, 4u);
  EXPECT_EQ(d.close.kind, CloseKind::fin);
  // Node 20 enforces keepAliveTimeout (5 s) about 1 s late; the hint is honest (below it).
  EXPECT_GT(*d.close.min, 5000ms + 50ms);
  EXPECT_LT(*d.close.max, 7000ms);
  EXPECT_FALSE(d.hint_exceeds_close);
  // The story: Express behind a 75 s proxy.
  EXPECT_EQ(d.verdicts[0].kind, VerdictKind::mismatch);
  EXPECT_NE(d.verdicts[0].fixes[1].find("server.keepAliveTimeout = 84000"), std::string::npos)
      << d.verdicts[0].fixes[1];
  EXPECT_EQ(run.exit_status, 1);
  fmt::print("measured (express): hint {} ms, min {} ms, median {} ms, max {} ms\n",
             m.keep_alive_hint->count(), d.close.min->count(), d.close.median->count(),
             d.close.max->count());
}

}  // namespace
}  // namespace needle::doctor
