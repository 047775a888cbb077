#include "observe/prometheus_text.h"

#include <algorithm>
#include <cmath>
#include <initializer_list>
#include <map>
#include <utility>

#include <fmt/format.h>

#include "base/json_writer.h"

namespace needle::observe {
namespace {

using Label = std::pair<std::string_view, std::string_view>;

// Writes one family at a time: HELP and TYPE first, then its samples (the format requires a
// family's samples to be contiguous and after its TYPE line).
class Exposition {
 public:
  void family(std::string_view name, std::string_view type, std::string_view help) {
    out_ += "# HELP ";
    out_ += name;
    out_ += ' ';
    for (char c : help) {  // HELP escaping: backslash and line feed only
      if (c == '\\')
        out_ += "\\\\";
      else if (c == '\n')
        out_ += "\\n";
      else
        out_ += c;
    }
    out_ += "\n# TYPE ";
    out_ += name;
    out_ += ' ';
    out_ += type;
    out_ += '\n';
  }

  void sample(std::string_view name, std::initializer_list<Label> labels, uint64_t value) {
    series(name, labels, {});
    fmt::format_to(std::back_inserter(out_), " {}\n", value);
  }
  void sample(std::string_view name, std::initializer_list<Label> labels, double value) {
    series(name, labels, {});
    out_ += ' ';
    append_double(value);
    out_ += '\n';
  }

  void histogram(std::string_view name, std::initializer_list<Label> labels, const Histogram& h) {
    const std::string bucket = std::string(name) + "_bucket";
    for (size_t i = 0; i <= kDurationBuckets.size(); ++i) {
      std::string le =
          i < kDurationBuckets.size() ? fmt::format("{}", kDurationBuckets[i]) : "+Inf";
      series(bucket, labels, Label{"le", le});
      fmt::format_to(std::back_inserter(out_), " {}\n", h.cumulative(i));
    }
    series(std::string(name) + "_sum", labels, {});
    out_ += ' ';
    append_double(h.sum_seconds);
    out_ += '\n';
    series(std::string(name) + "_count", labels, {});
    fmt::format_to(std::back_inserter(out_), " {}\n", h.count);
  }

  std::string take() { return std::move(out_); }

 private:
  void series(std::string_view name, std::initializer_list<Label> labels, Label extra) {
    out_ += name;
    if (labels.size() == 0 && extra.first.empty()) return;
    out_ += '{';
    bool first = true;
    auto add = [&](const Label& label) {
      if (!first) out_ += ',';
      first = false;
      out_ += label.first;
      out_ += "=\"";
      append_label_value(out_, label.second);
      out_ += '"';
    };
    for (const Label& label : labels) add(label);
    if (!extra.first.empty()) add(extra);
    out_ += '}';
  }

  void append_double(double value) {
    if (std::isnan(value))
      out_ += "NaN";
    else if (std::isinf(value))
      out_ += value > 0 ? "+Inf" : "-Inf";
    else
      fmt::format_to(std::back_inserter(out_), "{}", value);
  }

