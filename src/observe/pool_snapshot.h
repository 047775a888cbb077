#pragma once
// What the admin endpoint gathers from each worker at scrape time: a copy of the worker's
// MetricsShard and the state of its upstream pools, taken on the worker's own thread (the lead's
// admin code posts the copy task), then rendered by prometheus_text.h from any thread.
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "observe/metrics_shard.h"

namespace needle::observe {

// One worker's pool for one upstream host (upstream::HostPool, its counters and its
// IdleTimeoutEstimator), as plain data so observe does not depend on upstream.
struct PoolSnapshot {
  std::string cluster, host;       // host as "addr:port", same spelling as AttemptRecord::upstream
  size_t idle = 0, busy = 0;       // connections idle in the pool / leased out
  uint32_t active_requests = 0;    // leases out + connects in flight
  bool ejected = false;            // passive health ejection on this worker
  int64_t effective_limit_ms = 0;  // never reuse a connection idle for >= this
  int64_t non_replayable_limit_ms = 0;
  std::string limit_source;  // configured | hint | learned | default_initial
  std::optional<int64_t> configured_ms, hint_ms, learned_ms, survived_ms;
  // Idle-close evidence (docs/decisions/0006-idle-close-evidence.md): reuse_stopped while the
  // effective limit is below the reuse floor (100 ms); the smallest close held as a suspect; a
  // learned per-connection request cap; the newest close and its verdict; verdicts given.
  bool reuse_stopped = false;
  std::optional<int64_t> suspect_ms, request_cap;
  std::optional<int64_t> last_close_age_ms;
  std::string last_close_verdict;
  std::vector<std::pair<std::string, uint64_t>> close_verdicts;  // verdict name -> count
  uint64_t opened = 0, reused = 0, connect_failures = 0;  // counters since the pool was created
  uint64_t probes_skipped = 0;  // reuses handed out without a checkout probe (decision 0004)
  uint64_t tls_resumed = 0;     // TLS connections opened with a resumed handshake (issue 18)
  std::vector<std::pair<std::string, uint64_t>> evicted_by_reason;  // reason name -> count
  // Process-wide upstream health (issue 20): "healthy", "unhealthy" (failing active checks) or
  // "ejected" (outlier detection); the same for every worker.
  std::string health = "healthy";
};

struct WorkerSnapshot {
  unsigned worker = 0;
  MetricsShard metrics;
  std::vector<PoolSnapshot> pools;
  // Client connections: with a session (reading, proxying, or idle under a sweep period) and
  // parked (idle longer, waiting in the keep-alive park without a session).
  size_t client_sessions = 0, client_parked = 0;
};

}  // namespace needle::observe
