#pragma once
// Process-wide health of upstream hosts (issue 20; docs/architecture.md "Upstream health").
// One HostHealth per host and one ClusterHealth per cluster for the whole process, shared by
// every worker's ClusterRuntime, the active health checker and the outlier detector (both on the
// health thread, upstream/health_service.h).
//
// Who writes what:
//   - the health thread alone moves a host in and out of rotation (HostHealth::set_out) and
//     recomputes the cluster's panic flag; it also owns ActiveCheckState and OutlierState;
//   - workers read in_rotation() and panic() on every pick (one relaxed load each: a verdict
//     that reaches a worker a few microseconds late costs at most a request that the retry
//     policy covers), and report each attempt's outcome (ClusterHealth::report): a relaxed
//     increment of the host's streak on a failure, a load (and a store only when a streak was
//     running) on a success. A streak that reaches its threshold is handed to the health thread
//     (HealthEvents), which decides.
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/cause.h"
#include "base/clock.h"
#include "config/config.h"

namespace needle::upstream {

// Why a host is out of rotation: bits of HostHealth's state word.
enum class OutReason : uint8_t {
  failed_check = 1,  // the active check says unhealthy (or has not passed yet)
  ejected = 2,       // outlier detection ejected it
};

// What one attempt says about its host.
enum class AttemptOutcome : uint8_t {
  response,         // the upstream answered below 500
  response_5xx,     // the upstream answered 5xx
  gateway_failure,  // connect failure, reset on a fresh connection, timeout, invalid response
  ignored,          // says nothing about the host (client gone, needle out of fds, keep-alive
                    // race on a reused connection: DESIGN.md rule 5 covers that one)
};
AttemptOutcome classify_attempt(Cause cause, int status);

enum class EjectReason : uint8_t { consecutive_5xx, consecutive_gateway_failure, count_ };
std::string_view eject_reason_name(EjectReason reason);

// The active check's verdict on one host. States: new (never healthy: initial_state
// "unhealthy") -> healthy <-> unhealthy. The first pass of a new host brings it in at once;
// afterwards healthy_threshold consecutive passes bring an unhealthy host back and
// unhealthy_threshold consecutive failures take a healthy one out.
class ActiveCheckState {
 public:
  explicit ActiveCheckState(bool initial_healthy)
      : healthy_(initial_healthy), was_healthy_(initial_healthy) {}
  // One check result; true when the verdict changed.
  bool on_result(bool passed, uint32_t healthy_threshold, uint32_t unhealthy_threshold);
  bool healthy() const { return healthy_; }
  bool checked() const { return checked_; }
  uint32_t consecutive_passes() const { return passes_; }
  uint32_t consecutive_failures() const { return failures_; }

 private:
  bool healthy_;
  bool was_healthy_;  // healthy at some point: coming back then takes healthy_threshold
  bool checked_ = false;
  uint32_t passes_ = 0, failures_ = 0;
};

// Outlier ejection of one host. The n-th ejection lasts min(base * n, max); n decays by one per
// detection interval spent in rotation (Envoy's ejection multiplier).
class OutlierState {
 public:
  // Ejects at `now`; the ejection's length.
  Millis eject(TimePoint now, const config::OutlierDetectionConfig& config);
  // True when an ejection ended at or before `now` (the host comes back).
  bool end_if_due(TimePoint now);
  // Ends an ejection early (the active check brought the host back); true if it was ejected.
  bool end_now() { return std::exchange(ejected_until_, std::nullopt).has_value(); }
  void on_interval();  // decays the multiplier of a host not ejected
  bool ejected() const { return ejected_until_.has_value(); }
  std::optional<TimePoint> ejected_until() const { return ejected_until_; }
  uint32_t multiplier() const { return multiplier_; }

 private:
  std::optional<TimePoint> ejected_until_;
  uint32_t multiplier_ = 0;
};

// max_ejection_percent: may one more host be ejected when `ejected` of `hosts` already are? At
// most floor(hosts * percent / 100) hosts out, but at least one (percent 0: never).
bool may_eject(size_t ejected, size_t hosts, uint32_t max_percent);

class HostHealth {
 public:
  HostHealth(std::string address, bool initial_healthy);
  const std::string& address() const { return address_; }

  // --- any thread -------------------------------------------------------------------------
  bool in_rotation() const { return out_.load(std::memory_order_relaxed) == 0; }
  uint8_t out_reasons() const { return out_.load(std::memory_order_relaxed); }
  bool out_for(OutReason reason) const { return (out_reasons() & uint8_t(reason)) != 0; }
  // The outcome of one attempt; the reason whose streak reached its threshold with it (0 =
  // that streak is off), to be handed to the detector.
  std::optional<EjectReason> on_attempt(AttemptOutcome outcome, uint32_t threshold_5xx,
                                        uint32_t threshold_gateway);
  uint64_t checks(bool passed) const { return checks_[passed].load(std::memory_order_relaxed); }
  uint64_t ejections(EjectReason reason) const {
    return ejections_[size_t(reason)].load(std::memory_order_relaxed);
  }
  // The idle age at which the host last closed the checker's kept-alive connection (ms).
  std::optional<int64_t> checker_idle_close_ms() const;
  uint64_t checker_idle_closes() const { return idle_closes_.load(std::memory_order_relaxed); }