  std::string out_;
};

double ms_to_seconds(int64_t ms) {
  return static_cast<double>(ms) / 1000.0;
}

void keep_min(std::optional<int64_t>& into, const std::optional<int64_t>& value) {
  if (value && (!into || *value < *into)) into = value;
}
void keep_max(std::optional<int64_t>& into, const std::optional<int64_t>& value) {
  if (value && (!into || *value > *into)) into = value;
}

// One upstream host across every worker.
struct HostAggregate {
  uint64_t idle = 0, busy = 0, active_requests = 0, ejected_workers = 0;
  std::optional<int64_t> effective_limit_ms, non_replayable_limit_ms;
  std::string limit_source;  // source reported by the worker holding the minimum limit
  std::optional<int64_t> configured_ms, hint_ms, learned_ms, survived_ms;
  uint64_t opened = 0, reused = 0, connect_failures = 0, probes_skipped = 0;
  uint64_t tls_resumed = 0;
  std::map<std::string, uint64_t, std::less<>> evicted;
  uint64_t reuse_stopped_workers = 0;
  std::map<std::string, uint64_t, std::less<>> close_verdicts;
};

using HostKey = std::pair<std::string, std::string>;  // cluster, host

std::map<HostKey, HostAggregate> aggregate_pools(std::span<const WorkerSnapshot> workers) {
  std::map<HostKey, HostAggregate> hosts;
  for (const WorkerSnapshot& worker : workers) {
    for (const PoolSnapshot& pool : worker.pools) {
      HostAggregate& h = hosts[{pool.cluster, pool.host}];
      h.idle += pool.idle;
      h.busy += pool.busy;
      h.active_requests += pool.active_requests;
      h.ejected_workers += pool.ejected ? 1 : 0;
      if (!h.effective_limit_ms || pool.effective_limit_ms < *h.effective_limit_ms) {
        h.effective_limit_ms = pool.effective_limit_ms;
        h.limit_source = pool.limit_source;
      }
      keep_min(h.non_replayable_limit_ms, pool.non_replayable_limit_ms);
      keep_min(h.configured_ms, pool.configured_ms);
      keep_min(h.hint_ms, pool.hint_ms);
      keep_min(h.learned_ms, pool.learned_ms);
      keep_max(h.survived_ms, pool.survived_ms);
      h.opened += pool.opened;
      h.reused += pool.reused;
      h.probes_skipped += pool.probes_skipped;
      h.tls_resumed += pool.tls_resumed;
      h.connect_failures += pool.connect_failures;
      for (const auto& [reason, count] : pool.evicted_by_reason) h.evicted[reason] += count;
      h.reuse_stopped_workers += pool.reuse_stopped ? 1 : 0;
      for (const auto& [verdict, count] : pool.close_verdicts) h.close_verdicts[verdict] += count;
    }
  }
  return hosts;
}

void render_requests(Exposition& x, const MetricsShard& m) {
  x.family(
      "needle_requests_total", "counter",
      "Requests answered (or abandoned), by route and class of the status sent to the client.");
  for (const auto& e : m.requests().entries()) {
    x.sample("needle_requests_total", {{"route", e.labels[0]}, {"status_class", e.labels[1]}},
             e.value);
  }
  x.family("needle_responses_5xx_total", "counter",
           "Responses with status >= 500, by the request's final cause (upstream_5xx: the upstream sent "
           "the 5xx).");
  for (const auto& e : m.responses_5xx().entries()) {
    x.sample("needle_responses_5xx_total", {{"cause", e.labels[0]}}, e.value);
  }
  x.family("needle_request_duration_seconds", "histogram",
           "Time from the request head to the end of the response, by route.");
  for (const auto& e : m.request_duration().entries()) {
    x.histogram("needle_request_duration_seconds", {{"route", e.labels[0]}}, e.value);
  }
  x.family("needle_request_bytes_total", "counter",
           "Request body bytes received from clients, by route.");
  for (const auto& e : m.bytes().entries()) {
    x.sample("needle_request_bytes_total", {{"route", e.labels[0]}}, e.value.in);
  }
  x.family("needle_response_bytes_total", "counter",
           "Response bytes (head and body) sent to clients, by route.");
  for (const auto& e : m.bytes().entries()) {
    x.sample("needle_response_bytes_total", {{"route", e.labels[0]}}, e.value.out);
  }
}

void render_upstream(Exposition& x, const MetricsShard& m) {
  x.family("needle_upstream_attempts_total", "counter",
           "Upstream attempts (first tries and retries), by connection kind (new or reused).");
  for (const auto& e : m.upstream_attempts().entries()) {
    x.sample("needle_upstream_attempts_total",
             {{"cluster", e.labels[0]}, {"host", e.labels[1]}, {"connection", e.labels[2]}},
             e.value);
  }
  x.family("needle_upstream_failures_total", "counter",
           "Upstream attempts that failed, by cause; reset_before_response_on_reused is the "
           "keep-alive race.");
  for (const auto& e : m.upstream_failures().entries()) {
    x.sample("needle_upstream_failures_total",
             {{"cluster", e.labels[0]}, {"host", e.labels[1]}, {"cause", e.labels[2]}}, e.value);
  }
  x.family(
      "needle_retries_total", "counter",
      "Retries, by cause of the retried attempt and outcome of the request (success or failure).");
  for (const auto& e : m.retries().entries()) {
    x.sample("needle_retries_total", {{"cause", e.labels[0]}, {"outcome", e.labels[1]}}, e.value);
  }
  x.family("needle_upstream_duration_seconds", "histogram",
           "Duration of each upstream attempt, by cluster.");
  for (const auto& e : m.upstream_duration().entries()) {
    x.histogram("needle_upstream_duration_seconds", {{"cluster", e.labels[0]}}, e.value);
  }
}

// ---- TLS (issue 18) ----
void render_tls(Exposition& x, const MetricsShard& m) {
  if (m.tls_handshakes().empty() && m.tls_handshake_failures().empty()) return;
  x.family("needle_tls_handshakes_total", "counter",
           "Client TLS handshakes completed on TLS listeners, by result (full or resumed).");
  for (const auto& e : m.tls_handshakes().entries()) {
    x.sample("needle_tls_handshakes_total", {{"result", e.labels[0]}}, e.value);
  }
  x.family("needle_tls_handshake_failures_total", "counter",
           "Client TLS handshakes that failed on TLS listeners, by reason.");
  for (const auto& e : m.tls_handshake_failures().entries()) {
    x.sample("needle_tls_handshake_failures_total", {{"reason", e.labels[0]}}, e.value);
  }
}

void render_pools(Exposition& x, const std::map<HostKey, HostAggregate>& hosts) {
  // One sample per host of a per-host quantity.
  auto per_host = [&](std::string_view name, std::string_view type, std::string_view help,
                      auto value_of) {
    x.family(name, type, help);
    for (const auto& [key, h] : hosts) {
      x.sample(name, {{"cluster", key.first}, {"host", key.second}}, uint64_t{value_of(h)});
    }
  };
  per_host("needle_upstream_pool_idle_connections", "gauge",
           "Idle pooled connections, summed over workers.",
           [](const HostAggregate& h) { return h.idle; });
  per_host("needle_upstream_pool_busy_connections", "gauge",
           "Connections leased to an exchange, summed over workers.",
           [](const HostAggregate& h) { return h.busy; });
  per_host("needle_upstream_active_requests", "gauge",
           "Leases out plus connects in flight, summed over workers.",
           [](const HostAggregate& h) { return h.active_requests; });
  per_host(
      "needle_upstream_host_ejected", "gauge",
      "Number of workers on which the host is ejected by passive health checking (0: healthy).",
      [](const HostAggregate& h) { return h.ejected_workers; });
  per_host("needle_upstream_connections_opened_total", "counter",
           "Upstream connections opened (successful connects).",
           [](const HostAggregate& h) { return h.opened; });
  per_host("needle_upstream_connections_reused_total", "counter",
           "Checkouts of an idle pooled connection.",
           [](const HostAggregate& h) { return h.reused; });
  per_host("needle_upstream_checkout_probes_skipped_total", "counter",
           "Of those checkouts, how many needed no recv(MSG_PEEK) probe: the reactor had seen "
           "nothing arrive since the last response left the connection empty.",
           [](const HostAggregate& h) { return h.probes_skipped; });
  per_host("needle_upstream_tls_resumed_total", "counter",
           "Of the upstream connections opened, TLS ones whose handshake resumed a session.",
           [](const HostAggregate& h) { return h.tls_resumed; });
  per_host("needle_upstream_connect_failures_total", "counter",
           "Failed connects (refused, timeout, unreachable, resolve).",
           [](const HostAggregate& h) { return h.connect_failures; });

  x.family("needle_upstream_connections_evicted_total", "counter",
           "Pooled connections closed by needle or found closed, by reason.");
  for (const auto& [key, h] : hosts) {
    for (const auto& [reason, count] : h.evicted) {
      x.sample("needle_upstream_connections_evicted_total",
               {{"cluster", key.first}, {"host", key.second}, {"reason", reason}}, count);
    }
  }

  x.family("needle_upstream_pool_reuse_stopped_workers", "gauge",
           "Workers whose idle limit for this host is below the reuse floor (100 ms): they open "
           "a new connection for every request. Each such change is logged as a warning.");
  for (const auto& [key, h] : hosts) {
    x.sample("needle_upstream_pool_reuse_stopped_workers",
             {{"cluster", key.first}, {"host", key.second}}, h.reuse_stopped_workers);
  }
  x.family("needle_upstream_idle_close_verdicts_total", "counter",
           "Idle connections the upstream closed, by what the evidence said the close was "
           "(idle_timeout is learned; re-classifications count again).");
  for (const auto& [key, h] : hosts) {
    for (const auto& [verdict, count] : h.close_verdicts) {
      x.sample("needle_upstream_idle_close_verdicts_total",
               {{"cluster", key.first}, {"host", key.second}, {"verdict", verdict}}, count);
    }
  }

  x.family("needle_upstream_idle_limit_seconds", "gauge",
           "Effective idle limit (minimum over workers, with its source): a pooled connection idle "
           "this long is never reused.");
  for (const auto& [key, h] : hosts) {
    if (!h.effective_limit_ms) continue;
    // Both arms as string_view: a std::string arm would make the ternary a dangling temporary.
    const std::string_view source = h.limit_source.empty() ? std::string_view("default_initial")
                                                           : std::string_view(h.limit_source);
    x.sample("needle_upstream_idle_limit_seconds",
             {{"cluster", key.first}, {"host", key.second}, {"source", source}},
             ms_to_seconds(*h.effective_limit_ms));
  }
  x.family("needle_upstream_non_replayable_idle_limit_seconds", "gauge",
           "Stricter idle limit for requests that cannot be replayed (minimum over workers).");
  for (const auto& [key, h] : hosts) {
    if (!h.non_replayable_limit_ms) continue;
    x.sample("needle_upstream_non_replayable_idle_limit_seconds",
             {{"cluster", key.first}, {"host", key.second}},
             ms_to_seconds(*h.non_replayable_limit_ms));
  }
  x.family("needle_upstream_idle_timeout_seconds", "gauge",
           "What needle knows of the upstream's own idle close, by kind: configured, hint "
           "(Keep-Alive timeout, minimum), learned (minimum), survived (maximum).");
  for (const auto& [key, h] : hosts) {
    const std::pair<std::string_view, const std::optional<int64_t>*> kinds[] = {
        {"configured", &h.configured_ms},
        {"hint", &h.hint_ms},
        {"learned", &h.learned_ms},
        {"survived", &h.survived_ms}};
    for (const auto& [kind, value] : kinds) {
      if (!*value) continue;
      x.sample("needle_upstream_idle_timeout_seconds",
               {{"cluster", key.first}, {"host", key.second}, {"kind", kind}},
               ms_to_seconds(**value));
    }
  }
}

// Upgrade tunnels (docs/metrics.md "Tunnels").
void render_tunnels(Exposition& x, const MetricsShard& m) {
  x.family("needle_tunnels_active", "gauge",
           "Upgrade tunnels (WebSocket, ...) open now: a 101 was relayed and neither side has "
           "ended the tunnel yet.");
  x.sample("needle_tunnels_active", {}, m.tunnels_active());
  x.family("needle_tunnels_opened_total", "counter", "Upgrade tunnels opened (101 relayed).");
  x.sample("needle_tunnels_opened_total", {}, m.tunnels_opened());
  x.family("needle_tunnel_closes_total", "counter",
           "Upgrade tunnels ended, by who ended them: client, upstream (a FIN or an error, "
           "whichever side came first), idle_timeout (tunnel_idle_timeout), drain (SIGTERM or "
           "a reload's drain_timeout).");
  for (const auto& e : m.tunnel_closes().entries()) {
    x.sample("needle_tunnel_closes_total", {{"reason", e.labels[0]}}, e.value);
  }
}

void render_alerts(Exposition& x, const AlertStats& a) {
  auto counter = [&](std::string_view name, std::string_view help, uint64_t value) {
    x.family(name, "counter", help);
    x.sample(name, {}, value);
  };
  counter("needle_alert_events_total", "5xx events accepted by the webhook notifier.", a.events);
  counter("needle_alert_events_sent_total", "Events in batches the webhook acknowledged.",
          a.events_sent);
  counter("needle_alert_events_dropped_total",
          "Events never delivered (queue full, or delivery gave up after retries).",
          a.events_dropped);
  counter("needle_alert_batches_sent_total", "Batches the webhook acknowledged with 2xx.",
          a.batches_sent);
  counter("needle_alert_batches_failed_total", "Batches dropped after the last try failed.",
          a.batches_failed);
  counter("needle_alert_post_errors_total",
          "Failed webhook POST tries (connect error, timeout, non-2xx), including retried ones.",
          a.post_errors);
}

// Client connections needle closed idle, and the races after them (proxy/close_race_watch.h).
void render_idle_closes(Exposition& x, const MetricsShard& m) {
  x.family("needle_downstream_idle_closes_total", "counter",
           "Client connections needle closed for idling past client_idle_timeout, by listener "
           "and what the client did after needle's FIN (client_closed, quiet, request, reset, "
           "unwatched).");
  for (const auto& e : m.idle_client_closes().entries()) {
    x.sample("needle_downstream_idle_closes_total",
             {{"listener", e.labels[0]}, {"outcome", e.labels[1]}}, e.value);
  }
  x.family("needle_downstream_close_races_total", "counter",
           "Idle closes the client raced: a request (signal=request) or a reset (signal=reset) "
           "arrived after needle's FIN. The client (a gateway) answered that request with an "
           "error: raise client_idle_timeout above the client's own idle timeout.");
  for (const auto& e : m.close_races().entries()) {
    x.sample("needle_downstream_close_races_total",
             {{"listener", e.labels[0]}, {"signal", e.labels[1]}}, e.value);
  }
}

}  // namespace

void append_label_value(std::string& out, std::string_view value) {
  for (char c : value) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '"':
        out += "\\\"";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        out += c;
    }
  }
}

