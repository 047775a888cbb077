#pragma once
// One cluster as one worker sees it: its host pools (per worker: shared nothing), the balancer
// and the retry budget. Built per config generation; see WorkerRuntime.
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config/config.h"
#include "net/io_types.h"
#include "proxy/retry_policy.h"
#include "proxy/router.h"
#include "upstream/connection_pool.h"
#include "upstream/load_balancer.h"

namespace needle::proxy {

class ClusterRuntime {
 public:
  ClusterRuntime(net::Executor executor, const config::ClusterConfig& config, const Clock& clock);
  ~ClusterRuntime();

  const config::ClusterConfig& config() const { return config_; }
  size_t host_count() const { return hosts_.size(); }
  upstream::HostPool& host(size_t index) { return *hosts_[index]; }
  const upstream::HostPool& host(size_t index) const { return *hosts_[index]; }
  const std::string& host_name(size_t index) const { return host_names_[index]; }
  RetryBudget& retry_budget() { return budget_; }

  // A usable host not in `excluded` (ejected hosts are skipped), or nullopt.
  std::optional<size_t> pick_host(const std::vector<size_t>& excluded);
  // Some usable host other than those in `excluded` exists.
  bool has_other_host(const std::vector<size_t>& excluded) const;
  void drain();

 private:
  config::ClusterConfig config_;
  std::vector<std::shared_ptr<upstream::HostPool>> hosts_;
  std::vector<std::string> host_names_;
  std::unique_ptr<upstream::LoadBalancer> balancer_;
  std::vector<upstream::HostCandidate> candidates_;  // scratch for pick_host
  RetryBudget budget_;
};

// Everything a worker needs to proxy under one config generation. A request holds a shared_ptr
// to the generation it started under, so a reload never pulls a pool from under an exchange;
// the old generation drains its pools when the last request using it finishes.
struct WorkerRuntime {
  WorkerRuntime(net::Executor executor, std::shared_ptr<const config::Config> config,
                const Clock& clock);
  ~WorkerRuntime();

  std::shared_ptr<const config::Config> config;
  Router router;
  std::vector<std::unique_ptr<ClusterRuntime>> clusters;
};

}  // namespace needle::proxy
