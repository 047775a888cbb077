// The keep-alive race one hop up (docs/architecture.md "Downstream close races"): nginx as the
// gateway, pooling its connections to needle (upstream keepalive, keepalive_timeout 60 s), and
// needle with client_idle_timeout 300 ms. A 20 ms delay line between them stands in for a
// network path and widens the race window to 40 ms: a request nginx sends on a pooled
// connection idle for 260-300 ms crosses needle's FIN. The client paces its requests around
// that age. What nginx saw (its access log: every request whose $upstream_status has a 502, i.e. an
// attempt that met the close) and what needle counted (needle_downstream_close_races_total) must
// agree exactly: each raced request is one lost attempt at the gateway and one request needle
// saw arrive after its FIN.
#include <gtest/gtest.h>

#include <iostream>
#include <sstream>
#include <string>

#include "race_support.h"
#include "support/delay_line.h"
#include "support/eventually.h"
#include "support/nginx_fixture.h"

namespace needle::test::race {
namespace {

using namespace std::chrono_literals;

// The value of the sample `series` (name and labels exactly as rendered), or -1.
long long metric_value(const std::string& text, const std::string& series) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(series + " ", 0) == 0) return std::stoll(line.substr(series.size() + 1));
  }
  return -1;
}

struct GatewayLine {
  int status = 0;
  std::string upstream_status;  // "200", "502", "502, 200" (nginx tried again)
  std::string method;
};

std::vector<GatewayLine> gateway_log(const NginxFixture& gateway) {
  std::vector<GatewayLine> lines;
  std::istringstream in(read_text_file(gateway.dir() / "race.log"));
  std::string line;
  while (std::getline(in, line)) {
    GatewayLine l;
    const size_t q1 = line.find('"'), q2 = line.rfind('"');
    if (q1 == std::string::npos || q2 == q1) continue;
    l.status = std::atoi(line.c_str());
    l.upstream_status = line.substr(q1 + 1, q2 - q1 - 1);
    l.method = line.substr(q2 + 2);
    lines.push_back(l);
  }
  return lines;
}

TEST(RaceDownstream, GatewayErrorsAndNeedlesRaceCountAgree) {
  NginxAppServer app_config;
  app_config.routes = {{"/get", "got"}, {"/post", "posted"}};
  NginxFixture app(app_config);

  const int admin_port = free_port();
  NeedleOptions needle_options;
  needle_options.also_wait_for.push_back(admin_port);
  auto needle = NeedleProcess::start(
      [&](int port) {
        return "[server]\nworkers = 1\naccess_log = \"off\"\nclient_idle_timeout = \"300ms\"\n"
               "[[listener]]\naddress = " +
               addr(port) + "\n[admin]\naddress = " + addr(admin_port) +
               "\n[[route]]\npath_prefix = \"/\"\ncluster = \"app\"\n"
               "[cluster.app]\nhosts = [" +
               addr(app.port()) + "]\n";
      },
      needle_options);
  DelayLine path(needle->port(), 20ms);

  // nginx's defaults otherwise: keepalive_timeout 60 s for its pooled connections, and a GET
  // that failed on a pooled connection is tried again on a new one (its $upstream_status then
  // reads "502, 200"); a POST is not (the client gets the 502).
  const std::string gateway_config =
      "  log_format race '$status \"$upstream_status\" $request_method';\n"
      "  upstream needle {\n"
      "    server 127.0.0.1:" +
      std::to_string(path.port()) +
      ";\n"
      "    keepalive 32;\n"
      "  }\n"
      "  server {\n"
      "    listen 127.0.0.1:@PORT@;\n"
      "    access_log race.log race;\n"
      "    location / {\n"
      "      proxy_pass http://needle;\n"
      "      proxy_http_version 1.1;\n"
      "      proxy_set_header Connection \"\";\n"
      "    }\n"
      "  }\n";
  NginxFixture gateway(gateway_config);

  // One client: nginx then reuses one pooled connection, idle for the client's gap (with
  // several, nginx's most-recently-used choice would shorten the ages). Half of the gaps fall in
  // the window (260-300 ms): about 8 races expected (none: probability 2^-17).
  DriveOptions o;
  o.port = gateway.port();
  o.clients = 1;
  o.requests_per_client = 18;
  o.gap_min = 240ms;
  o.gap_max = 320ms;
  const DriveResult result = drive(o);
  const int requests = o.clients * o.requests_per_client;
  ASSERT_EQ(result.sent, requests);
  ASSERT_EQ(result.client_errors, 0) << describe(result);

  ASSERT_TRUE(eventually(5s, [&] { return gateway_log(gateway).size() >= size_t(requests); }));
  const auto lines = gateway_log(gateway);
  int raced_attempts = 0, client_502 = 0, retried = 0;
  for (const auto& l : lines) {
    for (size_t at = l.upstream_status.find("502"); at != std::string::npos;
         at = l.upstream_status.find("502", at + 3)) {
      ++raced_attempts;  // each failed attempt (nginx may try another pooled connection)
    }
    if (l.status == 502) ++client_502;
    if (l.upstream_status.find(',') != std::string::npos) ++retried;
  }
  // needle's watches end within a round trip of the gateway's close; give them a moment.
  std::this_thread::sleep_for(200ms);
  const std::string metrics = admin_get(admin_port, "/metrics");
  const std::string listener = "listener=\"127.0.0.1:" + std::to_string(needle->port()) + "\"";
  const long long races = metric_value(
      metrics, "needle_downstream_close_races_total{" + listener + ",signal=\"request\"}");
  const long long resets = metric_value(
      metrics, "needle_downstream_close_races_total{" + listener + ",signal=\"reset\"}");
  const long long idle_closes_ok = metric_value(
      metrics, "needle_downstream_idle_closes_total{" + listener + ",outcome=\"client_closed\"}");
  std::cout << "[ race ] " << requests << " requests through nginx: " << raced_attempts
            << " attempts met needle's idle close (" << client_502 << " answered 502, " << retried
            << " tried again by nginx); needle counted " << races << " race(s) (request), "
            << resets << " (reset), " << idle_closes_ok << " idle close(s) the gateway answered\n";
  if (races != raced_attempts) {
    std::cout << metrics << needle->operational_log() << gateway.error_log().substr(0, 2000)
              << read_text_file(gateway.dir() / "race.log");
  }
  EXPECT_EQ(client_502, result.non_2xx);
  EXPECT_GT(raced_attempts, 0) << "the gaps never hit the race window: nothing was measured";
  EXPECT_EQ(races, raced_attempts);
  EXPECT_EQ(resets, 0);
  EXPECT_GT(idle_closes_ok, 0);
  EXPECT_TRUE(needle->wait_for_log("answered that request with an error", 1s))
      << needle->operational_log();
}

}  // namespace
}  // namespace needle::test::race
