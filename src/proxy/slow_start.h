#pragma once
// Slow start (docs/config.md "Slow start"): a host that just became available (a new address,
// a host added by a reload, or one back from ejection) is offered a share of its normal
// traffic that grows linearly from kSlowStartFloor to all of it over the window. Pure.
#include <algorithm>
#include <chrono>

#include "base/clock.h"

namespace needle::proxy {

inline constexpr double kSlowStartFloor = 0.1;  // as Envoy's min_weight_percent default

// The share in [kSlowStartFloor, 1] of a host available for `age`; 1 when `window` is 0.
inline double slow_start_share(Millis window, Duration age) {
  if (window <= Millis(0) || age >= window) return 1.0;
  if (age <= Duration::zero()) return kSlowStartFloor;
  const double progress = std::chrono::duration<double>(age) / window;
  return std::clamp(progress, kSlowStartFloor, 1.0);
}

}  // namespace needle::proxy
