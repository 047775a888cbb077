#include "proxy/cluster_runtime.h"

#include <algorithm>

#include "proxy/slow_start.h"

namespace needle::proxy {

ClusterRuntime::ClusterRuntime(net::Executor executor, const config::ClusterConfig& config,
                               const Clock& clock, ClusterRuntime* previous, unsigned workers,
                               std::shared_ptr<upstream::ClusterHealth> health)
    : config_(config),
      health_(std::move(health)),
      balancer_(upstream::make_load_balancer(config.lb)),
      budget_(config.retry_budget_ratio, config.retry_budget_min_per_second),
      breakers_(config.breakers, workers, previous ? &previous->breakers_ : nullptr),
      clock_(clock),
      random_(static_cast<unsigned>(clock.now().time_since_epoch().count())) {
  auto settings = upstream::PoolSettings::from_cluster(config_);
  // With outlier detection, its process-wide consecutive_gateway_failure replaces the per-worker
  // connect-failure ejection (docs/config.md "Outlier detection").
  if (config_.outlier_detection) settings.eject_after_connect_failures = 0;
  for (const auto& address : config_.hosts) {
    std::string name = address.to_string();
    // A host of the first generation is not new to anyone: no slow start for it.
    TimePoint available_since = previous ? clock.now() : TimePoint{};
    auto kept = previous ? previous->take_over(name, &available_since) : nullptr;
    if (kept) {
      kept->reconfigure(settings);
    } else {
      kept = upstream::HostPool::create(executor, address, settings, clock);
    }
    hosts_.push_back(std::move(kept));
    host_health_.push_back(health_ ? health_->host(name) : nullptr);
    host_names_.push_back(std::move(name));
    available_since_.push_back(available_since);
  }
  handed_over_.assign(hosts_.size(), false);
  candidates_.resize(hosts_.size());
  for (size_t i = 0; i < hosts_.size(); ++i) candidates_[i].weight = config_.hosts[i].weight;
  was_ejected_.assign(hosts_.size(), false);
}

std::shared_ptr<upstream::HostPool> ClusterRuntime::take_over(const std::string& address,
                                                              TimePoint* available_since) {
  for (size_t i = 0; i < hosts_.size(); ++i) {
    if (handed_over_[i] || host_names_[i] != address) continue;
    handed_over_[i] = true;
    *available_since = available_since_[i];
    return hosts_[i];
  }
  return nullptr;
}

ClusterRuntime::~ClusterRuntime() { drain(); }

// A host out of rotation is drained: no new request goes to it, those in flight finish on their
// leases, and its idle connections age out (docs/architecture.md "Upstream health").
bool ClusterRuntime::usable(size_t index, bool panic) const {
  if (hosts_[index]->ejected()) return false;
  return panic || !host_health_[index] || host_health_[index]->in_rotation();
}

std::optional<size_t> ClusterRuntime::pick_host(const std::vector<size_t>& excluded) {
  const bool panic = in_panic();
  for (size_t i = 0; i < hosts_.size(); ++i) {
    candidates_[i].active_requests = hosts_[i]->active_requests();
    candidates_[i].usable =
        usable(i, panic) && std::find(excluded.begin(), excluded.end(), i) == excluded.end();
  }
  // All ejected (or tried): the caller answers 503 no_healthy_host, or 502 with the cause of
  // the last attempt when this request already tried hosts.
  const auto picked = balancer_->pick(candidates_);
  if (panic && picked) health_->count_panic_pick();
  if (!picked || config_.slow_start <= Millis(0)) return picked;
  return apply_slow_start(*picked);
}

size_t ClusterRuntime::apply_slow_start(size_t picked) {
  const TimePoint now = clock_.now();
  for (size_t i = 0; i < hosts_.size(); ++i) {
    const bool out = !usable(i, /*panic=*/false);  // ejected, or out of health rotation
    if (was_ejected_[i] && !out) available_since_[i] = now;  // back: ramp again
    was_ejected_[i] = out;
  }
  const double share = slow_start_share(config_.slow_start, now - available_since_[picked]);
  if (share >= 1.0 || std::uniform_real_distribution<double>(0.0, 1.0)(random_) < share) {
    return picked;
  }
  candidates_[picked].usable = false;
  return balancer_->pick(candidates_).value_or(picked);
}

bool ClusterRuntime::has_other_host(const std::vector<size_t>& excluded) const {
  const bool panic = in_panic();
  for (size_t i = 0; i < hosts_.size(); ++i) {
    if (usable(i, panic) && std::find(excluded.begin(), excluded.end(), i) == excluded.end()) {
      return true;
    }
  }
  return false;
}

void ClusterRuntime::report_attempt(size_t index, Cause cause, int status) {
  if (!health_ || !host_health_[index]) return;
  health_->report(host_health_[index], upstream::classify_attempt(cause, status));
}

void ClusterRuntime::drain() {
  for (size_t i = 0; i < hosts_.size(); ++i) {
    if (!handed_over_[i]) hosts_[i]->drain();
  }
}

WorkerRuntime::WorkerRuntime(net::Executor executor,
                             std::shared_ptr<const config::Config> config_in, const Clock& clock,
                             WorkerRuntime* previous, upstream::HealthRegistry* health)
    : config(std::move(config_in)), router(*config), rate_limiters(config->routes.size()) {
  for (const auto& cluster : config->clusters) {
    ClusterRuntime* before = previous ? previous->find_cluster(cluster.name) : nullptr;
    clusters.push_back(std::make_unique<ClusterRuntime>(
        executor, cluster, clock, before, configured_workers(*config),
        health ? health->cluster(cluster.name) : nullptr));
  }
}

ClusterRuntime* WorkerRuntime::find_cluster(std::string_view name) {
  for (auto& cluster : clusters) {
    if (cluster->config().name == name) return cluster.get();
  }
  return nullptr;
}

WorkerRuntime::~WorkerRuntime() = default;

}  // namespace needle::proxy
