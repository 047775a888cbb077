#pragma once
// The process-wide upstream health (upstream/host_health.h) as plain data for /metrics and
// /pools, so observe does not depend on upstream. Read by the control thread at scrape time
// from the registry's atomics (server/observability.cc builds it).
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace needle::observe {

struct HostHealthSnapshot {
  std::string host;           // "addr:port"
  bool failed_check = false;  // the active check has it out
  bool ejected = false;       // outlier detection has it out
  uint64_t checks_passed = 0, checks_failed = 0;
  std::vector<std::pair<std::string, uint64_t>> ejections;  // reason name -> count
  // The idle age at which the host last closed the health check's kept-alive connection, and
  // how many such closes were seen.
  std::optional<int64_t> checker_idle_close_ms;
  uint64_t checker_idle_closes = 0;
  // "healthy" (in rotation), "unhealthy" (failing checks), or "ejected".
  std::string_view state() const {
    return failed_check ? "unhealthy" : ejected ? "ejected" : "healthy";
  }
};

struct ClusterHealthSnapshot {
  std::string cluster;
  bool active_checks = false;      // [cluster.NAME.health_check] present
  bool outlier_detection = false;  // [cluster.NAME.outlier_detection] present
  bool panic = false;
  uint64_t panic_picks = 0;  // hosts picked while in panic mode
  std::vector<HostHealthSnapshot> hosts;
};

// The needle_upstream_host_*, needle_upstream_ejections_total, needle_upstream_health_*,
// needle_upstream_panic_* families (docs/metrics.md "Upstream health").
void append_health_prometheus(std::string& out, const std::vector<ClusterHealthSnapshot>& health);
// ,"health":[{"cluster":..,"panic":..,"hosts":[{"host":..,"state":..,...}]}]
void append_health_json(std::string& out, const std::vector<ClusterHealthSnapshot>& health);

}  // namespace needle::observe
