#pragma once
// The admin endpoint's pages: Prometheus text exposition format 0.0.4 (/metrics) and a JSON view
// of every worker's pools (/pools). Pure functions of the gathered snapshots; callable from
// any thread since they only read their arguments. Every metric is listed in docs/metrics.md.
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "observe/alert_stats.h"
#include "observe/health_snapshot.h"
#include "observe/pool_snapshot.h"

namespace needle::observe {

inline constexpr std::string_view kPrometheusContentType =
    "text/plain; version=0.0.4; charset=utf-8";

struct ScrapeExtras {
  std::string_view version = "unknown";  // needle_build_info{version}
  std::optional<AlertStats> alerts;      // needle_alert_* families; omitted when nullopt
  std::vector<ClusterHealthSnapshot> health;  // upstream health families; omitted when empty
};

// Merges the workers' shards (counters and histograms summed) and pools (per cluster/host:
// gauges and counters summed, idle limits the minimum across workers with that worker's source,
// learned/hint timeouts the minimum, survived the maximum).
std::string render_prometheus(std::span<const WorkerSnapshot> workers,
                              const ScrapeExtras& extras = {});

// {"workers":[{"worker":0,"pools":[{"cluster":..,"host":..,"idle":..,"busy":..,
//   "effective_limit_ms":..,"limit_source":..,"hint_ms":..|null,...}]}]}
// `health` adds ,"health":[...] after "workers" (observe/health_snapshot.h).
std::string render_pools_json(std::span<const WorkerSnapshot> workers,
                              const std::vector<ClusterHealthSnapshot>& health = {});

// Label value escaping of the text format: backslash, double quote and line feed.
void append_label_value(std::string& out, std::string_view value);

}  // namespace needle::observe
