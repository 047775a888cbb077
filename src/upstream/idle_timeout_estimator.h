#pragma once
// How long a pooled connection to one upstream host may sit idle before needle must stop
// reusing it (DESIGN.md "The race-free pool", rules 3 and 4; the evidence model is
// docs/decisions/0006-idle-close-evidence.md). Pure logic: no clock, no sockets; the pool feeds
// it timestamped observations and asks for limits.
//
// Knowledge, each optional:
//   configured C  - the cluster's idle_timeout (the operator says the upstream closes at C)
//   hint H        - latest "Keep-Alive: timeout=N" from the upstream
//   learned L     - smallest age among the recent closes judged to be idle-timeout closes
//   survived S    - largest idle age a sentinel connection was seen still open
// Upstream timeout estimate U = min(C, H, L) over those present. Effective limit =
// U - margin(U), margin(x) = max(margin_min, margin_ratio * x). With none of C/H/L known the
// limit is max(initial_limit, S - margin(S)) and the source is "default" (or "learned" once a
// sentinel survived), and the pool keeps one sentinel connection probing up to sentinel_horizon().
//
// A close is idle-timeout evidence only if nothing else explains it. Every close is kept in a
// small ring with a verdict (CloseVerdict), and L is the minimum over the ring's idle_timeout
// verdicts, recomputed whenever a verdict changes (closes are rare; checkout never pays for it):
//   - burst: closes seen within kBurstWindow of each other whose idle ages disagree (beyond
//     age_tolerance) are one event closing connections of different ages at once (a restart, a
//     graceful shutdown): restart_burst, all of them, also the ones already learned.
//   - outlier: a close far below a proven age P = max(S, proven reuse) (age < P - margin(P)) is
//     a suspect: not learned; a second suspect of agreeing age, outside the first one's burst
//     window, confirms both (the upstream really got shorter: the proven ages are forgotten).
//     Suspects already bound non_replayable_limit() (a fresh connection is cheap).
//   - restart: a connect refusal within kRestartConfirmWindow after closes turns their
//     idle_timeout and suspect verdicts into restart_confirmed.
//   - request cap: kCapRepeats consecutive closes after the same number N >= 2 of requests, and
//     no connection ever proven to serve a request after N: request_cap; request_cap() says N
//     and the pool retires connections at N requests instead of learning a timeout.
//   - disproof: a sentinel that survives, or a reuse that succeeds, at an idle age above a
//     learned or suspect close turns it into disproven. This is how a wrong L never pins the
//     limit: while L binds, wants_sentinel() re-probes up to sentinel_horizon() (above L).
// Other rules (each one unit-tested in tests/unit/upstream/idle_timeout_estimator_test.cc):
//   - on_hint keeps the latest hint, not the smallest: the upstream's current config wins, and a
//     hint that grows again after a redeploy raises the limit again.
//   - on_reuse_succeeded keeps the largest idle age a reuse was proven to survive.
//   - Limits never go below 0 (a limit of 0 means "never reuse").
//   - non_replayable_limit(): effective_limit() once C, H or L is known, lowered to below any
//     suspect; while the limit is only the default guess (or raised by sentinel survival), it is
//     min(effective_limit, P - margin(P)), or 0 when nothing is proven yet: a non-replayable
//     request only reuses a connection at an idle age the upstream was seen to keep.
//   - wants_sentinel(): with learn, while none of C, H, L is known or L binds, and the horizon is
//     not exhausted. Without learn, only while L binds and reuse_stopped(): a sentinel is then
//     the only way back to pooling.
//   - sentinel_horizon(): while L binds, min(max(2L, L + margin_min), C, H, max_horizon);
//     otherwise min(2 * max(initial_limit, S), max_horizon): each survival doubles it.
//   - source(): which knowledge sets the limit; ties between C, H and L go to configured, then
//     hint, then learned. Without C/H/L: learned when S - margin(S) exceeds initial_limit, else
//     default_initial.
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "base/clock.h"

namespace needle::upstream {

enum class IdleLimitSource { configured, hint, learned, default_initial };
std::string_view idle_limit_source_name(IdleLimitSource source);

// What one close was judged to be (the current verdict; later evidence may change it).
enum class CloseVerdict : uint8_t {
  idle_timeout,       // learned: the upstream's idle timeout explains it
  suspect,            // far below a proven age: held until repeated
  restart_burst,      // one of several closes at once with different ages
  restart_confirmed,  // a connect refusal followed
  request_cap,        // always after the same number of requests
  disproven,          // a longer idle period survived afterwards
  count_
};
std::string_view close_verdict_name(CloseVerdict verdict);

// An idle connection (or the sentinel) found closed by the upstream.
struct IdleClose {
  TimePoint at;               // when the pool saw it
  Millis idle_age{0};         // idle since the end of its last response
  uint32_t requests_done = 0; // exchanges completed on the connection
};

class IdleTimeoutEstimator {
 public:
  static constexpr Millis kBurstWindow = Millis(50);
  static constexpr Millis kRestartConfirmWindow = Millis(2000);
  static constexpr Millis kMinAgeTolerance = Millis(25);  // > two idle-watch windows
  static constexpr uint32_t kCapRepeats = 3;
  static constexpr size_t kHistory = 16;
  // Below this effective limit pooling has stopped in practice (DESIGN.md rule 4: never without
  // a warning). Equal to the default margin_min: a learned close below it leaves a limit of 0.
  static constexpr Millis kReuseFloor = Millis(100);

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
  void on_idle_close(const IdleClose& close);  // upstream closed an idle (or sentinel) connection
  void on_sentinel_survived(Millis idle_age);// sentinel still open at this idle age
  // A reused connection answered after sitting idle this long (proof the upstream keeps >= age)
  // and after `requests_before` earlier exchanges (proof any request cap is above that). Hot path:
  // two compares unless it disproves a close.
  void on_reuse_succeeded(Millis idle_age, uint32_t requests_before = 0);
  void on_connect_refused(TimePoint at);     // the host refused a new connection

