#pragma once
// Process-wide overload protection state shared by the workers (docs/config.md "Circuit
// breakers", "Rate limiting"): the routes' rate limiters, and the counts of refused requests.
// Every method may be called from any thread; the counts take a mutex only when a request is
// refused.
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>

#include "config/config.h"
#include "observe/overload_metrics.h"
#include "proxy/rate_limiter.h"

namespace needle::proxy {

enum class Breaker { max_connections, max_pending, max_requests };
std::string_view breaker_name(Breaker breaker);

class OverloadState {
 public:
  // The limiter of route `route`: the same one (and its buckets) as long as the route's
  // rate_limit settings stay the same across reloads; a fresh one when they change.
  std::shared_ptr<RateLimiter> rate_limiter(const std::string& route,
                                            const config::RateLimitConfig& config);
  void count_overflow(std::string_view cluster, Breaker breaker);
  void count_rate_limited(std::string_view route);
  // Overflow and rate-limited counts (dns and hosts are filled by the server).
  observe::OverloadMetrics snapshot() const;

 private:
  mutable std::mutex mutex_;
  std::map<std::string, std::shared_ptr<RateLimiter>> limiters_;
  std::map<std::pair<std::string, std::string>, uint64_t> overflow_;
  std::map<std::string, uint64_t> rate_limited_;
};

}  // namespace needle::proxy
