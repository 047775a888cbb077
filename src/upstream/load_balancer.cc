#include "upstream/load_balancer.h"

namespace needle::upstream {

std::optional<size_t> RoundRobinBalancer::pick(std::span<const HostCandidate> hosts) {
  // Start where the last pick left off; skip unusable hosts without losing fairness among
  // the usable ones.
  for (size_t step = 0; step < hosts.size(); ++step) {
    size_t index = (next_ + step) % hosts.size();
    if (hosts[index].usable) {
      next_ = index + 1;
      return index;
    }
  }
  return std::nullopt;
}

LeastRequestBalancer::LeastRequestBalancer(uint64_t seed) : rng_(seed) {}

std::optional<size_t> LeastRequestBalancer::pick(std::span<const HostCandidate> hosts) {
  size_t usable = 0;
  for (const auto& host : hosts) usable += host.usable ? 1 : 0;
  if (usable == 0) return std::nullopt;
  // The n-th usable host, n drawn uniformly.
  auto nth_usable = [&](size_t n) {
    for (size_t i = 0; i < hosts.size(); ++i) {
      if (hosts[i].usable && n-- == 0) return i;
    }
    return hosts.size();  // unreachable: n < usable
  };
  std::uniform_int_distribution<size_t> draw(0, usable - 1);
  size_t first = nth_usable(draw(rng_));
  if (usable == 1) return first;
  size_t second = nth_usable(draw(rng_));
  // Ties go to the first draw.
  return hosts[second].active_requests < hosts[first].active_requests ? second : first;
}

std::unique_ptr<LoadBalancer> make_load_balancer(config::LbPolicy policy) {
  switch (policy) {
    case config::LbPolicy::least_request: return std::make_unique<LeastRequestBalancer>();
    case config::LbPolicy::round_robin: break;
  }
  return std::make_unique<RoundRobinBalancer>();
}

}  // namespace needle::upstream
