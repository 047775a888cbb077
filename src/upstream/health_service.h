#pragma once
// The health thread (issue 20; docs/architecture.md "Upstream health"): one per process, with
// its own io_context, running every active health check (HealthChecker) and the outlier
// detector's decisions. Its own thread rather than the control thread's io_context: the
// control thread blocks for up to 2 s gathering a scrape from the workers (server/observability)
// and parses files on reload, and a check's timeout and an ejection's end must not wait for
// either. Workers never wait for it: verdicts reach them as HostHealth's atomic state, and what
// they report (a streak at its threshold) is posted to it.
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <utility>

#include <asio/io_context.hpp>

#include "base/clock.h"
#include "config/config.h"
#include "net/io_types.h"
#include "upstream/health_checker.h"
#include "upstream/host_health.h"

namespace needle::upstream {

class HealthService final : public HealthEvents {
 public:
  // `idle_close_sink(cluster, host, close)`: a checker connection the host closed while idle,
  // called on the health thread (the server posts it to every worker's pool of that host).
  using IdleCloseSink =
      std::function<void(const std::string&, const std::string&, const IdleClose&)>;
  HealthService(const Clock& clock, IdleCloseSink idle_close_sink);
  ~HealthService() override;

  HealthRegistry& registry() { return registry_; }
  // Starts the thread and the first round of checks of the hosts registered so far
  // (registry().apply first), and returns once every checked host has its first verdict or
  // `wait_at_most` has passed: a process starts with verdicts, not with every host unknown.
  void start(Millis wait_at_most);
  // A reload (control thread): settings and hosts now; checkers start and stop on the thread.
  void reconfigure(const config::Config& config);
  void stop();

  // HealthEvents (worker threads): posts the decision to the health thread.
  void streak_reached(std::shared_ptr<ClusterHealth> cluster, std::shared_ptr<HostHealth> host,
                      EjectReason reason) override;

 private:
  using HostKey = std::pair<std::string, std::string>;  // cluster, address
  void reconcile();
  void start_checker(const std::shared_ptr<ClusterHealth>& cluster,
                     const std::shared_ptr<HostHealth>& host);
  void on_check_result(ClusterHealth& cluster, HostHealth& host, const CheckResult& result);
  void eject(const std::shared_ptr<ClusterHealth>& cluster, const std::shared_ptr<HostHealth>& host,
             EjectReason reason);
  void end_ejection(const std::shared_ptr<ClusterHealth>& cluster,
                    const std::shared_ptr<HostHealth>& host);
  void tick();
  void first_result_seen(const HostKey& key);

  const Clock& clock_;
  IdleCloseSink idle_close_sink_;
  HealthRegistry registry_;
  asio::io_context io_{1};
  std::thread thread_;
  // Health thread only.
  std::map<HostKey, std::shared_ptr<HealthChecker>> checkers_;
  std::optional<net::Timer> tick_timer_;
  std::map<std::string, TimePoint> last_decay_;  // per cluster: the last multiplier decay
  // Hosts whose first check has not answered yet (start() waits for none left).
  std::mutex first_round_mutex_;
  std::condition_variable first_round_done_;
  std::set<HostKey> first_round_pending_;
};

}  // namespace needle::upstream
