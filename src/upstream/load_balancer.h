#pragma once
// Host selection within a cluster. Works on a span of candidates so it needs no sockets;
// ejected hosts and hosts already tried by this request are skipped by the caller's filter.
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <span>
#include <vector>

#include "config/config.h"

namespace needle::upstream {

struct HostCandidate {
  uint32_t active_requests = 0;
  bool usable = true;   // false: ejected, or excluded by the caller (already tried)
  uint32_t weight = 1;  // the host's configured weight (docs/config.md "Weighted hosts")
};

class LoadBalancer {
 public:
  virtual ~LoadBalancer() = default;
  // Index of the chosen host, or nullopt when no candidate is usable.
  virtual std::optional<size_t> pick(std::span<const HostCandidate> hosts) = 0;
};

// Round robin over usable hosts. With unequal weights: nginx's smooth weighted round robin
// (each pick adds every usable host's weight to its current weight, takes the largest and
// subtracts the total from it), which spreads a host's share evenly instead of in bursts:
// weights 5, 1, 1 give a a b a c a a.
class RoundRobinBalancer final : public LoadBalancer {
 public:
  std::optional<size_t> pick(std::span<const HostCandidate> hosts) override;

 private:
  std::optional<size_t> pick_weighted(std::span<const HostCandidate> hosts);

  size_t next_ = 0;
  std::vector<int64_t> current_weight_;  // per host; resized only when the host count changes
};

// Power of two choices on active requests (Mitzenmacher); ties go to the first draw. With
// unequal weights, Envoy's weighted least request: each usable host is drawn with probability
// proportional to weight / (active_requests + 1) (Envoy's active_request_bias of 1.0).
class LeastRequestBalancer final : public LoadBalancer {
 public:
  explicit LeastRequestBalancer(uint64_t seed = std::random_device{}());
  std::optional<size_t> pick(std::span<const HostCandidate> hosts) override;

 private:
  std::optional<size_t> pick_weighted(std::span<const HostCandidate> hosts);

  std::mt19937_64 rng_;
};

// True when the usable hosts do not all have the same weight.
bool weights_differ(std::span<const HostCandidate> hosts);

std::unique_ptr<LoadBalancer> make_load_balancer(config::LbPolicy policy);

}  // namespace needle::upstream