std::string render_prometheus(std::span<const WorkerSnapshot> workers, const ScrapeExtras& extras) {
  MetricsShard merged;
  for (const WorkerSnapshot& worker : workers) merged.merge_from(worker.metrics);
  const auto hosts = aggregate_pools(workers);
  // Known label sets start at 0 so the first keep-alive race (or 5xx, or failed retry) is an
  // increase the alert rules can see.
  merged.add_zero_series_for_causes();
  merged.add_zero_series_for_tunnels();
  for (const auto& [key, h] : hosts) merged.add_zero_series_for_host(key.first, key.second);

  Exposition x;
  x.family("needle_build_info", "gauge", "Always 1; the version label names the running build.");
  x.sample("needle_build_info", {{"version", extras.version}}, uint64_t{1});
  x.family("needle_workers", "gauge", "Worker threads that answered this scrape.");
  x.sample("needle_workers", {}, static_cast<uint64_t>(workers.size()));
  uint64_t sessions = 0, parked = 0;
  for (const WorkerSnapshot& worker : workers) {
    sessions += worker.client_sessions;
    parked += worker.client_parked;
  }
  x.family("needle_client_connections", "gauge",
           "Open client connections: state=\"session\" has a session (a request in progress, or "
           "idle for under the park sweep period), state=\"parked\" idles in the keep-alive park.");
  x.sample("needle_client_connections", {{"state", "session"}}, sessions);
  x.sample("needle_client_connections", {{"state", "parked"}}, parked);

  render_requests(x, merged);
  render_upstream(x, merged);
  render_pools(x, hosts);
  render_tunnels(x, merged);
  if (extras.alerts) render_alerts(x, *extras.alerts);
  render_tls(x, merged);
  render_idle_closes(x, merged);
  std::string out = x.take();
  append_health_prometheus(out, extras.health);
  return out;
}

}  // namespace needle::observe

