// Semantic checks on a loaded Config. Each check is one guard: the value, the rule, and an
// error that says what is wrong and what is accepted.
#include <algorithm>
#include <map>
#include <optional>
#include <string>

#include <fmt/format.h>

#include "base/cause.h"
#include "base/duration.h"
#include "config/route_section.h"
#include "config/source_map.h"
#include "config/value_text.h"

namespace needle::config {
namespace {

constexpr unsigned kMaxWorkers = 256;
constexpr uint32_t kMaxRetries = 10;

class Validator {
 public:
  Validator(const Config& config, const SourceMap& places, std::vector<ConfigError>& errors)
      : config_(config), places_(places), errors_(errors) {}

  void run() {
    check_server(config_.server);
    check_listeners();
    check_admin();
    check_routes();
    for (const auto& cluster : config_.clusters) check_cluster(cluster);
    check_alerts(config_.alerts);
  }

 private:
  // One mistake, one error: a section the loader could not read is not also "missing".
  bool already_reported(const std::string& key) const {
    return std::any_of(errors_.begin(), errors_.end(),
                       [&](const ConfigError& e) { return e.key == key; });
  }

  void fail(const std::string& key, std::string message) {
    errors_.push_back(places_.error(config_.source, key, std::move(message)));
  }

  void positive(const std::string& key, Millis value, std::string_view why) {
    if (value > Millis(0)) return;
    fail(key, fmt::format("must be greater than 0 ({}); e.g. \"5s\"", why));
  }

  template <class T>
  void at_least_one(const std::string& key, T value, std::string_view why) {
    if (value >= 1) return;
    fail(key, fmt::format("must be at least 1 ({})", why));
  }

  void ratio(const std::string& key, double value) {
    if (value >= 0.0 && value <= 1.0) return;
    fail(key, fmt::format("must be a fraction between 0 and 1 (e.g. 0.1), got {}", value));
  }

  void check_server(const ServerConfig& s) {
    if (s.workers > kMaxWorkers) {
      fail("server.workers", fmt::format("must be between 0 and {} (0 = one per CPU core), got {}",
                                         kMaxWorkers, s.workers));
    }
    positive("server.header_timeout", s.header_timeout, "a client must be given time to send");
    positive("server.body_timeout", s.body_timeout, "a client must be given time to send");
    positive("server.client_idle_timeout", s.client_idle_timeout,
             "idle client connections are kept this long");
    positive("server.send_timeout", s.send_timeout, "a client must be given time to read");
    positive("server.tunnel_idle_timeout", s.tunnel_idle_timeout,
             "a tunnel is closed after this long without a byte");
    at_least_one("server.max_connections_per_worker", s.max_connections_per_worker,
                 "a worker that accepts no connection serves nothing");
    at_least_one("server.max_request_line", s.max_request_line, "bytes");
    at_least_one("server.max_header_bytes", s.max_header_bytes, "bytes");
    at_least_one("server.max_header_count", s.max_header_count, "every request has a Host header");
    if (s.access_log.empty()) {
      fail("server.access_log", R"(must not be empty; use "stdout", "off" or a file path)");
    }
  }

  void check_listeners() {
    if (config_.listeners.empty()) {
      if (already_reported("listener")) return;
      fail("listener", R"(no listener: add one, e.g. [[listener]] address = "127.0.0.1:8080")");
      return;
    }
    std::map<std::string, size_t> seen;  // address -> first listener index
    for (size_t i = 0; i < config_.listeners.size(); ++i) {
      const HostPort& address = config_.listeners[i].address;
      if (address.port == 0) continue;  // unreadable; already reported
      auto [it, inserted] = seen.emplace(address.to_string(), i);
      if (!inserted) {
        fail(fmt::format("listener[{}].address", i),
             fmt::format("{} is already used by listener[{}]; each listener needs its own address",
                         address.to_string(), it->second));
      }
    }
  }

  void check_admin() {
    const auto& admin = config_.admin.address;
    if (!admin || admin->port == 0) return;
    for (size_t i = 0; i < config_.listeners.size(); ++i) {
      if (config_.listeners[i].address.port != 0 &&
          config_.listeners[i].address.to_string() == admin->to_string()) {
        fail("admin.address",
             fmt::format(
                 R"({} is also listener[{}]; give the admin endpoint its own address or "off")",
                 admin->to_string(), i));
      }
    }
  }

  static bool is_route_host(std::string_view host) {
    if (host.empty()) return false;
    return std::all_of(host.begin(), host.end(), [](char c) {
      return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
             c == '[' || c == ']' || c == ':';
    });
  }

