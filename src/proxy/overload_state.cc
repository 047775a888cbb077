#include "proxy/overload_state.h"

namespace needle::proxy {
namespace {

bool same_limit(const config::RateLimitConfig& a, const config::RateLimitConfig& b) {
  return a.rate == b.rate && a.burst == b.burst && a.key == b.key && a.header == b.header &&
         a.max_keys == b.max_keys;
}

}  // namespace

std::string_view breaker_name(Breaker breaker) {
  switch (breaker) {
    case Breaker::max_connections:
      return "max_connections";
    case Breaker::max_pending:
      return "max_pending";
    case Breaker::max_requests:
      return "max_requests";
  }
  return "unknown";
}

std::shared_ptr<RateLimiter> OverloadState::rate_limiter(const std::string& route,
                                                         const config::RateLimitConfig& config) {
  std::lock_guard lock(mutex_);
  auto& limiter = limiters_[route];
  if (!limiter || !same_limit(limiter->config(), config)) {
    limiter = std::make_shared<RateLimiter>(config);
  }
  return limiter;
}

void OverloadState::count_overflow(std::string_view cluster, Breaker breaker) {
  std::lock_guard lock(mutex_);
  ++overflow_[{std::string(cluster), std::string(breaker_name(breaker))}];
}

void OverloadState::count_rate_limited(std::string_view route) {
  std::lock_guard lock(mutex_);
  ++rate_limited_[std::string(route)];
}

observe::OverloadMetrics OverloadState::snapshot() const {
  std::lock_guard lock(mutex_);
  observe::OverloadMetrics metrics;
  for (const auto& [key, count] : overflow_) {
    metrics.overflow.push_back({key.first, key.second, count});
  }
  for (const auto& [route, count] : rate_limited_) metrics.rate_limited.push_back({route, count});
  return metrics;
}

}  // namespace needle::proxy
