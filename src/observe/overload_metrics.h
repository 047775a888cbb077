#pragma once
// The metrics of DNS discovery and overload protection (docs/metrics.md "Discovery and
// overload"): counted off the workers' shards (the discovery thread, and process-wide counters
// touched only when a request is refused), rendered after the shards' families.
#include <cstdint>
#include <string>
#include <vector>

namespace needle::observe {

struct DnsTargetSample {
  std::string cluster;
  std::string name;
  uint64_t resolutions = 0;
  uint64_t failures = 0;
  uint64_t addresses = 0;
};

struct OverflowSample {
  std::string cluster;
  std::string breaker;  // "max_connections" | "max_pending" | "max_requests"
  uint64_t count = 0;
};

struct RateLimitedSample {
  std::string route;
  uint64_t count = 0;
};

struct ClusterHostsSample {
  std::string cluster;
  uint64_t hosts = 0;  // hosts the workers run with (addresses once a name is resolved)
};

struct OverloadMetrics {
  std::vector<DnsTargetSample> dns;
  std::vector<ClusterHostsSample> hosts;
  std::vector<OverflowSample> overflow;
  std::vector<RateLimitedSample> rate_limited;
};

// Appends the families of `metrics` in Prometheus text format 0.0.4.
void render_overload_metrics(const OverloadMetrics& metrics, std::string& out);

}  // namespace needle::observe
