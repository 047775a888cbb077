#include "proxy/cluster_runtime.h"

#include <algorithm>

namespace needle::proxy {

ClusterRuntime::ClusterRuntime(net::Executor executor, const config::ClusterConfig& config,
                               const Clock& clock)
    : config_(config),
      balancer_(upstream::make_load_balancer(config.lb)),
      budget_(config.retry_budget_ratio, config.retry_budget_min_per_second) {
  const auto settings = upstream::PoolSettings::from_cluster(config_);
  for (const auto& address : config_.hosts) {
    hosts_.push_back(upstream::HostPool::create(executor, address, settings, clock));
    host_names_.push_back(address.to_string());
  }
  candidates_.resize(hosts_.size());
}

ClusterRuntime::~ClusterRuntime() { drain(); }

std::optional<size_t> ClusterRuntime::pick_host(const std::vector<size_t>& excluded) {
  for (size_t i = 0; i < hosts_.size(); ++i) {
    candidates_[i].active_requests = hosts_[i]->active_requests();
    candidates_[i].usable = !hosts_[i]->ejected() &&
                            std::find(excluded.begin(), excluded.end(), i) == excluded.end();
  }
  // All ejected (or tried): the caller answers 503 no_healthy_host, or 502 with the cause of
  // the last attempt when this request already tried hosts.
  return balancer_->pick(candidates_);
}

bool ClusterRuntime::has_other_host(const std::vector<size_t>& excluded) const {
  for (size_t i = 0; i < hosts_.size(); ++i) {
    if (!hosts_[i]->ejected() &&
        std::find(excluded.begin(), excluded.end(), i) == excluded.end()) {
      return true;
    }
  }
  return false;
}

void ClusterRuntime::drain() {
  for (auto& host : hosts_) host->drain();
}

WorkerRuntime::WorkerRuntime(net::Executor executor,
                             std::shared_ptr<const config::Config> config_in, const Clock& clock)
    : config(std::move(config_in)), router(*config) {
  for (const auto& cluster : config->clusters) {
    clusters.push_back(std::make_unique<ClusterRuntime>(executor, cluster, clock));
  }
}

WorkerRuntime::~WorkerRuntime() = default;

}  // namespace needle::proxy
