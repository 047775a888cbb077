#include "server/observability.h"

#include <future>

#include "base/log.h"
#include "observe/prometheus_text.h"

namespace needle::server {
namespace {

class WorkerObserverImpl final : public WorkerObserver {
 public:
  WorkerObserverImpl(observe::AccessLogSink& sink, observe::AlertNotifier* alerts)
      : writer_(sink), alerts_(alerts) {}

  void on_request_done(const observe::RequestRecord& record) override {
    metrics_.on_request(record);
    writer_.append(record);
    if (alerts_ != nullptr && record.status >= 500) alerts_->notify(record);
  }
  void flush() override { writer_.flush(); }
  const observe::MetricsShard& metrics() const override { return metrics_; }

 private:
  observe::MetricsShard metrics_;
  observe::AccessLogWriter writer_;
  observe::AlertNotifier* alerts_;
};

}  // namespace

Observability::Observability(const config::Config& config) {
  if (auto ec = access_log_.open(config.server.access_log)) {
    log::error("access-log", "cannot open '{}': {}; access log disabled", config.server.access_log,
               ec.message());
  }
  if (config.alerts.webhook) {
    alerts_ = std::make_unique<observe::AlertNotifier>(config.alerts);
    if (auto ec = alerts_->start()) {
      log::error("alerts", "webhook '{}' not started: {}", *config.alerts.webhook, ec.message());
      alerts_.reset();
    }
  }
}

Observability::~Observability() { stop(); }

std::unique_ptr<WorkerObserver> Observability::make_worker_observer(unsigned index) {
  (void)index;
  return std::make_unique<WorkerObserverImpl>(access_log_, alerts_.get());
}

std::vector<observe::PoolSnapshot> snapshot_pools(const proxy::WorkerRuntime& runtime) {
  std::vector<observe::PoolSnapshot> pools;
  for (const auto& cluster : runtime.clusters) {
    for (size_t i = 0; i < cluster->host_count(); ++i) {
      const upstream::HostPool& pool = cluster->host(i);
      const auto& estimator = pool.estimator();
      const auto& counters = pool.counters();
      observe::PoolSnapshot snap;
      snap.cluster = cluster->config().name;
      snap.host = cluster->host_name(i);
      snap.idle = pool.idle_count();
      snap.busy = pool.busy_count();
      snap.active_requests = pool.active_requests();
      snap.ejected = pool.ejected();
      snap.effective_limit_ms = estimator.effective_limit().count();
      snap.non_replayable_limit_ms = estimator.non_replayable_limit().count();
      snap.limit_source = std::string(upstream::idle_limit_source_name(estimator.source()));
      if (auto v = estimator.configured()) snap.configured_ms = v->count();
      if (auto v = estimator.hint()) snap.hint_ms = v->count();
      if (auto v = estimator.learned()) snap.learned_ms = v->count();
      if (auto v = estimator.survived()) snap.survived_ms = v->count();
      snap.reuse_stopped = estimator.reuse_stopped();
      if (auto v = estimator.suspect()) snap.suspect_ms = v->count();
      if (auto v = estimator.request_cap()) snap.request_cap = *v;
      if (auto close = estimator.last_close()) snap.last_close_age_ms = close->idle_age.count();
      if (auto v = estimator.last_verdict()) {
        snap.last_close_verdict = std::string(upstream::close_verdict_name(*v));
      }
      for (size_t v = 0; v < static_cast<size_t>(upstream::CloseVerdict::count_); ++v) {
        const auto verdict = static_cast<upstream::CloseVerdict>(v);
        snap.close_verdicts.emplace_back(std::string(upstream::close_verdict_name(verdict)),
                                         estimator.verdicts(verdict));
      }
      snap.opened = counters.opened;
      snap.reused = counters.reused;
      snap.probes_skipped = counters.probes_skipped;
      snap.connect_failures = counters.connect_failures;
      for (size_t r = 0; r < static_cast<size_t>(upstream::EvictReason::count_); ++r) {
        snap.evicted_by_reason.emplace_back(
            std::string(upstream::evict_reason_name(static_cast<upstream::EvictReason>(r))),
            counters.evicted[r]);
      }
      pools.push_back(std::move(snap));
    }
  }
  return pools;
}

std::vector<observe::WorkerSnapshot> Observability::gather(
    std::vector<std::unique_ptr<Worker>>& workers) {
  std::vector<std::future<observe::WorkerSnapshot>> futures;
  for (auto& worker : workers) {
    auto promise = std::make_shared<std::promise<observe::WorkerSnapshot>>();
    futures.push_back(promise->get_future());
    worker->post([promise](Worker& w) {
      observe::WorkerSnapshot snap;
      snap.worker = w.index();
      snap.metrics = w.observer().metrics();
      snap.pools = snapshot_pools(*w.context().runtime);
      snap.client_sessions = w.context().sessions.size();
      snap.client_parked = w.parked_clients();
      promise->set_value(std::move(snap));
    });
  }
  std::vector<observe::WorkerSnapshot> snapshots;
  for (auto& future : futures) {
    // A worker that does not answer within 2 s (stopped, or stuck) is left out of this scrape.
    if (future.wait_for(std::chrono::seconds(2)) == std::future_status::ready) {
      snapshots.push_back(future.get());
    }
  }
  return snapshots;
}

std::string Observability::render_metrics(std::vector<std::unique_ptr<Worker>>& workers) {
  const auto snapshots = gather(workers);
  observe::ScrapeExtras extras;
  extras.version = NEEDLE_VERSION_STRING;
  if (alerts_) extras.alerts = alerts_->stats();
  return observe::render_prometheus(snapshots, extras);
}

std::string Observability::render_pools(std::vector<std::unique_ptr<Worker>>& workers) {
  return observe::render_pools_json(gather(workers));
}

void Observability::reopen_logs() {
  if (auto ec = access_log_.reopen()) {
    log::error("access-log", "reopen failed: {}; still writing to the old file", ec.message());
  }
}

void Observability::stop() {
  if (alerts_) alerts_->stop();
}

}  // namespace needle::server