  // Never reuse a connection whose idle age is >= this.
  Millis effective_limit() const;
  // Stricter limit for requests that cannot be replayed (non-idempotent, body not buffered):
  // while the limit is only the default guess, reuse them only below an idle age that was
  // proven safe (minus margin), so a wrong guess costs a fresh connection, never a 502.
  Millis non_replayable_limit() const;
  IdleLimitSource source() const;
  bool reuse_stopped() const { return effective_limit() < kReuseFloor; }

  std::optional<Millis> configured() const { return settings_.configured; }
  std::optional<Millis> hint() const { return hint_; }
  std::optional<Millis> learned() const { return learned_close_; }
  std::optional<Millis> survived() const { return survived_; }
  std::optional<Millis> suspect() const { return suspect_; }  // smallest suspect age
  std::optional<uint32_t> request_cap() const { return request_cap_; }
  // The most recent close and its verdict now (for the warning and /pools).
  std::optional<IdleClose> last_close() const;
  std::optional<CloseVerdict> last_verdict() const;
  // Verdicts given, counting re-classifications too (a learned close later found to be part of
  // a burst counts once as idle_timeout and once as restart_burst).
  uint64_t verdicts(CloseVerdict verdict) const {
    return verdict_counts_[static_cast<size_t>(verdict)];
  }
  // Bumped whenever the limit may have moved for a reason other than a hint (callers compare).
  uint64_t revision() const { return revision_; }

  // Sentinel probing: keep one idle connection past the limit, never used for requests.
  bool wants_sentinel() const;
  Millis sentinel_horizon() const;   // close the sentinel ourselves at this idle age
  Millis margin_for(Millis limit) const;
  Millis age_tolerance(Millis a, Millis b) const;

  // What was observed about the host, carried to the new process of a binary upgrade
  // (docs/decisions/0009-binary-upgrade.md). Closes keep their verdicts and their time relative
  // to `now`; restore() takes them as judged (no re-classification) into an estimator that has
  // seen nothing yet, and counts no verdicts (those count what this process judged).
  struct Evidence {
    struct Close {
      Millis ago{0};  // seen this long before the evidence was taken
      Millis idle_age{0};
      uint32_t requests_done = 0;
      CloseVerdict verdict = CloseVerdict::idle_timeout;
    };
    std::optional<Millis> hint, survived, proven_reuse;
    std::optional<uint32_t> request_cap;
    uint32_t max_requests_before_reuse = 0;
    std::vector<Close> closes;  // oldest first, at most kHistory
  };
  Evidence evidence(TimePoint now) const;
  void restore(const Evidence& evidence, TimePoint now);

 private:
  struct Record {
    IdleClose close;
    CloseVerdict verdict = CloseVerdict::idle_timeout;
  };
  // min(C, H, L) over those present; nullopt while the limit is only a guess.
  std::optional<Millis> upstream_estimate() const;
  bool learned_binds() const;
  Millis minus_margin(Millis x) const;
  std::optional<Millis> proven() const;
  Record& record(size_t back);  // 0 = newest
  const Record& record(size_t back) const;
  void set_verdict(Record& r, CloseVerdict verdict);
  CloseVerdict classify(const IdleClose& close);
  bool is_burst(const IdleClose& close);
  bool is_request_cap(const IdleClose& close);
  bool confirms_suspect(const IdleClose& close);
  void disprove_below(Millis idle_age);
  void recompute();

  Settings settings_;
  std::optional<Millis> hint_;
  std::optional<Millis> learned_close_;  // derived from history_ by recompute()
  std::optional<Millis> suspect_;        // derived
  std::optional<Millis> survived_;
  std::optional<Millis> proven_reuse_;
  std::optional<uint32_t> request_cap_;
  uint32_t max_requests_before_reuse_ = 0;
  // Smallest learned or suspect age: a reuse above it disproves something (hot-path compare).
  Millis disproof_threshold_ = Millis::max();
  // The last kHistory closes, a ring: history_[(next_ - 1) % kHistory] is the newest.
  std::array<Record, kHistory> history_{};
  size_t next_ = 0, size_ = 0;
  std::array<uint64_t, static_cast<size_t>(CloseVerdict::count_)> verdict_counts_{};
  uint64_t revision_ = 0;
};

}  // namespace needle::upstream
