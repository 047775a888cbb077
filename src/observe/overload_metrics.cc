#include "observe/overload_metrics.h"

#include <fmt/format.h>

#include "observe/prometheus_text.h"

namespace needle::observe {
namespace {

void family(std::string& out, std::string_view name, std::string_view type, std::string_view help) {
  out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

void labelled(std::string& out, std::string_view name,
              std::initializer_list<std::pair<std::string_view, std::string_view>> labels,
              uint64_t value) {
  out += name;
  out += '{';
  bool first = true;
  for (const auto& [key, text] : labels) {
    if (!first) out += ',';
    first = false;
    out += key;
    out += "=\"";
    append_label_value(out, text);
    out += '"';
  }
  out += fmt::format("}} {}\n", value);
}

}  // namespace

void render_overload_metrics(const OverloadMetrics& metrics, std::string& out) {
  if (!metrics.dns.empty()) {
    family(out, "needle_dns_resolutions_total", "counter",
           "DNS resolutions of a cluster's host name, successful or not.");
    for (const auto& s : metrics.dns) {
      labelled(out, "needle_dns_resolutions_total", {{"cluster", s.cluster}, {"name", s.name}},
               s.resolutions);
    }
    family(out, "needle_dns_failures_total", "counter",
           "DNS resolutions that failed; the last good answer was kept.");
    for (const auto& s : metrics.dns) {
      labelled(out, "needle_dns_failures_total", {{"cluster", s.cluster}, {"name", s.name}},
               s.failures);
    }
    family(out, "needle_dns_addresses", "gauge", "Addresses in the answer in use for a name.");
    for (const auto& s : metrics.dns) {
      labelled(out, "needle_dns_addresses", {{"cluster", s.cluster}, {"name", s.name}},
               s.addresses);
    }
  }
  family(out, "needle_cluster_hosts", "gauge",
         "Hosts of a cluster the workers use (each resolved address is a host).");
  for (const auto& s : metrics.hosts) {
    labelled(out, "needle_cluster_hosts", {{"cluster", s.cluster}}, s.hosts);
  }
  family(out, "needle_upstream_overflow_total", "counter",
         "Requests answered 503 upstream_overflow, by the circuit breaker that refused them.");
  for (const auto& s : metrics.overflow) {
    labelled(out, "needle_upstream_overflow_total",
             {{"cluster", s.cluster}, {"breaker", s.breaker}}, s.count);
  }
  family(out, "needle_rate_limited_total", "counter",
         "Requests answered 429 by a route's rate limit.");
  for (const auto& s : metrics.rate_limited) {
    labelled(out, "needle_rate_limited_total", {{"route", s.route}}, s.count);
  }
}

}  // namespace needle::observe
