#include <fmt/format.h>

#include "base/json_writer.h"
#include "observe/health_snapshot.h"
#include "observe/prometheus_text.h"

namespace needle::observe {
namespace {

void family(std::string& out, std::string_view name, std::string_view type, std::string_view help) {
  fmt::format_to(std::back_inserter(out), "# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

// name{cluster="..",host="..",extra="..."} value
void sample(std::string& out, std::string_view name, std::string_view cluster,
            std::string_view host, std::string_view extra_name, std::string_view extra,
            std::string_view value) {
  out += name;
  out += "{cluster=\"";
  append_label_value(out, cluster);
  out += '"';
  if (!host.empty()) {
    out += ",host=\"";
    append_label_value(out, host);
    out += '"';
  }
  if (!extra_name.empty()) {
    fmt::format_to(std::back_inserter(out), ",{}=\"", extra_name);
    append_label_value(out, extra);
    out += '"';
  }
  out += "} ";
  out += value;
  out += '\n';
}

std::string number(uint64_t value) {
  return std::to_string(value);
}

}  // namespace

void append_health_prometheus(std::string& out, const std::vector<ClusterHealthSnapshot>& health) {
  if (health.empty()) return;
  family(out, "needle_upstream_host_in_rotation", "gauge",
         "1 while the host takes new requests (not failing health checks, not ejected).");
  for (const auto& c : health) {
    for (const auto& h : c.hosts) {
      sample(out, "needle_upstream_host_in_rotation", c.cluster, h.host, {}, {},
             number(!h.failed_check && !h.ejected));
    }
  }
  family(out, "needle_upstream_host_out", "gauge",
         "1 while the host is out of rotation for this reason: failed_check (active health "
         "check) or ejected (outlier detection).");
  for (const auto& c : health) {
    for (const auto& h : c.hosts) {
      sample(out, "needle_upstream_host_out", c.cluster, h.host, "reason", "failed_check",
             number(h.failed_check));
      sample(out, "needle_upstream_host_out", c.cluster, h.host, "reason", "ejected",
             number(h.ejected));
    }
  }
  family(out, "needle_upstream_ejections_total", "counter",
         "Outlier detection ejections, by reason (consecutive_5xx, consecutive_gateway_failure).");
  for (const auto& c : health) {
    for (const auto& h : c.hosts) {
      for (const auto& [reason, count] : h.ejections) {
        sample(out, "needle_upstream_ejections_total", c.cluster, h.host, "reason", reason,
               number(count));
      }
    }
  }
  family(out, "needle_upstream_health_checks_total", "counter",
         "Active health checks by result (pass, fail).");
  for (const auto& c : health) {
    if (!c.active_checks) continue;
    for (const auto& h : c.hosts) {
      sample(out, "needle_upstream_health_checks_total", c.cluster, h.host, "result", "pass",
             number(h.checks_passed));
      sample(out, "needle_upstream_health_checks_total", c.cluster, h.host, "result", "fail",
             number(h.checks_failed));
    }
  }
  family(out, "needle_upstream_health_check_idle_close_seconds", "gauge",
         "Idle age at which the host last closed the health check's kept-alive connection (a "
         "measurement of its idle timeout, passed to the pools' estimators).");
  for (const auto& c : health) {
    for (const auto& h : c.hosts) {
      if (!h.checker_idle_close_ms) continue;
      sample(out, "needle_upstream_health_check_idle_close_seconds", c.cluster, h.host, {}, {},
             fmt::format("{}", static_cast<double>(*h.checker_idle_close_ms) / 1000.0));
    }
  }
  family(out, "needle_upstream_panic_mode", "gauge",
         "1 while every host of the cluster is out of rotation and requests go to all of them.");
  for (const auto& c : health) {
    sample(out, "needle_upstream_panic_mode", c.cluster, {}, {}, {}, number(c.panic));
  }
  family(out, "needle_upstream_panic_picks_total", "counter",
         "Hosts picked for an attempt while the cluster was in panic mode.");
  for (const auto& c : health) {
    sample(out, "needle_upstream_panic_picks_total", c.cluster, {}, {}, {}, number(c.panic_picks));
  }
}

void append_health_json(std::string& out, const std::vector<ClusterHealthSnapshot>& health) {
  out += ",\"health\":[";
  for (size_t i = 0; i < health.size(); ++i) {
    const auto& c = health[i];
    if (i > 0) out += ',';
    out += "{\"cluster\":";
    json::append_string(out, c.cluster);
    fmt::format_to(std::back_inserter(out),
                   ",\"active_checks\":{},\"outlier_detection\":{},\"panic\":{},\"panic_picks\":{}"
                   ",\"hosts\":[",
                   c.active_checks, c.outlier_detection, c.panic, c.panic_picks);
    for (size_t j = 0; j < c.hosts.size(); ++j) {
      const auto& h = c.hosts[j];
      if (j > 0) out += ',';
      out += "{\"host\":";
      json::append_string(out, h.host);
      out += ",\"state\":";
      json::append_string(out, h.state());
      fmt::format_to(std::back_inserter(out),
                     ",\"failed_check\":{},\"ejected\":{},\"checks_passed\":{},\"checks_failed\":{}"
                     ",\"checker_idle_close_ms\":",
                     h.failed_check, h.ejected, h.checks_passed, h.checks_failed);
      if (h.checker_idle_close_ms) {
        fmt::format_to(std::back_inserter(out), "{}", *h.checker_idle_close_ms);
      } else {
        out += "null";
      }
      fmt::format_to(std::back_inserter(out), ",\"checker_idle_closes\":{},\"ejections\":{{",
                     h.checker_idle_closes);
      for (size_t r = 0; r < h.ejections.size(); ++r) {
        if (r > 0) out += ',';
        json::append_string(out, h.ejections[r].first);
        fmt::format_to(std::back_inserter(out), ":{}", h.ejections[r].second);
      }
      out += "}}";
    }
    out += "]}";
  }
  out += ']';
}

}  // namespace needle::observe
