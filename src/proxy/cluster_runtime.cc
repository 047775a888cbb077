#include "proxy/cluster_runtime.h"

#include <algorithm>

namespace needle::proxy {

ClusterRuntime::ClusterRuntime(net::Executor executor, const config::ClusterConfig& config,
                               const Clock& clock, ClusterRuntime* previous)
    : config_(config),
      balancer_(upstream::make_load_balancer(config.lb)),
      budget_(config.retry_budget_ratio, config.retry_budget_min_per_second) {
  const auto settings = upstream::PoolSettings::from_cluster(config_);
  for (const auto& address : config_.hosts) {
    std::string name = address.to_string();
    auto kept = previous ? previous->take_over(name) : nullptr;
    if (kept) {
      kept->reconfigure(settings);
    } else {
      kept = upstream::HostPool::create(executor, address, settings, clock);
    }
    hosts_.push_back(std::move(kept));
    host_names_.push_back(std::move(name));
  }
  handed_over_.assign(hosts_.size(), false);
  candidates_.resize(hosts_.size());
  for (size_t i = 0; i < hosts_.size(); ++i) candidates_[i].weight = config_.hosts[i].weight;
}

std::shared_ptr<upstream::HostPool> ClusterRuntime::take_over(const std::string& address) {
  for (size_t i = 0; i < hosts_.size(); ++i) {
    if (handed_over_[i] || host_names_[i] != address) continue;
    handed_over_[i] = true;
    return hosts_[i];
  }
  return nullptr;
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
  for (size_t i = 0; i < hosts_.size(); ++i) {
    if (!handed_over_[i]) hosts_[i]->drain();
  }
}

WorkerRuntime::WorkerRuntime(net::Executor executor,
                             std::shared_ptr<const config::Config> config_in, const Clock& clock,
                             WorkerRuntime* previous)
    : config(std::move(config_in)), router(*config) {
  for (const auto& cluster : config->clusters) {
    ClusterRuntime* before = previous ? previous->find_cluster(cluster.name) : nullptr;
    clusters.push_back(std::make_unique<ClusterRuntime>(executor, cluster, clock, before));
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
