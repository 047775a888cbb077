#pragma once
// A token bucket (docs/config.md "Rate limiting"): `rate` tokens a second, at most `burst`
// held, full at creation. Pure: the caller passes the time, so tests need no clock.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <optional>

#include "base/clock.h"

namespace needle::proxy {

struct TokenBucket {
  double tokens = 0;
  TimePoint updated{};

  static TokenBucket full(uint32_t burst, TimePoint now) {
    return TokenBucket{static_cast<double>(burst), now};
  }

  // Refills for the time since `updated`, then takes one token. nullopt: taken; otherwise the
  // wait until a token will be there (nothing is taken).
  std::optional<Duration> take(double rate, uint32_t burst, TimePoint now) {
    refill(rate, burst, now);
    if (tokens >= 1.0) {
      tokens -= 1.0;
      return std::nullopt;
    }
    const double seconds = (1.0 - tokens) / rate;
    return std::chrono::duration_cast<Duration>(std::chrono::duration<double>(seconds));
  }

  // Whether the bucket would be full at `now` (a full bucket carries no state worth keeping).
  bool full_at(double rate, uint32_t burst, TimePoint now) const {
    const double elapsed = std::chrono::duration<double>(now - updated).count();
    return tokens + elapsed * rate >= static_cast<double>(burst);
  }

 private:
  void refill(double rate, uint32_t burst, TimePoint now) {
    if (now > updated) {
      const double elapsed = std::chrono::duration<double>(now - updated).count();
      tokens = std::min(static_cast<double>(burst), tokens + elapsed * rate);
      updated = now;
    }
  }
};

// Retry-After in whole seconds (RFC 9110 10.2.3) for a wait: rounded up, at least 1.
inline int64_t retry_after_seconds(Duration wait) {
  const double seconds = std::chrono::duration<double>(wait).count();
  return std::max<int64_t>(1, static_cast<int64_t>(std::ceil(seconds)));
}

}  // namespace needle::proxy
