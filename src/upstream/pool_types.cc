#include "upstream/pool_types.h"

#include "base/log.h"

namespace needle::upstream {

std::string_view evict_reason_name(EvictReason reason) {
  switch (reason) {
    case EvictReason::upstream_closed_idle: return "upstream_closed_idle";
    case EvictReason::stray_bytes_idle: return "stray_bytes_idle";
    case EvictReason::checkout_probe_failed: return "checkout_probe_failed";
    case EvictReason::idle_limit: return "idle_limit";
    case EvictReason::max_age: return "max_age";
    case EvictReason::max_requests: return "max_requests";
    case EvictReason::learned_request_cap: return "learned_request_cap";
    case EvictReason::max_idle: return "max_idle";
    case EvictReason::not_reusable: return "not_reusable";
    case EvictReason::draining: return "draining";
    case EvictReason::sentinel_done: return "sentinel_done";
    case EvictReason::count_: break;
  }
  return "unknown";
}

PoolSettings PoolSettings::from_cluster(const config::ClusterConfig& cluster) {
  PoolSettings settings;
  settings.connect_timeout = cluster.connect_timeout;
  settings.max_idle = cluster.max_idle_per_host;
  settings.max_requests_per_connection = cluster.max_requests_per_connection;
  settings.max_connection_age = cluster.max_connection_age;
  settings.idle.configured = cluster.idle_timeout;
  settings.idle.initial_limit = cluster.initial_idle_limit;
  settings.idle.margin_min = cluster.idle_margin_min;
  settings.idle.margin_ratio = cluster.idle_margin_ratio;
  settings.idle.learn = cluster.learn_idle_timeout;
  settings.eject_after_connect_failures = cluster.eject_after_connect_failures;
  settings.eject_duration = cluster.eject_duration;
  if (cluster.tls) {
    settings.tls_required = true;
    auto created = tls::ClientTlsContext::create(cluster.tls->settings);
    if (created.context) {
      settings.tls = std::move(created.context);
    } else {
      log::error("pool", "cluster {}: TLS context: {}", cluster.name,
                 created.errors.front().to_string());
    }
  }
  return settings;
}

}  // namespace needle::upstream
