#pragma once
// One cluster as one worker sees it: its host pools (per worker: shared nothing), the balancer
// and the retry budget. Built per config generation; see WorkerRuntime.
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "net/io_types.h"
#include "proxy/circuit_breakers.h"
#include "proxy/rate_limiter.h"
#include "proxy/retry_policy.h"
#include "proxy/router.h"
#include "upstream/connection_pool.h"
#include "upstream/host_health.h"
#include "upstream/load_balancer.h"

namespace needle::proxy {

class ClusterRuntime {
 public:
  // `previous`: the same-named cluster of the generation being replaced, or null. Each of its
  // hosts whose address is listed again is taken over (the same HostPool, reconfigured) instead
  // of built afresh; see docs/architecture.md "Reload and shutdown". `workers`: how many
  // workers share the circuit breakers' limits (CircuitBreakers). `health`: the cluster's
  // process-wide health (upstream/host_health.h); null = every host is always in rotation
  // (tests that need no health thread).
  ClusterRuntime(net::Executor executor, const config::ClusterConfig& config, const Clock& clock,
                 ClusterRuntime* previous = nullptr, unsigned workers = 1,
                 std::shared_ptr<upstream::ClusterHealth> health = nullptr);
  ~ClusterRuntime();

  const config::ClusterConfig& config() const { return config_; }
  size_t host_count() const { return hosts_.size(); }
  upstream::HostPool& host(size_t index) { return *hosts_[index]; }
  const upstream::HostPool& host(size_t index) const { return *hosts_[index]; }
  const std::string& host_name(size_t index) const { return host_names_[index]; }
  RetryBudget& retry_budget() { return budget_; }
  CircuitBreakers& breakers() { return breakers_; }

  // A usable host not in `excluded` (ejected hosts are skipped), or nullopt.
  std::optional<size_t> pick_host(const std::vector<size_t>& excluded);
  // Some usable host other than those in `excluded` exists.
  bool has_other_host(const std::vector<size_t>& excluded) const;
  // --- upstream health (docs/architecture.md "Upstream health") -----------------------------
  // Every host is out of rotation (failing checks or ejected): picks use them all (panic).
  bool in_panic() const { return health_ && health_->panic(); }
  // The outcome of an attempt on host `index`, for outlier detection.
  void report_attempt(size_t index, Cause cause, int status);
  // The host's process-wide health; null without a registry.
  const upstream::HostHealth* host_health(size_t index) const { return host_health_[index].get(); }
  // Drains the pools this generation still owns; those a newer generation took over keep
  // serving it.
  void drain();

 private:
  // The pool of host `address` not yet taken over, marked as taken, and when it became
  // available (slow start); null if there is none.
  std::shared_ptr<upstream::HostPool> take_over(const std::string& address,
                                                TimePoint* available_since);
  // Slow start: `picked` keeps the pick with the probability of its share, else another
  // usable host is picked (docs/config.md "Slow start").
  size_t apply_slow_start(size_t picked);

  config::ClusterConfig config_;
  std::vector<std::shared_ptr<upstream::HostPool>> hosts_;
  std::vector<std::string> host_names_;
  // handed_over_[i]: hosts_[i] now belongs to a newer generation too, which drains it when it
  // drops it; this one must not. Requests of this generation still in flight use it meanwhile.
  std::vector<bool> handed_over_;
  // In rotation per the process-wide health (panic: every host), and not ejected here.
  bool usable(size_t index, bool panic) const;
  std::shared_ptr<upstream::ClusterHealth> health_;
  std::vector<std::shared_ptr<upstream::HostHealth>> host_health_;  // parallel to hosts_
  std::unique_ptr<upstream::LoadBalancer> balancer_;
  std::vector<upstream::HostCandidate> candidates_;  // scratch for pick_host
  RetryBudget budget_;
  CircuitBreakers breakers_;
  const Clock& clock_;
  // Slow start, per host: when it became available, and whether it was ejected at the last
  // pick (its return from ejection restarts the ramp).
  std::vector<TimePoint> available_since_;
  std::vector<bool> was_ejected_;
  std::minstd_rand random_;
};

// Everything a worker needs to proxy under one config generation. A request holds a shared_ptr
// to the generation it started under, so a reload never pulls a pool from under an exchange.
// A new generation built from `previous` (on the worker's own thread: pools are not
// thread-safe) takes over the pools of hosts it keeps (same cluster name, same address), with
// their idle connections, busy leases, counters, ejection and learned idle limits; the old
// generation drains only the pools nobody took over.
struct WorkerRuntime {
  WorkerRuntime(net::Executor executor, std::shared_ptr<const config::Config> config,
                const Clock& clock, WorkerRuntime* previous = nullptr,
                upstream::HealthRegistry* health = nullptr);
  ~WorkerRuntime();

  std::shared_ptr<const config::Config> config;
  Router router;
  std::vector<std::unique_ptr<ClusterRuntime>> clusters;

  ClusterRuntime* find_cluster(std::string_view name);
  // The rate limiters of the routes, by route index, fetched from the process-wide
  // OverloadState on first use (DownstreamSession); null entries: not fetched yet.
  std::vector<std::shared_ptr<RateLimiter>> rate_limiters;
};

}  // namespace needle::proxy
