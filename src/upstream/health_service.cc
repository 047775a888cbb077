#include "upstream/health_service.h"

#include <asio/post.hpp>

#include "base/log.h"

namespace needle::upstream {
namespace {

// How often the thread looks for hosts added at run time and decays ejection multipliers.
constexpr Millis kTick{1000};

}  // namespace

HealthService::HealthService(const Clock& clock, IdleCloseSink idle_close_sink)
    : clock_(clock), idle_close_sink_(std::move(idle_close_sink)), registry_(this) {}

HealthService::~HealthService() {
  stop();
}

void HealthService::start(Millis wait_at_most) {
  {
    std::lock_guard lock(first_round_mutex_);
    for (const auto& cluster : registry_.clusters()) {
      if (!cluster->health_check()) continue;
      for (const auto& host : cluster->hosts()) {
        first_round_pending_.insert({cluster->name(), host->address()});
      }
    }
  }
  asio::post(io_, [this] {
    reconcile();
    tick_timer_.emplace(io_.get_executor());
    tick();
  });
  thread_ = std::thread([this] {
    auto guard = asio::make_work_guard(io_);
    io_.run();
  });
  std::unique_lock lock(first_round_mutex_);
  first_round_done_.wait_for(lock, wait_at_most, [this] { return first_round_pending_.empty(); });
}

void HealthService::reconfigure(const config::Config& config) {
  registry_.apply(config);
  asio::post(io_, [this] { reconcile(); });
}

void HealthService::stop() {
  if (!thread_.joinable()) return;
  asio::post(io_, [this] {
    for (auto& [key, checker] : checkers_) checker->stop();
    checkers_.clear();
    if (tick_timer_) tick_timer_->cancel();
    io_.stop();
  });
  thread_.join();
}

// A checker for every host of every cluster with a health check; none for the others.
void HealthService::reconcile() {
  std::set<HostKey> wanted;
  for (const auto& cluster : registry_.clusters()) {
    if (!cluster->health_check()) continue;
    for (const auto& host : cluster->hosts()) {
      HostKey key{cluster->name(), host->address()};
      wanted.insert(key);
      if (!checkers_.contains(key)) start_checker(cluster, host);
    }
  }
  for (auto it = checkers_.begin(); it != checkers_.end();) {
    if (wanted.contains(it->first)) {
      ++it;
      continue;
    }
    it->second->stop();
    first_result_seen(it->first);
    it = checkers_.erase(it);
  }
}

void HealthService::start_checker(const std::shared_ptr<ClusterHealth>& cluster,
                                  const std::shared_ptr<HostHealth>& host) {
  auto address = config::parse_host_port(host->address());
  if (!address) return;
  std::weak_ptr<ClusterHealth> weak_cluster = cluster;
  std::weak_ptr<HostHealth> weak_host = host;
  HostKey key{cluster->name(), host->address()};
  CheckerSink sink;
  sink.on_result = [this, weak_cluster, weak_host, key](const CheckResult& result) {
    auto c = weak_cluster.lock();
    auto h = weak_host.lock();
    if (c && h) on_check_result(*c, *h, result);
    first_result_seen(key);
  };
  sink.on_idle_close = [this, weak_host, key](const IdleClose& close) {
    auto h = weak_host.lock();
    if (!h) return;
    h->note_checker_idle_close(close.idle_age);
    log::info("health",
              "upstream {} of cluster {}: closed the health check's connection at "
              "idle age {} ms (evidence of its idle timeout, passed to the pools)",
              key.second, key.first, close.idle_age.count());
    if (idle_close_sink_) idle_close_sink_(key.first, key.second, close);
  };
  auto checker = std::make_shared<HealthChecker>(
      io_.get_executor(), *address,
      [weak_cluster] {
        auto c = weak_cluster.lock();
        return c ? c->health_check() : std::nullopt;
      },
      std::move(sink), clock_);
  checkers_[key] = checker;
  checker->start();
}

void HealthService::first_result_seen(const HostKey& key) {
  std::lock_guard lock(first_round_mutex_);
  if (first_round_pending_.erase(key) && first_round_pending_.empty()) {
    first_round_done_.notify_all();
  }
}

void HealthService::on_check_result(ClusterHealth& cluster, HostHealth& host,
                                    const CheckResult& result) {
  const auto config = cluster.health_check();
  if (!config) return;
  host.count_check(result.passed);
  ActiveCheckState& check = host.check();
  if (check.on_result(result.passed, config->healthy_threshold, config->unhealthy_threshold)) {
    host.set_out(OutReason::failed_check, !check.healthy());
    if (check.healthy()) {
      // As Envoy does by default: a host the check brings back is no longer ejected either
      // (after a restart, its gateway failures are history).
      const bool was_ejected = host.outlier().end_now();
      if (was_ejected) host.set_out(OutReason::ejected, false);
      log::info("health", "upstream {} of cluster {} is healthy: {} passing check(s){}",
                host.address(), cluster.name(), check.consecutive_passes(),
                was_ejected ? "; its ejection ends" : "");
    } else {
      log::warn("health", "upstream {} of cluster {} is unhealthy: {} failed check(s), last: {}",
                host.address(), cluster.name(), check.consecutive_failures(), result.detail);
    }
  } else if (!result.passed && check.consecutive_failures() == 1 && !check.healthy()) {
    // Still out (not yet passed once, or already unhealthy): say why once per streak.
    log::info("health", "upstream {} of cluster {}: check failed: {}", host.address(),
              cluster.name(), result.detail);
  }
  cluster.recompute_panic();
}

void HealthService::streak_reached(std::shared_ptr<ClusterHealth> cluster,
                                   std::shared_ptr<HostHealth> host, EjectReason reason) {
  asio::post(io_, [this, cluster = std::move(cluster), host = std::move(host), reason] {
    eject(cluster, host, reason);
  });
}

// The outlier detector's decision: eject unless max_ejection_percent forbids it.
void HealthService::eject(const std::shared_ptr<ClusterHealth>& cluster,
                          const std::shared_ptr<HostHealth>& host, EjectReason reason) {
  const auto config = cluster->outlier_detection();
  host->reset_streak(reason);
  if (!config || host->outlier().ejected()) return;
  const auto hosts = cluster->hosts();
  size_t ejected = 0;
  for (const auto& h : hosts) ejected += h->outlier().ejected() ? 1 : 0;
  if (!may_eject(ejected, hosts.size(), config->max_ejection_percent)) {
    // Logged at most once a minute per host: a dead host kept in reaches its threshold often.
    auto& logged = host->refusal_logged_at();
    const TimePoint now = clock_.now();
    if (logged && now - *logged < std::chrono::minutes(1)) return;
    logged = now;
    log::warn("health",
              "upstream {} of cluster {}: {} but not ejected: {} of {} hosts already are "
              "(max_ejection_percent {})",
              host->address(), cluster->name(), eject_reason_name(reason), ejected, hosts.size(),
              config->max_ejection_percent);
    return;
  }
  const Millis length = host->outlier().eject(clock_.now(), *config);
  host->count_ejection(reason);
  host->set_out(OutReason::ejected, true);
  log::warn("health", "upstream {} of cluster {} ejected for {} ms: {} (ejection #{})",
            host->address(), cluster->name(), length.count(), eject_reason_name(reason),
            host->outlier().multiplier());
  cluster->recompute_panic();
  auto timer = std::make_shared<net::Timer>(io_.get_executor());
  timer->expires_after(length);
  timer->async_wait([this, timer, cluster, host](std::error_code ec) {
    if (!ec) end_ejection(cluster, host);
  });
}

void HealthService::end_ejection(const std::shared_ptr<ClusterHealth>& cluster,
                                 const std::shared_ptr<HostHealth>& host) {
  if (!host->outlier().end_if_due(clock_.now())) return;
  host->reset_streak(EjectReason::consecutive_5xx);
  host->reset_streak(EjectReason::consecutive_gateway_failure);
  host->set_out(OutReason::ejected, false);
  log::info("health", "upstream {} of cluster {}: ejection over, back in rotation", host->address(),
            cluster->name());
  cluster->recompute_panic();
}

void HealthService::tick() {
  reconcile();
  const TimePoint now = clock_.now();
  for (const auto& cluster : registry_.clusters()) {
    const auto config = cluster->outlier_detection();
    if (!config) continue;
    auto [it, fresh] = last_decay_.try_emplace(cluster->name(), now);
    if (fresh || now - it->second < config->interval) continue;
    it->second = now;
    for (const auto& host : cluster->hosts()) host->outlier().on_interval();
  }
  tick_timer_->expires_after(kTick);
  tick_timer_->async_wait([this](std::error_code ec) {
    if (!ec) tick();
  });
}

}  // namespace needle::upstream
