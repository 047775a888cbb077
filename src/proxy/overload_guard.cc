// DownstreamSession's overload protection (docs/config.md "Rate limiting", "Circuit
// breakers"): the route's rate limit, and the replies of needle's own when a limit refuses.
#include <fmt/format.h>

#include "proxy/downstream_session.h"
#include "proxy/token_bucket.h"

namespace needle::proxy {

std::optional<Duration> DownstreamSession::rate_limit_wait() {
  const auto& route = runtime_->config->routes[route_index_];
  if (!route.rate_limit || !worker_.overload) return std::nullopt;
  auto& limiter = runtime_->rate_limiters[route_index_];
  if (!limiter) limiter = worker_.overload->rate_limiter(record_.route, *route.rate_limit);
  // Keys of the two kinds never meet: a header's value cannot pass for an address.
  std::string key = "addr:";
  key += client_address_;
  if (route.rate_limit->key == config::RateLimitKey::header) {
    if (const std::string* value = parser_.head().headers.find(route.rate_limit->header)) {
      key = "header:";
      key += *value;
    }
  }
  const RateLimiter::Verdict verdict = limiter->take(key, worker_.clock.now());
  if (verdict.allowed) return std::nullopt;
  return verdict.retry_after;
}

net::Task<bool> DownstreamSession::send_rate_limited(Duration wait) {
  worker_.overload->count_rate_limited(record_.route);
  const std::string retry_after = fmt::format("Retry-After: {}\r\n", retry_after_seconds(wait));
  const std::string detail = fmt::format("rate limit of route {} exceeded", record_.route);
  co_return co_await send_local(record_, 429, Cause::rate_limited, detail,
                                body_complete_ && may_keep_client(), retry_after);
}

net::Task<bool> DownstreamSession::send_overflow(ClusterRuntime& cluster,
                                                 observe::RequestRecord& record, Breaker breaker) {
  if (worker_.overload) worker_.overload->count_overflow(cluster.config().name, breaker);
  const std::string detail = fmt::format("cluster {}: circuit breaker {} is full",
                                         cluster.config().name, breaker_name(breaker));
  co_return co_await send_local(record, 503, Cause::upstream_overflow, detail,
                                body_complete_ && may_keep_client());
}

}  // namespace needle::proxy
