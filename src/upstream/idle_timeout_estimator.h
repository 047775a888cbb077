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
//
// Rules (each one unit-tested in tests/unit/upstream/idle_timeout_estimator_test.cc):
//   - on_hint keeps the latest hint, not the smallest: the upstream's current config wins, and a
//     hint that grows again after a redeploy raises the limit again.
//   - on_idle_close keeps the smallest close age. Ages below kMinPlausibleIdleClose are ignored
//     and only counted (implausible_closes()): a close that soon after a response is an upstream
//     restart or a server that closes without saying "Connection: close", not an idle timeout;
//     learning it would drive the limit to 0 and turn pooling off for good.
//   - on_reuse_succeeded keeps the largest idle age a reuse was proven to survive.
//   - Limits never go below 0 (a limit of 0 means "never reuse").
//   - non_replayable_limit(): equal to effective_limit() once C, H or L is known; while the limit
//     is only the default guess (or raised by sentinel survival), it is
//     min(effective_limit, P - margin(P)) with P = max(S, proven reuse), or 0 when nothing is
//     proven yet: a non-replayable request only reuses a connection at an idle age the upstream
//     was seen to keep.
//   - wants_sentinel(): learn && none of C, H, L known && the horizon is not exhausted (a
//     sentinel that survived max_horizon has nothing left to teach).
//   - sentinel_horizon(): min(2 * max(initial_limit, S), max_horizon): each survival doubles it.
//   - source(): which knowledge sets the limit; ties between C, H and L go to configured, then
//     hint, then learned. Without C/H/L: learned when S - margin(S) exceeds initial_limit, else
//     default_initial.
#include <cstdint>
#include <optional>
#include <string_view>

#include "base/clock.h"

namespace needle::upstream {

enum class IdleLimitSource { configured, hint, learned, default_initial };
std::string_view idle_limit_source_name(IdleLimitSource source);

class IdleTimeoutEstimator {
 public:
  static constexpr Millis kMinPlausibleIdleClose = Millis(10);

  struct Settings {
    std::optional<Millis> configured;
    Millis initial_limit = Millis(1500);
    Millis margin_min = Millis(100);
    double margin_ratio = 0.10;
    bool learn = true;                    // sentinel probing enabled
    Millis max_horizon = Millis(300'000); // sentinels never probe past this idle age
  };

  explicit IdleTimeoutEstimator(const Settings& settings);
  // A reload changed the cluster's settings (docs/architecture.md "Reload and shutdown"): the
  // new ones apply at once; what was observed about the upstream (hint, learned close, sentinel
  // survival, proven reuse) is about the host, not about needle's settings, and stays.
  void reconfigure(const Settings& settings) { settings_ = settings; }

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
  uint64_t implausible_closes() const { return implausible_closes_; }

 private:
  // min(C, H, L) over those present; nullopt while the limit is only a guess.
  std::optional<Millis> upstream_estimate() const;
  Millis minus_margin(Millis x) const;

  Settings settings_;
  std::optional<Millis> hint_;
  std::optional<Millis> learned_close_;
  std::optional<Millis> survived_;
  std::optional<Millis> proven_reuse_;
  uint64_t implausible_closes_ = 0;
};

}  // namespace needle::upstream
