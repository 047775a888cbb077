#pragma once
// One cluster's circuit breakers as one worker sees them (docs/config.md "Circuit breakers").
// Per worker, like Envoy's per-thread limits: each configured limit is divided among the
// workers (rounded up, at least 1), so the process-wide bound holds without a shared counter
// on the data path; a worker may refuse while another still has room (error: at most
// workers - 1 requests under the bound process-wide, never over it by more than the rounding).
// Worker thread only. The counts outlive a config generation: a reload's new ClusterRuntime
// shares them with the old one, so requests still in flight under the old one keep counting.
#include <cstdint>
#include <memory>
#include <optional>

#include "config/config.h"
#include "proxy/overload_state.h"

namespace needle::proxy {

// ceil(limit / workers), at least 1; 0 (unlimited) stays 0.
uint32_t per_worker_limit(uint32_t limit, unsigned workers);
// config.server.workers, or the number of cores when 0 (as server::effective_worker_count).
unsigned configured_workers(const config::Config& config);

class CircuitBreakers {
 public:
  struct Counts {
    uint32_t requests = 0;  // requests in flight to the cluster on this worker
    uint32_t pending = 0;   // of those, waiting for a new connection
  };

  // Holds one count while alive (move-only).
  class Slot {
   public:
    Slot() = default;
    Slot(std::shared_ptr<Counts> counts, uint32_t Counts::*field);
    Slot(Slot&& other) noexcept;
    Slot& operator=(Slot&& other) noexcept;
    ~Slot();

   private:
    void leave();
    std::shared_ptr<Counts> counts_;
    uint32_t Counts::*field_ = nullptr;
  };

  // `previous`: the same cluster's breakers in the generation being replaced, or null.
  CircuitBreakers(const config::CircuitBreakerConfig& config, unsigned workers,
                  const CircuitBreakers* previous);

  // The breaker that refuses a new request, or nullopt (then the Slot counts it).
  std::optional<Breaker> enter_request(Slot& slot);
  // The breaker that refuses to open a new connection to a host that already has
  // `host_connections` (idle + busy + connecting), or nullopt (then the Slot counts it pending).
  std::optional<Breaker> enter_pending(size_t host_connections, Slot& slot);

  const Counts& counts() const { return *counts_; }
  uint32_t max_connections() const { return max_connections_; }
  uint32_t max_pending() const { return max_pending_; }
  uint32_t max_requests() const { return max_requests_; }

 private:
  uint32_t max_connections_;
  uint32_t max_pending_;
  uint32_t max_requests_;
  std::shared_ptr<Counts> counts_;
};

}  // namespace needle::proxy