namespace needle::observe {
namespace {

void append_optional_ms(std::string& out, std::string_view key, const std::optional<int64_t>& ms) {
  out += ",\"";
  out += key;
  out += "\":";
  if (ms)
    fmt::format_to(std::back_inserter(out), "{}", *ms);
  else
    out += "null";
}

}  // namespace

std::string render_pools_json(std::span<const WorkerSnapshot> workers,
                              const std::vector<ClusterHealthSnapshot>& health) {
  std::string out = "{\"workers\":[";
  for (size_t w = 0; w < workers.size(); ++w) {
    const WorkerSnapshot& worker = workers[w];
    if (w > 0) out += ',';
    fmt::format_to(std::back_inserter(out), "{{\"worker\":{},\"pools\":[", worker.worker);
    for (size_t p = 0; p < worker.pools.size(); ++p) {
      const PoolSnapshot& pool = worker.pools[p];
      if (p > 0) out += ',';
      out += "{\"cluster\":";
      json::append_string(out, pool.cluster);
      out += ",\"host\":";
      json::append_string(out, pool.host);
      fmt::format_to(std::back_inserter(out),
                     ",\"idle\":{},\"busy\":{},\"active_requests\":{},\"ejected\":{}"
                     ",\"effective_limit_ms\":{},\"non_replayable_limit_ms\":{},\"limit_source\":",
                     pool.idle, pool.busy, pool.active_requests, pool.ejected,
                     pool.effective_limit_ms, pool.non_replayable_limit_ms);
      json::append_string(out, pool.limit_source);
      append_optional_ms(out, "configured_ms", pool.configured_ms);
      append_optional_ms(out, "hint_ms", pool.hint_ms);
      append_optional_ms(out, "learned_ms", pool.learned_ms);
      append_optional_ms(out, "survived_ms", pool.survived_ms);
      fmt::format_to(std::back_inserter(out), ",\"reuse_stopped\":{}", pool.reuse_stopped);
      out += ",\"health\":";
      json::append_string(out, pool.health);
      append_optional_ms(out, "suspect_ms", pool.suspect_ms);
      append_optional_ms(out, "request_cap", pool.request_cap);
      append_optional_ms(out, "last_close_age_ms", pool.last_close_age_ms);
      out += ",\"last_close_verdict\":";
      json::append_string(out, pool.last_close_verdict);
      out += ",\"close_verdicts\":{";
      for (size_t v = 0; v < pool.close_verdicts.size(); ++v) {
        if (v > 0) out += ',';
        json::append_string(out, pool.close_verdicts[v].first);
        fmt::format_to(std::back_inserter(out), ":{}", pool.close_verdicts[v].second);
      }
      out += '}';
      fmt::format_to(std::back_inserter(out),
                     ",\"opened\":{},\"reused\":{},\"probes_skipped\":{},\"connect_failures\":{}",
                     pool.opened, pool.reused, pool.probes_skipped, pool.connect_failures);
      out += ",\"evicted\":{";
      for (size_t r = 0; r < pool.evicted_by_reason.size(); ++r) {
        if (r > 0) out += ',';
        json::append_string(out, pool.evicted_by_reason[r].first);
        fmt::format_to(std::back_inserter(out), ":{}", pool.evicted_by_reason[r].second);
      }
      out += "}}";
    }
    out += "]}";
  }
  out += ']';
  if (!health.empty()) append_health_json(out, health);
  out += "}\n";
  return out;
}

}  // namespace needle::observe
