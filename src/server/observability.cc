#include "server/observability.h"

#include <future>

#include "base/log.h"
#include "observe/prometheus_text.h"

namespace needle::server {
namespace {

class WorkerObserverImpl final : public WorkerObserver {
 public:
  using Alerts = CurrentNotifier;
  WorkerObserverImpl(observe::AccessLogSink& sink, const Alerts& alerts)
      : writer_(sink), alerts_(alerts) {}

  void on_request_done(const observe::RequestRecord& record) override {
    metrics_.on_request(record);
    writer_.append(record);
    if (record.status < 500) return;
    if (auto alerts = alerts_.load()) alerts->notify(record);
  }
  void on_tls_handshake(std::string_view failure, bool resumed) override {
    metrics_.on_tls_handshake(failure, resumed);
  }
  void on_tunnel_opened() override { metrics_.on_tunnel_opened(); }
  void on_idle_client_close(const observe::IdleCloseRecord& record) override {
    metrics_.on_idle_client_close(record);
  }
  void flush() override { writer_.flush(); }
  const observe::MetricsShard& metrics() const override { return metrics_; }

 private:
  observe::MetricsShard metrics_;
  observe::AccessLogWriter writer_;
  const Alerts& alerts_;
};

bool same_alerts(const config::AlertsConfig& a, const config::AlertsConfig& b) {
  return a.webhook == b.webhook && a.window == b.window && a.statuses == b.statuses &&
         a.causes == b.causes && a.slack_text == b.slack_text && a.max_queue == b.max_queue;
}

void add_stats(observe::AlertStats& into, const observe::AlertStats& more) {
  into.events += more.events;
  into.events_sent += more.events_sent;
  into.events_dropped += more.events_dropped;
  into.batches_sent += more.batches_sent;
  into.batches_failed += more.batches_failed;
  into.post_errors += more.post_errors;
}

}  // namespace

Observability::Observability(const config::Config& config)
    : access_log_target_(config.server.access_log), alerts_config_(config.alerts) {
  if (auto ec = access_log_.open(config.server.access_log)) {
    log::error("access-log", "cannot open '{}': {}; access log disabled", config.server.access_log,
               ec.message());
  }
  alerts_.exchange(start_notifier(config.alerts));
  alerts_ever_started_ = alerts_.load() != nullptr;
}

Observability::NotifierPtr Observability::start_notifier(const config::AlertsConfig& alerts) {
  if (!alerts.webhook) return nullptr;
  auto notifier = std::make_shared<observe::AlertNotifier>(alerts);
  if (auto ec = notifier->start()) {
    log::error("alerts", "webhook '{}' not started: {}", *alerts.webhook, ec.message());
    return nullptr;
  }
  return notifier;
}

Observability::~Observability() { stop(); }

std::unique_ptr<WorkerObserver> Observability::make_worker_observer(unsigned index) {
  (void)index;
  return std::make_unique<WorkerObserverImpl>(access_log_, alerts_);
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
      if (const upstream::HostHealth* health = cluster->host_health(i)) {
        snap.health = health->out_for(upstream::OutReason::failed_check) ? "unhealthy"
                      : health->out_for(upstream::OutReason::ejected)    ? "ejected"
                                                                         : "healthy";
      }
      snap.opened = counters.opened;
      snap.reused = counters.reused;
      snap.probes_skipped = counters.probes_skipped;
      snap.tls_resumed = counters.tls_resumed;
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

std::vector<observe::ClusterHealthSnapshot> snapshot_health(
    const upstream::HealthRegistry& health) {
  std::vector<observe::ClusterHealthSnapshot> clusters;
  for (const auto& cluster : health.clusters()) {
    observe::ClusterHealthSnapshot c;
    c.cluster = cluster->name();
    c.active_checks = cluster->health_check().has_value();
    c.outlier_detection = cluster->outlier_detection().has_value();
    c.panic = cluster->panic();
    c.panic_picks = cluster->panic_picks();
    for (const auto& host : cluster->hosts()) {
      observe::HostHealthSnapshot h;
      h.host = host->address();
      h.failed_check = host->out_for(upstream::OutReason::failed_check);
      h.ejected = host->out_for(upstream::OutReason::ejected);
      h.checks_passed = host->checks(true);
      h.checks_failed = host->checks(false);
      for (size_t r = 0; r < static_cast<size_t>(upstream::EjectReason::count_); ++r) {
        const auto reason = static_cast<upstream::EjectReason>(r);
        h.ejections.emplace_back(std::string(upstream::eject_reason_name(reason)),
                                 host->ejections(reason));
      }
      h.checker_idle_close_ms = host->checker_idle_close_ms();
      h.checker_idle_closes = host->checker_idle_closes();
      c.hosts.push_back(std::move(h));
    }
    clusters.push_back(std::move(c));
  }
  return clusters;
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
      // Every listener's idle-close series from 0 (the first race is an increase).
      for (const auto& listener : w.context().runtime->config->listeners) {
        snap.metrics.add_zero_series_for_listener(listener.address.to_string());
      }
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
  if (alerts_ever_started_) extras.alerts = alert_stats();
  if (health_) extras.health = snapshot_health(*health_);
  return observe::render_prometheus(snapshots, extras);
}

std::string Observability::render_pools(std::vector<std::unique_ptr<Worker>>& workers) {
  return observe::render_pools_json(
      gather(workers),
      health_ ? snapshot_health(*health_) : std::vector<observe::ClusterHealthSnapshot>{});
}

void Observability::reopen_logs() {
  if (auto ec = access_log_.reopen()) {
    log::error("access-log", "reopen failed: {}; still writing to the old file", ec.message());
  }
}

void Observability::stop() {
  if (auto alerts = alerts_.exchange(nullptr)) {
    alerts->stop();
    std::lock_guard lock(retired_mutex_);
    add_stats(retired_stats_, alerts->stats());
  }
  for (auto& thread : retiring_threads_) thread.join();
  retiring_threads_.clear();
}

std::error_code Observability::reconfigure_access_log(const std::string& target) {
  if (target == access_log_target_) return {};
  if (auto ec = access_log_.open(target)) return ec;
  log::info("access-log", "reload: access log now '{}' (was '{}')", target, access_log_target_);
  access_log_target_ = target;
  return {};
}

void Observability::reconfigure_alerts(const config::AlertsConfig& alerts) {
  if (same_alerts(alerts, alerts_config_)) return;
  alerts_config_ = alerts;
  NotifierPtr fresh = start_notifier(alerts);
  alerts_ever_started_ = alerts_ever_started_ || fresh != nullptr;
  NotifierPtr old = alerts_.exchange(std::move(fresh));
  log::info("alerts", "reload: webhook {}", alerts.webhook ? *alerts.webhook : "off");
  if (!old) return;
  {
    std::lock_guard lock(retired_mutex_);
    retiring_.push_back(old);
  }
  retiring_threads_.emplace_back([this, old = std::move(old)] {
    old->stop();  // closes its window, one more try per pending batch
    std::lock_guard lock(retired_mutex_);
    add_stats(retired_stats_, old->stats());
    std::erase(retiring_, old);
  });
}

// Monotonic across reloads: the current notifier's counts plus those of every one it replaced.
observe::AlertStats Observability::alert_stats() {
  observe::AlertStats total;
  {
    std::lock_guard lock(retired_mutex_);
    total = retired_stats_;
    for (const auto& notifier : retiring_) add_stats(total, notifier->stats());
  }
  if (auto current = alerts_.load()) add_stats(total, current->stats());
  return total;
}

}  // namespace needle::server
