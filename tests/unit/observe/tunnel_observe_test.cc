// Upgrade tunnels as the operator sees them: the access log's `tunnel` object, and the tunnel
// metrics merged across workers (active = opened - closed).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "observe/access_log.h"
#include "observe/metrics_shard.h"
#include "observe/prometheus_text.h"

namespace needle::observe {
namespace {

RequestRecord tunnel_record(std::string_view closed_by) {
  RequestRecord r;
  r.request_id = "r1";
  r.method = "GET";
  r.path = "/ws";
  r.status = 101;
  r.route = "/";
  r.tunnel.opened = true;
  r.tunnel.bytes_from_client = 12;
  r.tunnel.bytes_to_client = 34;
  r.tunnel.duration = std::chrono::milliseconds(1500);
  r.tunnel.closed_by = closed_by;
  return r;
}

bool has_line(const std::string& text, const std::string& line) {
  return text.find("\n" + line + "\n") != std::string::npos;
}

TEST(TunnelAccessLog, TheTunnelObjectComesBeforeTheAttempts) {
  const std::string line = format_access_log_line(tunnel_record("idle_timeout"));
  EXPECT_NE(line.find("\"status\":101"), std::string::npos) << line;
  EXPECT_NE(line.find(",\"tunnel\":{\"closed_by\":\"idle_timeout\",\"bytes_from_client\":12,"
                      "\"bytes_to_client\":34,\"duration_ms\":1500.000},\"attempts\":[]}"),
            std::string::npos)
      << line;
  RequestRecord plain = tunnel_record("client");
  plain.tunnel = TunnelRecord{};
  EXPECT_EQ(format_access_log_line(plain).find("tunnel"), std::string::npos);
}

TEST(TunnelMetrics, ActiveIsOpenedMinusClosedAcrossWorkers) {
  std::vector<WorkerSnapshot> workers(2);
  for (int i = 0; i < 3; ++i) workers[0].metrics.on_tunnel_opened();
  workers[0].metrics.on_request(tunnel_record("client"));
  workers[1].metrics.on_tunnel_opened();
  workers[1].metrics.on_request(tunnel_record("drain"));
  const std::string text = render_prometheus(workers);
  EXPECT_TRUE(has_line(text, "needle_tunnels_active 2")) << text;
  EXPECT_TRUE(has_line(text, "needle_tunnels_opened_total 4"));
  EXPECT_TRUE(has_line(text, "needle_tunnel_closes_total{reason=\"client\"} 1"));
  EXPECT_TRUE(has_line(text, "needle_tunnel_closes_total{reason=\"drain\"} 1"));
  EXPECT_TRUE(has_line(text, "needle_tunnel_closes_total{reason=\"idle_timeout\"} 0"));
  EXPECT_TRUE(has_line(text, "needle_tunnel_closes_total{reason=\"upstream\"} 0"));
  EXPECT_TRUE(has_line(text, "needle_responses_5xx_total{cause=\"tunnel_limit\"} 0"));
}

}  // namespace
}  // namespace needle::observe
