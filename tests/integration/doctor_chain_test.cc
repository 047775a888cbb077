// needle doctor --chain on a real three-hop path on 127.0.0.1: nginx as the gateway (clients'
// keepalive_timeout 2s, pooling its connections to needle), needle (client_idle_timeout 1s, its
// cluster pointing at the app with no idle_timeout: it learns) and the Express app of the 502
// story (keepAliveTimeout 500 ms, which Node enforces about a second later). Short timeouts, so
// each run takes about as long as the slowest hop's close (2 s).
#include <gtest/gtest.h>

#include <cstdio>
#include <iostream>
#include <memory>
#include <string>

#include <fmt/format.h>

#include "doctor/chain.h"
#include "doctor/doctor_command.h"
#include "support/express_fixture.h"
#include "support/needle_process.h"
#include "support/nginx_fixture.h"

namespace needle::doctor {
namespace {

using namespace std::chrono_literals;

struct ChainPath {
  std::unique_ptr<test::ExpressFixture> app;
  std::unique_ptr<test::NeedleProcess> needle;
  std::unique_ptr<test::NginxFixture> gateway;

  ChainPath() {
    test::ensure_example_app_dependencies();
    app =
        std::make_unique<test::ExpressFixture>(test::ExpressOptions{.keep_alive_timeout_ms = 500});
    needle = test::NeedleProcess::start([&](int port) {
      return fmt::format(
          "[server]\nworkers = 1\naccess_log = \"off\"\nclient_idle_timeout = \"1s\"\n"
          "[[listener]]\naddress = \"127.0.0.1:{}\"\n[admin]\naddress = \"off\"\n"
          "[[route]]\npath_prefix = \"/\"\ncluster = \"app\"\n"
          "[cluster.app]\nhosts = [\"127.0.0.1:{}\"]\n",
          port, app->port());
    });
    gateway = std::make_unique<test::NginxFixture>(fmt::format(
        "  upstream needle {{\n    server 127.0.0.1:{};\n    keepalive 8;\n  }}\n"
        "  server {{\n    listen 127.0.0.1:@PORT@;\n    keepalive_timeout 2s;\n"
        "    location / {{\n      proxy_pass http://needle;\n      proxy_http_version 1.1;\n"
        "      proxy_set_header Connection \"\";\n    }}\n  }}\n",
        needle->port()));
  }

  DoctorOptions options(std::string idle_timeouts) const {
    DoctorOptions o;
    o.chain = {fmt::format("http://127.0.0.1:{}/hello", gateway->port()),
               fmt::format("http://127.0.0.1:{}/hello", needle->port()),
               fmt::format("http://127.0.0.1:{}/hello", app->port())};
    o.proxy_idle_timeout_text = std::move(idle_timeouts);
    o.config_path = needle->config_path().string();
    o.probes = 2;
    o.max_wait = 10s;
    return o;
  }
};

std::string run_text(const DoctorOptions& o, int* status) {
  std::FILE* out = std::tmpfile();
  *status = run_doctor(o, out, stderr);
  std::rewind(out);
  std::string text;
  char buffer[4096];
  for (size_t n; (n = std::fread(buffer, 1, sizeof buffer, out)) > 0;) text.append(buffer, n);
  std::fclose(out);
  return text;
}

TEST(DoctorChain, GatewayPoolingLongerThanNeedleKeepsClientsIsAMismatch) {
  ChainPath path;
  // The gateway reuses its pooled connections to needle for up to 3 s; needle closes them at 1 s.
  const ChainRun run = diagnose_chain(path.options("3s,-"));
  ASSERT_TRUE(run.error.empty()) << run.error;
  ASSERT_EQ(run.hops.size(), 3u);
  for (const auto& hop : run.hops) ASSERT_TRUE(hop.measurement) << hop.url << hop.probe_error;
  const auto close_of = [&](size_t i) { return *summarize(run.hops[i].measurement->samples).min; };
  EXPECT_NEAR(close_of(0).count(), 2000, 300);  // nginx: keepalive_timeout 2s
  EXPECT_NEAR(close_of(1).count(), 1000, 300);  // needle: client_idle_timeout 1s
  EXPECT_NEAR(close_of(2).count(), 1500, 400);  // Node: 500 ms + its 1 s
  EXPECT_FALSE(run.hops[0].is_needle);
  EXPECT_TRUE(run.hops[1].is_needle);
  ASSERT_EQ(run.pairs.size(), 2u);
  ASSERT_TRUE(run.pairs[0].diagnosis);
  EXPECT_EQ(run.pairs[0].diagnosis->verdicts[0].kind, VerdictKind::mismatch);
  ASSERT_TRUE(run.pairs[1].diagnosis);
  EXPECT_EQ(run.pairs[1].diagnosis->verdicts[0].kind, VerdictKind::adapts);  // needle learns
  EXPECT_EQ(run.exit_status, 1);

  const std::string text = format_chain_text(run);
  std::cout << text;
  EXPECT_NE(text.find("1 -> 2   3s"), std::string::npos) << text;
  EXPECT_NE(text.find("MISMATCH"), std::string::npos) << text;
  EXPECT_NE(text.find("needle side: raise [server] client_idle_timeout above 3s"),
            std::string::npos)
      << text;
  EXPECT_EQ(text.find("app side:"), std::string::npos) << "needle's knob, not Node's:\n" << text;
  EXPECT_NE(text.find("(exit 1)"), std::string::npos) << text;
}

TEST(DoctorChain, GatewayPoolingShorterIsOkAndUnknownPoolsAreIncomplete) {
  ChainPath path;
  int status = -1;
  const std::string ok = run_text(path.options("500ms,-"), &status);
  EXPECT_EQ(status, 0) << ok;
  EXPECT_NE(ok.find("result: OK"), std::string::npos) << ok;

  // Without -c and without needle's entry, the second pair has no pool timeout to judge.
  DoctorOptions o = path.options("500ms,-");
  o.config_path.clear();
  const std::string incomplete = run_text(o, &status);
  EXPECT_EQ(status, 2) << incomplete;
  EXPECT_NE(incomplete.find("hop 2's pool idle timeout is unknown"), std::string::npos)
      << incomplete;

  // A list of the wrong length is a usage error.
  EXPECT_EQ(run_text(path.options("500ms"), &status), "");
  EXPECT_EQ(status, 2);
}

TEST(DoctorChain, IdleTimeoutListParses) {
  const auto list = parse_idle_timeout_list("60s, -,750ms");
  ASSERT_TRUE(list);
  ASSERT_EQ(list->size(), 3u);
  EXPECT_EQ((*list)[0], Millis(60000));
  EXPECT_FALSE((*list)[1]);
  EXPECT_EQ((*list)[2], Millis(750));
  EXPECT_FALSE(parse_idle_timeout_list("60,75s"));
  EXPECT_FALSE(parse_idle_timeout_list(""));
}

}  // namespace
}  // namespace needle::doctor
