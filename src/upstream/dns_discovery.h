#pragma once
// DNS discovery (docs/architecture.md "Discovery by DNS"): the host names of every cluster's
// `hosts`, resolved with c-ares once per process on a thread of its own (the "needle-dns"
// thread; never a worker, never the control thread), re-resolved at the record's TTL bounded by
// dns_refresh_min/max, or every dns_refresh. A failed resolution keeps the last good answer,
// counts the failure and logs it. When an answer changes, `on_change` runs on the discovery
// thread; the caller (server/) then builds the workers' config with expand_resolved_hosts().
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "base/clock.h"
#include "config/config.h"
#include "upstream/resolved_hosts.h"

namespace needle::upstream {

struct DnsTargetStats {
  std::string cluster;
  std::string name;
  uint64_t resolutions = 0;  // attempts, successful or not
  uint64_t failures = 0;     // attempts that kept the last answer
  size_t addresses = 0;      // in the answer in use
  Millis next_refresh{0};    // the period chosen after the last attempt
};

class DnsDiscovery {
 public:
  using OnChange = std::function<void()>;
  explicit DnsDiscovery(OnChange on_change);
  ~DnsDiscovery();  // stops and joins the thread
  DnsDiscovery(const DnsDiscovery&) = delete;
  DnsDiscovery& operator=(const DnsDiscovery&) = delete;

  // The names to resolve: every non-literal host of `declared`'s clusters. Names kept keep
  // their answer and counters; new ones are resolved at once. Any thread.
  void set_targets(const config::Config& declared);
  // Waits until every target has been tried once (or `at_most` passed); true if all were.
  bool wait_first_round(Millis at_most);
  ResolvedNames answers() const;
  std::vector<DnsTargetStats> stats() const;

 private:
  struct Target {
    ResolvedName answer;
    config::DnsDiscoveryConfig settings;
    TimePoint next_due{};
    DnsTargetStats stats;
    uint64_t failure_streak = 0;  // failures since the last good answer (logging)
    bool tried = false;
  };
  void run();
  // The period until the next resolution after an answer (ttl: nullopt for a failure).
  static Millis refresh_after(const config::DnsDiscoveryConfig& settings, bool ok,
                              std::optional<Millis> ttl);
  friend struct DnsDiscoveryTestPeer;

  OnChange on_change_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;   // targets changed, or stop
  std::condition_variable tried_;  // a target was tried
  std::vector<Target> targets_;    // guarded by mutex_
  bool stop_ = false;              // guarded by mutex_
  std::thread thread_;             // started by the first set_targets with a name
};

}  // namespace needle::upstream
