#include "upstream/host_health.h"

#include <algorithm>

#include "base/log.h"

namespace needle::upstream {

AttemptOutcome classify_attempt(Cause cause, int status) {
  switch (cause) {
    case Cause::none:
    case Cause::upstream_5xx:
    case Cause::stray_bytes_after_response:  // a whole response was relayed
      return status >= 500 ? AttemptOutcome::response_5xx : AttemptOutcome::response;
    case Cause::connect_refused:
    case Cause::connect_timeout:
    case Cause::connect_error:
    case Cause::reset_before_response_on_new:
    case Cause::closed_mid_response:
    case Cause::response_timeout:
    case Cause::invalid_response:
    case Cause::upstream_write_failed:
      return AttemptOutcome::gateway_failure;
    default:
      // reset_before_response_on_reused is the keep-alive race (retried, DESIGN.md rule 5);
      // client_*, local_resource_exhausted, resolve_failed say nothing about the host.
      return AttemptOutcome::ignored;
  }
}

std::string_view eject_reason_name(EjectReason reason) {
  switch (reason) {
    case EjectReason::consecutive_5xx:
      return "consecutive_5xx";
    case EjectReason::consecutive_gateway_failure:
      return "consecutive_gateway_failure";
    case EjectReason::count_:
      break;
  }
  return "unknown";
}

bool ActiveCheckState::on_result(bool passed, uint32_t healthy_threshold,
                                 uint32_t unhealthy_threshold) {
  checked_ = true;
  if (passed) {
    failures_ = 0;
    ++passes_;
    // A new host comes in at its first pass; one taken out needs healthy_threshold.
    if (!healthy_ && (!was_healthy_ || passes_ >= healthy_threshold)) {
      healthy_ = was_healthy_ = true;
      return true;
    }
    return false;
  }
  passes_ = 0;
  ++failures_;
  if (healthy_ && failures_ >= unhealthy_threshold) {
    healthy_ = false;
    return true;
  }
  return false;
}

Millis OutlierState::eject(TimePoint now, const config::OutlierDetectionConfig& config) {
  ++multiplier_;
  const Millis length = std::min(config.base_ejection_time * multiplier_, config.max_ejection_time);
  ejected_until_ = now + length;
  return length;
}

bool OutlierState::end_if_due(TimePoint now) {
  if (!ejected_until_ || now < *ejected_until_) return false;
  ejected_until_.reset();
  return true;
}

void OutlierState::on_interval() {
  if (!ejected_until_ && multiplier_ > 0) --multiplier_;
}

bool may_eject(size_t ejected, size_t hosts, uint32_t max_percent) {
  if (max_percent == 0 || hosts == 0) return false;
  const size_t limit = std::max<size_t>(1, hosts * max_percent / 100);
  return ejected + 1 <= limit;
}

HostHealth::HostHealth(std::string address, bool initial_healthy)
    : address_(std::move(address)), check_(initial_healthy) {
  if (!initial_healthy) out_.store(uint8_t(OutReason::failed_check), std::memory_order_relaxed);
}

std::optional<EjectReason> HostHealth::on_attempt(AttemptOutcome outcome, uint32_t threshold_5xx,
                                                  uint32_t threshold_gateway) {
  // A success ends both streaks; a store only when one was running, so the common case leaves
  // the cache line shared between the workers.
  auto end_streak = [](std::atomic<uint32_t>& streak) {
    if (streak.load(std::memory_order_relaxed) != 0) streak.store(0, std::memory_order_relaxed);
  };
  // Exactly one worker sees the increment that reaches the threshold.
  auto extend = [](std::atomic<uint32_t>& streak, uint32_t threshold) {
    return streak.fetch_add(1, std::memory_order_relaxed) + 1 == threshold;
  };
  switch (outcome) {
    case AttemptOutcome::response:
      end_streak(streak_5xx_);
      end_streak(streak_gateway_);
      return std::nullopt;
    case AttemptOutcome::response_5xx:
      end_streak(streak_gateway_);  // it answered: the connection path works
      if (threshold_5xx > 0 && extend(streak_5xx_, threshold_5xx)) {
        return EjectReason::consecutive_5xx;
      }
      return std::nullopt;
    case AttemptOutcome::gateway_failure:
      if (threshold_gateway > 0 && extend(streak_gateway_, threshold_gateway)) {
        return EjectReason::consecutive_gateway_failure;
      }
      return std::nullopt;
    case AttemptOutcome::ignored:
      break;
  }
  return std::nullopt;
}

std::optional<int64_t> HostHealth::checker_idle_close_ms() const {
  const int64_t ms = idle_close_ms_.load(std::memory_order_relaxed);
  if (ms < 0) return std::nullopt;
  return ms;
}

void HostHealth::set_out(OutReason reason, bool out) {
  if (out) {
    out_.fetch_or(uint8_t(reason), std::memory_order_relaxed);
  } else {
    out_.fetch_and(uint8_t(~uint8_t(reason)), std::memory_order_relaxed);
  }
}

void HostHealth::reset_streak(EjectReason reason) {
  auto& streak = reason == EjectReason::consecutive_5xx ? streak_5xx_ : streak_gateway_;
  streak.store(0, std::memory_order_relaxed);
}

void HostHealth::note_checker_idle_close(Millis idle_age) {
  idle_close_ms_.store(idle_age.count(), std::memory_order_relaxed);
  idle_closes_.fetch_add(1, std::memory_order_relaxed);
}

ClusterHealth::ClusterHealth(std::string name, HealthEvents* events)
    : name_(std::move(name)), events_(events) {}

std::shared_ptr<HostHealth> ClusterHealth::host(const std::string& address) {
  std::lock_guard lock(mutex_);
  for (const auto& host : hosts_) {
    if (host->address() == address) return host;
  }
  const bool initial_healthy = !health_check_ || health_check_->initial_healthy;
  hosts_.push_back(std::make_shared<HostHealth>(address, initial_healthy));
  return hosts_.back();
}

std::vector<std::shared_ptr<HostHealth>> ClusterHealth::hosts() const {
  std::lock_guard lock(mutex_);
  return hosts_;
}

void ClusterHealth::retain(const std::vector<std::string>& addresses) {
  {
    std::lock_guard lock(mutex_);
    std::erase_if(hosts_, [&](const std::shared_ptr<HostHealth>& host) {
      return std::find(addresses.begin(), addresses.end(), host->address()) == addresses.end();
    });
  }
  recompute_panic(/*quiet=*/true);
}

void ClusterHealth::configure(const config::ClusterConfig& cluster) {
  std::vector<std::shared_ptr<HostHealth>> hosts;
  {
    std::lock_guard lock(mutex_);
    health_check_ = cluster.health_check;
    outlier_ = cluster.outlier_detection;
    hosts = hosts_;
  }
  threshold_5xx_.store(outlier_ ? outlier_->consecutive_5xx : 0, std::memory_order_relaxed);
  threshold_gateway_.store(outlier_ ? outlier_->consecutive_gateway_failure : 0,
                           std::memory_order_relaxed);
  // Without a check (or detection) nothing would ever bring a host back: its bit goes now.
  for (const auto& host : hosts) {
    if (!cluster.health_check) host->set_out(OutReason::failed_check, false);
    if (!cluster.outlier_detection) host->set_out(OutReason::ejected, false);
  }
  recompute_panic();
}

std::optional<config::HealthCheckConfig> ClusterHealth::health_check() const {
  std::lock_guard lock(mutex_);
  return health_check_;
}

std::optional<config::OutlierDetectionConfig> ClusterHealth::outlier_detection() const {
  std::lock_guard lock(mutex_);
  return outlier_;
}

void ClusterHealth::report(const std::shared_ptr<HostHealth>& host, AttemptOutcome outcome) {
  const auto reached = host->on_attempt(outcome, threshold_5xx_.load(std::memory_order_relaxed),
                                        threshold_gateway_.load(std::memory_order_relaxed));
  if (reached && events_) events_->streak_reached(shared_from_this(), host, *reached);
}

bool ClusterHealth::recompute_panic(bool quiet) {
  std::lock_guard lock(mutex_);
  size_t out = 0, failed_check = 0, ejected = 0;
  for (const auto& host : hosts_) {
    out += host->in_rotation() ? 0 : 1;
    failed_check += host->out_for(OutReason::failed_check) ? 1 : 0;
    ejected += host->out_for(OutReason::ejected) ? 1 : 0;
  }
  const bool panic = !hosts_.empty() && out == hosts_.size();
  const bool changed = panic_.exchange(panic, std::memory_order_relaxed) != panic;
  if (quiet || panic == panic_announced_) return changed;
  panic_announced_ = panic;
  if (panic) {
    log::warn("health",
              "cluster {}: panic mode: every host is out ({} failing health checks, {} ejected "
              "by outlier detection); sending requests to all {} hosts anyway",
              name_, failed_check, ejected, hosts_.size());
  } else {
    log::info("health", "cluster {}: panic mode over: {} of {} hosts in rotation", name_,
              hosts_.size() - out, hosts_.size());
  }
  return changed;
}

std::shared_ptr<ClusterHealth> HealthRegistry::cluster(const std::string& name) {
  std::lock_guard lock(mutex_);
  for (const auto& cluster : clusters_) {
    if (cluster->name() == name) return cluster;
  }
  clusters_.push_back(std::make_shared<ClusterHealth>(name, events_));
  return clusters_.back();
}

std::vector<std::shared_ptr<ClusterHealth>> HealthRegistry::clusters() const {
  std::lock_guard lock(mutex_);
  return clusters_;
}

void HealthRegistry::apply(const config::Config& config) {
  for (const auto& cluster_config : config.clusters) {
    auto state = cluster(cluster_config.name);
    state->configure(cluster_config);
    std::vector<std::string> addresses;
    for (const auto& address : cluster_config.hosts) {
      addresses.push_back(address.to_string());
      state->host(addresses.back());
    }
    state->retain(addresses);
  }
  std::lock_guard lock(mutex_);
  std::erase_if(clusters_, [&](const std::shared_ptr<ClusterHealth>& cluster) {
    return config.find_cluster(cluster->name()) == nullptr;
  });
}

}  // namespace needle::upstream