  // Requests are routed on their normalized path (docs/config.md "Path normalization"), so a
  // prefix that normalization would change can never match. The probe appends a letter: a
  // prefix may end inside a segment ("/v1/." is a prefix of "/v1/.well-known", not a dot
  // segment).
  std::optional<std::string> prefix_problem(std::string_view prefix) const {
    const std::string probe = std::string(prefix) + "x";
    const http::PathNormalizeOptions options{.merge_slashes = config_.server.merge_slashes,
                                             .escaped_slashes = config_.server.escaped_slashes};
    std::string normal;
    switch (http::normalize_path(probe, options, normal)) {
      case http::PathNormalizeResult::unchanged:
        return std::nullopt;
      case http::PathNormalizeResult::normalized:
        normal.pop_back();
        return fmt::format("\"{}\" can never match: requests are routed on their normalized "
                           "path, where it reads \"{}\"; write that instead",
                           prefix, normal);
      case http::PathNormalizeResult::malformed_escape:
        return fmt::format("\"{}\" has a malformed percent-escape; write %XX with two hex "
                           "digits, e.g. %20",
                           prefix);
      case http::PathNormalizeResult::escaped_slash:
        return fmt::format("\"{}\" can never match: it contains %2F or %5C, and "
                           "server.escaped_slashes_action = \"reject_request\" refuses every "
                           "request whose path does",
                           prefix);
    }
    return std::nullopt;
  }

  void check_routes() {
    if (config_.routes.empty()) {
      if (already_reported("route")) return;
      fail("route", R"(no route: add one, e.g. [[route]] path_prefix = "/" cluster = "app")");
      return;
    }
    std::vector<std::string> cluster_names;
    for (const auto& c : config_.clusters) cluster_names.push_back(c.name);

    std::map<std::pair<std::string, std::string>, size_t> seen;  // (host, prefix) -> index
    for (size_t i = 0; i < config_.routes.size(); ++i) {
      const RouteConfig& route = config_.routes[i];
      const std::string key = fmt::format("route[{}]", i);
      // "*.example.com": a wildcard host (route_section.cc checks the "*." form).
      if (route.host &&
          !is_route_host(route.host->starts_with("*.") ? route.host->substr(2) : *route.host)) {
        fail(key + ".host",
             fmt::format(
                 "\"{}\" is not a host name; expected e.g. \"api.example.com\" (exact match, "
                 "no scheme, no path) or a wildcard \"*.example.com\"",
                 *route.host));
      }
      if (route.path_prefix.empty() || route.path_prefix.front() != '/') {
        fail(key + ".path_prefix",
             fmt::format("\"{}\" must start with '/', e.g. \"/\" or \"/api/\"", route.path_prefix));
      } else if (auto problem = prefix_problem(route.path_prefix)) {
        fail(key + ".path_prefix", std::move(*problem));
      }
      if (!route.cluster.empty() && config_.find_cluster(route.cluster) == nullptr) {
        std::string message = fmt::format("no cluster named '{}'", route.cluster);
        if (auto near = closest_match(route.cluster, cluster_names)) {
          message += fmt::format(" (did you mean '{}'?)", *near);
        } else if (cluster_names.empty()) {
          message += fmt::format("; define it with [cluster.{}] hosts = [\"127.0.0.1:3000\"]",
                                 route.cluster);
        } else {
          message += fmt::format("; defined clusters: {}", fmt::join(cluster_names, ", "));
        }
        fail(key + ".cluster", std::move(message));
      }
      if (route.tunnel_idle_timeout) {
        positive(key + ".tunnel_idle_timeout", *route.tunnel_idle_timeout,
                 "a tunnel is closed after this long without a byte");
      }
      if (route.cluster.empty()) continue;  // unreadable route; already reported
      auto [it, inserted] =
          seen.emplace(std::make_pair(route.host.value_or(""), route_match_key(route)), i);
      if (!inserted) {
        const bool plain = !route.path_exact && !route.path_regex && route.methods.empty();
        fail(key, fmt::format("same host and {} as route[{}], so it can never match; "
                              "remove one or change its path_prefix",
                              plain ? "path_prefix" : "path match and methods", it->second));
      }
    }
  }

  static bool is_cluster_name(std::string_view name) {
    return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
      return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
             c == '-' || c == '_';
    });
  }

  // Time left for reuse under `limit` once the margin is taken off (see ClusterConfig).
  static Millis usable_idle(const ClusterConfig& c, Millis limit) {
    const auto ratio_margin = Millis(static_cast<long long>(c.idle_margin_ratio * limit.count()));
    return limit - std::max(c.idle_margin_min, ratio_margin);
  }

  // The margin must leave some reusable idle time under each limit it applies to.
  void check_idle_margin(const std::string& key, const ClusterConfig& c) {
    if (!(c.idle_margin_ratio >= 0.0 && c.idle_margin_ratio <= 1.0)) return;  // reported
    auto check = [&](std::string_view limit_name, Millis limit) {
      if (limit <= Millis(0) || usable_idle(c, limit) > Millis(0)) return false;
      fail(key + ".idle_margin_min",
           fmt::format("the idle margin (max of {} and {} of the limit) leaves nothing of {} {}; "
                       "lower idle_margin_min or idle_margin_ratio",
                       format_duration(c.idle_margin_min), c.idle_margin_ratio, limit_name,
                       format_duration(limit)));
      return true;
    };
    if (c.idle_timeout && check("idle_timeout", *c.idle_timeout)) return;
    check("initial_idle_limit", c.initial_idle_limit);
  }

