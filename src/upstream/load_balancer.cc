#include "upstream/load_balancer.h"

namespace needle::upstream {

bool weights_differ(std::span<const HostCandidate> hosts) {
  uint32_t seen = 0;
  for (const auto& host : hosts) {
    if (!host.usable) continue;
    if (seen != 0 && host.weight != seen) return true;
    seen = host.weight;
  }
  return false;
}

std::optional<size_t> RoundRobinBalancer::pick_weighted(std::span<const HostCandidate> hosts) {
  if (current_weight_.size() != hosts.size()) current_weight_.assign(hosts.size(), 0);
  int64_t total = 0;
  std::optional<size_t> best;
  for (size_t i = 0; i < hosts.size(); ++i) {
    if (!hosts[i].usable) continue;
    current_weight_[i] += hosts[i].weight;
    total += hosts[i].weight;
    if (!best || current_weight_[i] > current_weight_[*best]) best = i;
  }
  if (best) current_weight_[*best] -= total;
  return best;
}

std::optional<size_t> RoundRobinBalancer::pick(std::span<const HostCandidate> hosts) {
  if (weights_differ(hosts)) return pick_weighted(hosts);
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

std::optional<size_t> LeastRequestBalancer::pick_weighted(std::span<const HostCandidate> hosts) {
  double total = 0;
  for (const auto& host : hosts) {
    if (host.usable) total += host.weight / (host.active_requests + 1.0);
  }
  std::uniform_real_distribution<double> draw(0.0, total);
  double point = draw(rng_);
  std::optional<size_t> last;
  for (size_t i = 0; i < hosts.size(); ++i) {
    if (!hosts[i].usable) continue;
    last = i;
    point -= hosts[i].weight / (hosts[i].active_requests + 1.0);
    if (point < 0) return i;
  }
  return last;  // rounding left the point at the very end
}

std::optional<size_t> LeastRequestBalancer::pick(std::span<const HostCandidate> hosts) {
  if (weights_differ(hosts)) return pick_weighted(hosts);
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
    case config::LbPolicy::least_request:
      return std::make_unique<LeastRequestBalancer>();
    case config::LbPolicy::round_robin:
      break;
  }
  return std::make_unique<RoundRobinBalancer>();
}

}  // namespace needle::upstream
