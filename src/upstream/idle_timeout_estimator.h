#pragma once
// How long a pooled connection to one upstream host may sit idle before needle must stop
// reusing it (DESIGN.md "The race-free pool", rules 3 and 4). Pure logic: no clock, no sockets;
// the pool feeds it observations and asks for limits.
//
// Knowledge, each optional:
//   configured C  - the cluster's idle_timeout (the operator says the upstream closes at C)
//   hint H        - latest "Keep-Alive: timeout=N" from the upstream
//   learned L     - smallest idle age at which the upstream was seen closing an idle connection
//   survived S    - largest idle age a sentinel connection was seen still open
// Upstream timeout estimate U = min(C, H, L) over those present. Effective limit =
// U - margin(U), margin(x) = max(margin_min, margin_ratio * x). With none of C/H/L known the
// limit is max(initial_limit, S - margin(S)) and the source is "default" (or "learned" once a
// sentinel survived), and the pool keeps one sentinel connection probing up to sentinel_horizon().
#include <optional>
#include <string_view>

#include "base/clock.h"

namespace needle::upstream {

enum class IdleLimitSource { configured, hint, learned, default_initial };
std::string_view idle_limit_source_name(IdleLimitSource source);

class IdleTimeoutEstimator {
 public:
  struct Settings {
    std::optional<Millis> configured;
    Millis initial_limit = Millis(1500);
    Millis margin_min = Millis(100);
    double margin_ratio = 0.10;
    bool learn = true;                    // sentinel probing enabled
    Millis max_horizon = Millis(300'000); // sentinels never probe past this idle age
  };

  explicit IdleTimeoutEstimator(const Settings& settings);

  void on_hint(Millis hint);                 // every response carrying a Keep-Alive timeout
  void on_idle_close(Millis idle_age);       // upstream closed an idle (or sentinel) connection
  void on_sentinel_survived(Millis idle_age);// sentinel still open at this idle age
  // A reused connection answered after sitting idle this long (proof the upstream keeps >= age).
  void on_reuse_succeeded(Millis idle_age);

  // Never reuse a connection whose idle age is >= this.
  Millis effective_limit() const;
  // Stricter limit for requests that cannot be replayed (non-idempotent, body not buffered):
  // while the limit is only the default guess, reuse them only below an idle age that was
  // proven safe (minus margin), so a wrong guess costs a fresh connection, never a 502.
  Millis non_replayable_limit() const;
  IdleLimitSource source() const;

  std::optional<Millis> configured() const { return settings_.configured; }
  std::optional<Millis> hint() const { return hint_; }
  std::optional<Millis> learned() const { return learned_close_; }
  std::optional<Millis> survived() const { return survived_; }

  // Sentinel probing: keep one idle connection past the limit, never used for requests.
  bool wants_sentinel() const;
  Millis sentinel_horizon() const;   // close the sentinel ourselves at this idle age
  Millis margin_for(Millis limit) const;

 private:
  Settings settings_;
  std::optional<Millis> hint_;
  std::optional<Millis> learned_close_;
  std::optional<Millis> survived_;
  std::optional<Millis> proven_reuse_;
};

}  // namespace needle::upstream
