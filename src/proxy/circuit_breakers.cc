#include "proxy/circuit_breakers.h"

#include <algorithm>
#include <thread>
#include <utility>

namespace needle::proxy {

uint32_t per_worker_limit(uint32_t limit, unsigned workers) {
  if (limit == 0) return 0;
  const unsigned n = std::max(1u, workers);
  return std::max<uint32_t>(1, static_cast<uint32_t>((uint64_t{limit} + n - 1) / n));
}

unsigned configured_workers(const config::Config& config) {
  if (config.server.workers != 0) return config.server.workers;
  const unsigned cores = std::thread::hardware_concurrency();
  return cores == 0 ? 1 : cores;
}

CircuitBreakers::Slot::Slot(std::shared_ptr<Counts> counts, uint32_t Counts::*field)
    : counts_(std::move(counts)), field_(field) {
  ++((*counts_).*field_);
}

CircuitBreakers::Slot::Slot(Slot&& other) noexcept
    : counts_(std::move(other.counts_)), field_(other.field_) {}

CircuitBreakers::Slot& CircuitBreakers::Slot::operator=(Slot&& other) noexcept {
  if (this != &other) {
    leave();
    counts_ = std::move(other.counts_);
    field_ = other.field_;
  }
  return *this;
}

CircuitBreakers::Slot::~Slot() {
  leave();
}

void CircuitBreakers::Slot::leave() {
  if (counts_) --((*counts_).*field_);
  counts_.reset();
}

CircuitBreakers::CircuitBreakers(const config::CircuitBreakerConfig& config, unsigned workers,
                                 const CircuitBreakers* previous)
    : max_connections_(per_worker_limit(config.max_connections, workers)),
      max_pending_(per_worker_limit(config.max_pending, workers)),
      max_requests_(per_worker_limit(config.max_requests, workers)),
      counts_(previous ? previous->counts_ : std::make_shared<Counts>()) {}

std::optional<Breaker> CircuitBreakers::enter_request(Slot& slot) {
  if (max_requests_ != 0 && counts_->requests >= max_requests_) return Breaker::max_requests;
  slot = Slot(counts_, &Counts::requests);
  return std::nullopt;
}

std::optional<Breaker> CircuitBreakers::enter_pending(size_t host_connections, Slot& slot) {
  if (max_connections_ != 0 && host_connections >= max_connections_) {
    return Breaker::max_connections;
  }
  if (max_pending_ != 0 && counts_->pending >= max_pending_) return Breaker::max_pending;
  slot = Slot(counts_, &Counts::pending);
  return std::nullopt;
}

}  // namespace needle::proxy
