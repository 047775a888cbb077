#pragma once
// Process-wide observability services and their per-worker faces: the access-log sink (one per
// process, written only at flush), the alert notifier (its own thread), and for each worker an
// observer holding that worker's metrics shard and access-log buffer. Scrapes gather copies of
// the shards and pool states on each worker's own thread, then render off the data path.
#include <memory>
#include <string>
#include <vector>

#include "config/config.h"
#include "observe/access_log.h"
#include "observe/alert_notifier.h"
#include "observe/pool_snapshot.h"
#include "server/worker.h"

namespace needle::server {

class Observability {
 public:
  explicit Observability(const config::Config& config);
  ~Observability();

  std::unique_ptr<WorkerObserver> make_worker_observer(unsigned index);
  std::string render_metrics(std::vector<std::unique_ptr<Worker>>& workers);
  std::string render_pools(std::vector<std::unique_ptr<Worker>>& workers);
  void reopen_logs();
  void stop();

 private:
  std::vector<observe::WorkerSnapshot> gather(std::vector<std::unique_ptr<Worker>>& workers);

  observe::AccessLogSink access_log_;
  std::unique_ptr<observe::AlertNotifier> alerts_;
};

// The state of every pool of one worker (runs on that worker's thread).
std::vector<observe::PoolSnapshot> snapshot_pools(const proxy::WorkerRuntime& runtime);

}  // namespace needle::server
