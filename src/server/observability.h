#pragma once
// Process-wide observability services and their per-worker faces: the access-log sink (one per
// process, written only at flush), the alert notifier (its own thread), and for each worker an
// observer holding that worker's metrics shard and access-log buffer. Scrapes gather copies of
// the shards and pool states on each worker's own thread, then render off the data path.
#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "config/config.h"
#include "observe/access_log.h"
#include "observe/alert_notifier.h"
#include "observe/health_snapshot.h"
#include "observe/pool_snapshot.h"
#include "server/worker.h"
#include "upstream/host_health.h"

namespace needle::server {

// The alert notifier in force: a copy of the pointer for each 5xx a worker reports, a swap for
// a reload. A mutex rather than std::atomic<std::shared_ptr>: libstdc++ 12 implements the latter
// with a lock bit whose relaxed unlock gives ThreadSanitizer no order between a reader and the
// next swap (reported as a race), and only 5xx responses take this lock.
class CurrentNotifier {
 public:
  std::shared_ptr<observe::AlertNotifier> load() const {
    std::lock_guard lock(mutex_);
    return notifier_;
  }
  std::shared_ptr<observe::AlertNotifier> exchange(std::shared_ptr<observe::AlertNotifier> next) {
    std::lock_guard lock(mutex_);
    notifier_.swap(next);
    return next;
  }

 private:
  mutable std::mutex mutex_;
  std::shared_ptr<observe::AlertNotifier> notifier_;
};

class Observability {
 public:
  explicit Observability(const config::Config& config);
  ~Observability();

  std::unique_ptr<WorkerObserver> make_worker_observer(unsigned index);
  std::string render_metrics(std::vector<std::unique_ptr<Worker>>& workers);
  std::string render_pools(std::vector<std::unique_ptr<Worker>>& workers);
  void reopen_logs();
  void stop();

  // Reload (control thread; docs/architecture.md "Reload and shutdown"). The access log moves
  // to `target` ("stdout", "off" or a path) if it changed; lines the workers buffered before
  // go to the new target. On error nothing changes and the errno is returned.
  std::error_code reconfigure_access_log(const std::string& target);
  // If [alerts] changed: a new notifier with the new webhook, rules and window takes the
  // workers' 5xx from now on; the old one delivers what it holds on a thread of its own (its
  // stop() may wait for an unreachable webhook) and its counts stay in the metrics.
  void reconfigure_alerts(const config::AlertsConfig& alerts);
  // The process-wide upstream health shown by /metrics and /pools (null: none).
  void set_health(const upstream::HealthRegistry* health) { health_ = health; }

 private:
  using NotifierPtr = std::shared_ptr<observe::AlertNotifier>;
  std::vector<observe::WorkerSnapshot> gather(std::vector<std::unique_ptr<Worker>>& workers);
  static NotifierPtr start_notifier(const config::AlertsConfig& alerts);
  observe::AlertStats alert_stats();

  observe::AccessLogSink access_log_;
  std::string access_log_target_;
  config::AlertsConfig alerts_config_;
  // Read by every worker on each 5xx, replaced by a reload: the workers hold a copy of the
  // pointer while they notify, so a notifier outlives its last notify().
  CurrentNotifier alerts_;
  std::mutex retired_mutex_;           // guards the two below (control thread and retiring threads)
  std::vector<NotifierPtr> retiring_;  // replaced, still delivering what they hold
  observe::AlertStats retired_stats_;  // counts of notifiers that finished
  std::vector<std::thread> retiring_threads_;  // control thread only; joined by stop()
  bool alerts_ever_started_ = false;           // then the needle_alert_* families stay on /metrics
  const upstream::HealthRegistry* health_ = nullptr;
};

// The state of every pool of one worker (runs on that worker's thread).
std::vector<observe::PoolSnapshot> snapshot_pools(const proxy::WorkerRuntime& runtime);
// The process-wide upstream health (any thread: atomics and the registry's locks).
std::vector<observe::ClusterHealthSnapshot> snapshot_health(const upstream::HealthRegistry& health);

}  // namespace needle::server