  // --- health thread only -----------------------------------------------------------------
  void set_out(OutReason reason, bool out);
  void reset_streak(EjectReason reason);
  void count_check(bool passed) { checks_[passed].fetch_add(1, std::memory_order_relaxed); }
  void count_ejection(EjectReason reason) {
    ejections_[size_t(reason)].fetch_add(1, std::memory_order_relaxed);
  }
  void note_checker_idle_close(Millis idle_age);
  ActiveCheckState& check() { return check_; }
  OutlierState& outlier() { return outlier_; }
  // When the detector last logged that max_ejection_percent kept this host in (rate limit).
  std::optional<TimePoint>& refusal_logged_at() { return refusal_logged_at_; }

 private:
  const std::string address_;
  std::atomic<uint8_t> out_{0};
  // Consecutive 5xx responses / gateway failures, process-wide (any worker).
  std::atomic<uint32_t> streak_5xx_{0};
  std::atomic<uint32_t> streak_gateway_{0};
  std::atomic<uint64_t> checks_[2] = {};  // [0] failed, [1] passed
  std::atomic<uint64_t> ejections_[size_t(EjectReason::count_)] = {};
  std::atomic<int64_t> idle_close_ms_{-1};
  std::atomic<uint64_t> idle_closes_{0};
  ActiveCheckState check_;
  OutlierState outlier_;
  std::optional<TimePoint> refusal_logged_at_;
};

class ClusterHealth;

// Where a streak that reached its threshold goes (the health thread's detector). Called on a
// worker thread; the implementation only posts.
class HealthEvents {
 public:
  virtual ~HealthEvents() = default;
  virtual void streak_reached(std::shared_ptr<ClusterHealth> cluster,
                              std::shared_ptr<HostHealth> host, EjectReason reason) = 0;
};

class ClusterHealth : public std::enable_shared_from_this<ClusterHealth> {
 public:
  ClusterHealth(std::string name, HealthEvents* events);
  const std::string& name() const { return name_; }

  // The host's state, created on first use (its initial state: out until its first check
  // passes when the cluster has an active check with initial_state = "unhealthy"). Workers call
  // it while they build a runtime; a host added at run time (discovery) gets its state here.
  std::shared_ptr<HostHealth> host(const std::string& address);
  std::vector<std::shared_ptr<HostHealth>> hosts() const;
  // Keeps only these addresses (a reload dropped the others; runtimes still holding them keep
  // their shared_ptr until their last request ends).
  void retain(const std::vector<std::string>& addresses);

  // Settings of the generation in force (control thread; read by the health thread and, for the
  // thresholds, by workers).
  void configure(const config::ClusterConfig& cluster);
  std::optional<config::HealthCheckConfig> health_check() const;
  std::optional<config::OutlierDetectionConfig> outlier_detection() const;

  // --- data path ----------------------------------------------------------------------------
  bool panic() const { return panic_.load(std::memory_order_relaxed); }
  void report(const std::shared_ptr<HostHealth>& host, AttemptOutcome outcome);
  void count_panic_pick() { panic_picks_.fetch_add(1, std::memory_order_relaxed); }
  uint64_t panic_picks() const { return panic_picks_.load(std::memory_order_relaxed); }

  // --- health thread ------------------------------------------------------------------------
  // Recomputes the panic flag after a host moved in or out: panic while hosts exist and every
  // one is out. True when the flag changed. Logs when the flag differs from what was last
  // announced, unless `quiet` (a registration: hosts not checked yet are out, and a process
  // that starts does not announce a panic before its first round of checks has said anything).
  bool recompute_panic(bool quiet = false);

 private:
  const std::string name_;
  HealthEvents* const events_;
  mutable std::mutex mutex_;  // guards hosts_ and the settings (never taken on the data path)
  std::vector<std::shared_ptr<HostHealth>> hosts_;
  std::optional<config::HealthCheckConfig> health_check_;
  std::optional<config::OutlierDetectionConfig> outlier_;
  std::atomic<uint32_t> threshold_5xx_{0};      // 0 = off
  std::atomic<uint32_t> threshold_gateway_{0};  // 0 = off
  std::atomic<bool> panic_{false};
  bool panic_announced_ = false;  // under mutex_
  std::atomic<uint64_t> panic_picks_{0};
};

// Every cluster's health, by name. Lookups lock (runtimes are built on reload, not per request).
class HealthRegistry {
 public:
  explicit HealthRegistry(HealthEvents* events) : events_(events) {}
  // The cluster's state, created on first use.
  std::shared_ptr<ClusterHealth> cluster(const std::string& name);
  std::vector<std::shared_ptr<ClusterHealth>> clusters() const;
  // Applies a config generation: settings, hosts kept, clusters dropped (control thread).
  void apply(const config::Config& config);

 private:
  HealthEvents* const events_;
  mutable std::mutex mutex_;
  std::vector<std::shared_ptr<ClusterHealth>> clusters_;
};

}  // namespace needle::upstream