  void check_cluster(const ClusterConfig& c) {
    const std::string key = "cluster." + c.name;
    if (!is_cluster_name(c.name)) {
      fail(key, fmt::format("cluster name '{}' may use only letters, digits, '-' and '_'", c.name));
    }
    if (c.hosts.empty() && !already_reported(key + ".hosts")) {
      fail(key + ".hosts", R"(a cluster needs at least one host such as "127.0.0.1:3000")");
    }
    positive(key + ".connect_timeout", c.connect_timeout, "0 would fail every connect");
    positive(key + ".response_timeout", c.response_timeout, "0 would fail every request");
    if (c.idle_timeout) {
      positive(key + ".idle_timeout", *c.idle_timeout,
               "leave it out if the upstream's idle timeout is unknown");
    }
    ratio(key + ".idle_margin_ratio", c.idle_margin_ratio);
    positive(key + ".initial_idle_limit", c.initial_idle_limit,
             "0 would never reuse a connection; set max_idle_per_host = 0 for that");
    check_idle_margin(key, c);
    if (c.max_retries > kMaxRetries) {
      fail(key + ".max_retries",
           fmt::format("must be between 0 and {}, got {}", kMaxRetries, c.max_retries));
    }
    ratio(key + ".retry_budget_ratio", c.retry_budget_ratio);
    at_least_one(key + ".eject_after_connect_failures", c.eject_after_connect_failures,
                 "consecutive connect failures before a host is ejected");
    positive(key + ".eject_duration", c.eject_duration, "an ejected host stays out this long");
  }

  // The host[:port] part of "host[:port][/path]"; the port defaults to 80.
  static std::string authority_problem(std::string_view rest) {
    std::string authority(rest.substr(0, rest.find_first_of("/?#")));
    if (authority.empty()) return "the URL has no host";
    const size_t bracket = authority.rfind(']');
    const size_t colon = authority.rfind(':');
    const bool has_port =
        colon != std::string::npos && (bracket == std::string::npos || colon > bracket);
    if (!has_port) authority += ":80";
    return parse_host_port_explained(authority).problem;
  }

  void check_alerts(const AlertsConfig& a) {
    if (a.webhook) {
      constexpr std::string_view kScheme = "http://";
      const std::string& url = *a.webhook;
      if (url.rfind(kScheme, 0) != 0) {
        fail(
            "alerts.webhook",
            fmt::format("\"{}\" is not an http:// URL; expected e.g. \"http://127.0.0.1:9000/hook\""
                        "{}",
                        url,
                        url.rfind("https://", 0) == 0
                            ? " (https is not supported: post to a local relay over http)"
                            : ""));
      } else if (std::string problem = authority_problem(url.substr(kScheme.size()));
                 !problem.empty()) {
        fail("alerts.webhook",
             fmt::format("\"{}\": {}; expected e.g. \"http://127.0.0.1:9000/hook\"", url, problem));
      }
    }
    positive("alerts.window", a.window, "alerts are batched per window");
    for (size_t i = 0; i < a.statuses.size(); ++i) {
      if (a.statuses[i] < 100 || a.statuses[i] > 599) {
        fail(fmt::format("alerts.statuses[{}]", i),
             fmt::format("{} is not an HTTP status; expected 100-599, e.g. 502", a.statuses[i]));
      }
    }
    std::vector<std::string> cause_names;
    for (int c = 1; c <= static_cast<int>(kLastCause); ++c) {
      cause_names.emplace_back(cause_name(static_cast<Cause>(c)));
    }
    for (size_t i = 0; i < a.causes.size(); ++i) {
      if (std::find(cause_names.begin(), cause_names.end(), a.causes[i]) != cause_names.end()) {
        continue;
      }
      std::string message = fmt::format("unknown cause '{}'", a.causes[i]);
      if (auto near = closest_match(a.causes[i], cause_names)) {
        message += fmt::format(" (did you mean '{}'?)", *near);
      } else {
        message += fmt::format("; known causes: {}", fmt::join(cause_names, ", "));
      }
      fail(fmt::format("alerts.causes[{}]", i), std::move(message));
    }
    at_least_one("alerts.max_queue", a.max_queue, "alerts waiting to be sent");
  }

  const Config& config_;
  const SourceMap& places_;
  std::vector<ConfigError>& errors_;
};

}  // namespace

void validate_config(const Config& config, const SourceMap& places,
                     std::vector<ConfigError>& errors) {
  Validator(config, places, errors).run();
  validate_route_section(config, places, errors);
}

}  // namespace needle::config
