#pragma once
// Host selection within a cluster. Works on a span of candidates so it needs no sockets;
// ejected hosts and hosts already tried by this request are skipped by the caller's filter.
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <span>

#include "config/config.h"

namespace needle::upstream {

struct HostCandidate {
  uint32_t active_requests = 0;
  bool usable = true;  // false: ejected, or excluded by the caller (already tried)
};

class LoadBalancer {
 public:
  virtual ~LoadBalancer() = default;
  // Index of the chosen host, or nullopt when no candidate is usable.
  virtual std::optional<size_t> pick(std::span<const HostCandidate> hosts) = 0;
};

// Round robin over usable hosts.
class RoundRobinBalancer final : public LoadBalancer {
 public:
  std::optional<size_t> pick(std::span<const HostCandidate> hosts) override;

 private:
  size_t next_ = 0;
};

// Power of two choices on active requests (Mitzenmacher); ties go to the first draw.
class LeastRequestBalancer final : public LoadBalancer {
 public:
  explicit LeastRequestBalancer(uint64_t seed = std::random_device{}());
  std::optional<size_t> pick(std::span<const HostCandidate> hosts) override;

 private:
  std::mt19937_64 rng_;
};

std::unique_ptr<LoadBalancer> make_load_balancer(config::LbPolicy policy);

}  // namespace needle::upstream
