// TOML -> Config. This file knows the shape of the file (sections, keys, types, units); what
// the values may be is validate.cc's business. Every key read is recorded in a SourceMap so
// later checks can point at it.
#include <algorithm>
#include <cctype>
#include <limits>
#include <map>
#include <regex>
#include <span>
#include <sstream>

#include <fmt/format.h>
#include <toml++/toml.h>

#include "base/duration.h"
#include "config/config.h"
#include "config/route_section.h"
#include "config/discovery_section.h"
#include "config/health_section.h"
#include "config/source_map.h"
#include "config/tls_section.h"
#include "config/value_text.h"
#include "http/upgrade.h"

namespace needle::config {
namespace {

std::string_view type_name(toml::node_type type) {
  switch (type) {
    case toml::node_type::none:
      return "nothing";
    case toml::node_type::table:
      return "a table";
    case toml::node_type::array:
      return "an array";
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a float";
    case toml::node_type::boolean:
      return "a boolean";
    case toml::node_type::date:
      return "a date";
    case toml::node_type::time:
      return "a time";
    case toml::node_type::date_time:
      return "a date-time";
  }
  return "an unknown value";
}

// What the reader of a file shares: where errors go and where keys were found.
struct LoadContext {
  std::string file;
  std::vector<ConfigError>& errors;
  SourceMap& places;

  void error(const toml::source_region& where, std::string key, std::string message) {
    errors.push_back(ConfigError{file, static_cast<int>(where.begin.line),
                                 static_cast<int>(where.begin.column), std::move(key),
                                 std::move(message)});
  }
  void record(const std::string& key, const toml::source_region& where) {
    places.add(key, static_cast<int>(where.begin.line), static_cast<int>(where.begin.column));
  }
};

template <class E>
struct Choice {
  std::string_view name;
  E value;
};

// Reads the keys of one TOML table into plain values. Every key the program knows is asked
// for by name (present or not), so finish() can tell which keys in the file are unknown.
// A value that cannot be read is reported and leaves the output at its default.
class TableReader {
 public:
  TableReader(LoadContext& ctx, const toml::table& table, std::string prefix)
      : ctx_(ctx), table_(table), prefix_(std::move(prefix)) {}

  std::string key(std::string_view name) const {
    return prefix_.empty() ? std::string(name) : fmt::format("{}.{}", prefix_, name);
  }

  // The node under `name`, recorded in the source map; nullptr if the key is absent.
  const toml::node* take(std::string_view name) {
    known_.emplace_back(name);
    const toml::node* node = table_.get(name);
    if (node) ctx_.record(key(name), node->source());
    return node;
  }

  void wrong_type(std::string_view name, const toml::node& node, std::string_view expected) {
    ctx_.error(node.source(), key(name),
               fmt::format("expected {}, got {}", expected, type_name(node.type())));
  }

  void missing(std::string_view name, std::string_view example) {
    ctx_.error(table_.source(), key(name),
               fmt::format("missing required key '{}'; e.g. {}", name, example));
  }

  bool string(std::string_view name, std::string& out) {
    const toml::node* node = take(name);
    if (!node) return false;
    if (auto s = node->value<std::string>(); s && node->is_string()) {
      out = *s;
    } else {
      wrong_type(name, *node, "a string");
    }
    return true;
  }

  bool optional_string(std::string_view name, std::optional<std::string>& out) {
    std::string value;
    const size_t before = ctx_.errors.size();
    if (!string(name, value)) return false;
    if (ctx_.errors.size() == before) out = std::move(value);
    return true;
  }

  bool boolean(std::string_view name, bool& out) {
    const toml::node* node = take(name);
    if (!node) return false;
    if (node->is_boolean()) {
      out = *node->value<bool>();
    } else {
      wrong_type(name, *node, "true or false");
    }
    return true;
  }

  // A non-negative integer that fits T.
  template <class T>
  bool integer(std::string_view name, T& out) {
    const toml::node* node = take(name);
    if (!node) return false;
    if (!node->is_integer()) {
      wrong_type(name, *node, "an integer");
      return true;
    }
    store_integer(key(name), *node, *node->value<int64_t>(), out);
    return true;
  }

  // Bytes: an integer, or a string with a binary unit ("64KiB").
  template <class T>
  bool size(std::string_view name, T& out) {
    const toml::node* node = take(name);
    if (!node) return false;
    if (node->is_integer()) {
      store_integer(key(name), *node, *node->value<int64_t>(), out);
    } else if (node->is_string()) {
      const std::string text = *node->value<std::string>();
      const auto bytes = parse_size(text);
      if (!bytes) {
        ctx_.error(node->source(), key(name),
                   fmt::format("\"{}\" is not a size; {}", text, kSizeForms));
      } else if (*bytes > std::numeric_limits<T>::max()) {
        ctx_.error(node->source(), key(name),
                   fmt::format("\"{}\" is too large (at most {} bytes)", text,
                               std::numeric_limits<T>::max()));
      } else {
        out = static_cast<T>(*bytes);
      }
    } else {
      wrong_type(name, *node, std::string(kSizeForms.substr(std::string_view("expected ").size())));
    }
    return true;
  }

  bool number(std::string_view name, double& out) {
    const toml::node* node = take(name);
    if (!node) return false;
    if (node->is_floating_point()) {
      out = *node->value<double>();
    } else if (node->is_integer()) {
      out = static_cast<double>(*node->value<int64_t>());
    } else {
      wrong_type(name, *node, "a number such as 0.1");
    }
    return true;
  }

  bool duration(std::string_view name, Millis& out) {
    const toml::node* node = take(name);
    if (!node) return false;
    if (node->is_string()) {
      const std::string text = *node->value<std::string>();
      if (auto d = parse_duration(text)) {
        out = *d;
      } else {
        ctx_.error(node->source(), key(name),
                   fmt::format("\"{}\" is not a duration; {}", text, kDurationForms));
      }
    } else if (node->is_number()) {
      const std::string shown = node->is_integer() ? std::to_string(*node->value<int64_t>())
                                                   : fmt::format("{}", *node->value<double>());
      ctx_.error(node->source(), key(name),
                 fmt::format("the bare number {} has no unit; write a string such as \"{}s\" or "
                             "\"{}ms\" (units: ms, s, m, h)",
                             shown, shown, shown));
    } else {
      wrong_type(name, *node,
                 std::string(kDurationForms.substr(std::string_view("expected ").size())));
    }
    return true;
  }

  bool optional_duration(std::string_view name, std::optional<Millis>& out) {
    Millis value{};
    const size_t before = ctx_.errors.size();
    if (!duration(name, value)) return false;
    if (ctx_.errors.size() == before) out = value;
    return true;
  }

  // Leaves `out` with port 0 (a placeholder validation skips) if the value is unreadable.
  bool host_port(std::string_view name, HostPort& out) {
    const toml::node* node = take(name);
    if (!node) return false;
    if (!node->is_string()) {
      wrong_type(name, *node, R"(a "host:port" string)");
      return true;
    }
    read_host_port(key(name), *node, out);
    return true;
  }

  template <class E, size_t N>
  bool choice(std::string_view name, E& out, const Choice<E> (&choices)[N]) {
    const toml::node* node = take(name);
    if (!node) return false;
    std::vector<std::string> names;
    for (const auto& c : choices) names.emplace_back(fmt::format("\"{}\"", c.name));
    if (!node->is_string()) {
      wrong_type(name, *node, fmt::format("one of {}", fmt::join(names, ", ")));
      return true;
    }
    const std::string text = *node->value<std::string>();
    for (const auto& c : choices) {
      if (c.name == text) {
        out = c.value;
        return true;
      }
    }
    ctx_.error(node->source(), key(name),
               fmt::format("\"{}\" is not one of {}", text, fmt::join(names, ", ")));
    return true;
  }

  // An array under `name`, each element handed to `read(element_key, node)`.
  template <class F>
  bool array(std::string_view name, std::string_view element_form, F&& read) {
    const toml::node* node = take(name);
    if (!node) return false;
    const toml::array* items = node->as_array();
    if (!items) {
      wrong_type(name, *node, fmt::format("an array of {}", element_form));
      return true;
    }
    for (size_t i = 0; i < items->size(); ++i) {
      const std::string element_key = fmt::format("{}[{}]", key(name), i);
      ctx_.record(element_key, (*items)[i].source());
      read(element_key, (*items)[i]);
    }
    return true;
  }

  void read_host_port(const std::string& key, const toml::node& node, HostPort& out) {
    auto parsed = parse_host_port_explained(*node.value<std::string>());
    if (parsed.value) {
      out = std::move(*parsed.value);
    } else {
      ctx_.error(node.source(), key, fmt::format("{}; {}", parsed.problem, kHostPortForms));
    }
  }

  template <class T>
  void store_integer(const std::string& key, const toml::node& node, int64_t value, T& out) {
    if (value < 0) {
      ctx_.error(node.source(), key, fmt::format("must not be negative, got {}", value));
    } else if (static_cast<uint64_t>(value) > std::numeric_limits<T>::max()) {
      ctx_.error(node.source(), key,
                 fmt::format("{} is too large (at most {})", value, std::numeric_limits<T>::max()));
    } else {
      out = static_cast<T>(value);
    }
  }

  // Reports every key of the table that no one asked for, with the likely intended key.
  void finish(std::string_view section) {
    for (const auto& [k, node] : table_) {
      const std::string name(k.str());
      if (std::find(known_.begin(), known_.end(), name) != known_.end()) continue;
      std::string message = fmt::format("unknown key '{}'", name);
      if (auto near = closest_match(name, known_)) {
        message += fmt::format(" (did you mean '{}'?)", *near);
      } else if (auto alias = alias_for(name)) {
        message += fmt::format(" (did you mean '{}'?)", *alias);
      } else {
        message += fmt::format("; keys allowed in {}: {}", section, fmt::join(known_, ", "));
      }
      ctx_.error(k.source(), key(name), std::move(message));
    }
  }

  LoadContext& context() { return ctx_; }
  const toml::table& table() const { return table_; }
  const std::string& prefix() const { return prefix_; }
  // Keys another file's reader handles (route_section.cc): known, so finish() accepts them.
  void known(std::span<const std::string_view> names) {
    for (std::string_view name : names) known_.emplace_back(name);
  }
  SectionSink sink() { return SectionSink{ctx_.file, ctx_.errors, ctx_.places}; }

 private:
  // Names nginx, HAProxy and Envoy users reach for.
  std::optional<std::string> alias_for(const std::string& name) const {
    static const std::pair<std::string_view, std::string_view> kAliases[] = {
        {"upstream", "cluster"},
        {"upstreams", "cluster"},
        {"backend", "cluster"},
        {"backends", "cluster"},
        {"servers", "hosts"},
        {"server", "hosts"},
        {"endpoints", "hosts"},
        {"listen", "listener"},
        {"location", "route"},
        {"prefix", "path_prefix"},
        {"path", "path_prefix"},
        {"keepalive_timeout", "idle_timeout"},
        {"keepalive", "max_idle_per_host"},
        {"proxy_ignore_client_abort", "ignore_client_abort"},
    };
    for (const auto& [from, to] : kAliases) {
      if (from == name && std::find(known_.begin(), known_.end(), to) != known_.end()) {
        return std::string(to);
      }
    }
    return std::nullopt;
  }

  LoadContext& ctx_;
  const toml::table& table_;
  std::string prefix_;
  std::vector<std::string> known_;
};

constexpr Choice<LbPolicy> kLbPolicies[] = {
    {"round_robin", LbPolicy::round_robin},
    {"least_request", LbPolicy::least_request},
};
constexpr Choice<RetryNonIdempotent> kRetryModes[] = {
    {"never", RetryNonIdempotent::never},
    {"idempotency-key", RetryNonIdempotent::idempotency_key},
    {"reused-connection", RetryNonIdempotent::reused_connection},
};

constexpr Choice<http::EscapedSlashAction> kEscapedSlashActions[] = {
    {"reject_request", http::EscapedSlashAction::reject_request},
    {"keep_unchanged", http::EscapedSlashAction::keep_unchanged},
    {"unescape_and_forward", http::EscapedSlashAction::unescape_and_forward},
};

void read_server(TableReader& r, ServerConfig& s) {
  r.integer("workers", s.workers);
  r.duration("header_timeout", s.header_timeout);
  r.duration("body_timeout", s.body_timeout);
  r.duration("client_idle_timeout", s.client_idle_timeout);
  r.duration("send_timeout", s.send_timeout);
  r.duration("drain_timeout", s.drain_timeout);
  r.integer("max_requests_per_client_connection", s.max_requests_per_client_connection);
  r.integer("max_connections_per_worker", s.max_connections_per_worker);
  r.size("max_request_line", s.max_request_line);
  r.size("max_header_bytes", s.max_header_bytes);
  r.integer("max_header_count", s.max_header_count);
  r.size("max_body_bytes", s.max_body_bytes);
  r.string("access_log", s.access_log);
  r.boolean("merge_slashes", s.merge_slashes);
  r.choice("escaped_slashes_action", s.escaped_slashes, kEscapedSlashActions);
  r.duration("tunnel_idle_timeout", s.tunnel_idle_timeout);
  r.integer("max_tunnels_per_worker", s.max_tunnels_per_worker);
  SectionSink sink = r.sink();
  read_server_forwarding(sink, r.table(), s);
  r.known(kServerForwardingKeys);
  r.finish("[server]");
}

void read_listener(TableReader& r, ListenerConfig& l) {
  if (!r.host_port("address", l.address)) r.missing("address", R"(address = "127.0.0.1:8080")");
  if (const toml::node* tls = r.take("tls")) {
    LoadContext& c = r.context();
    read_listener_tls({c.file, c.errors, c.places}, r.key("tls"), *tls, l.tls);
  }
  r.finish("[[listener]]");
}

void read_admin(TableReader& r, AdminConfig& a) {
  if (const toml::node* node = r.take("address")) {
    if (!node->is_string()) {
      r.wrong_type("address", *node, R"(a "host:port" string or "off")");
    } else if (*node->value<std::string>() == "off") {
      a.address.reset();
    } else {
      a.address = HostPort{};
      r.read_host_port(r.key("address"), *node, *a.address);
    }
  }
  r.finish("[admin]");
}

std::optional<std::string> upgrade_token_problem(const std::string& token) {
  if (!http::is_protocol_name(token)) {
    return fmt::format("\"{}\" is not a protocol name: a token, optionally /version "
                       "(RFC 9110 7.8), e.g. \"websocket\"", token);
  }
  if (http::is_h2c(token)) {
    return std::string(
        "h2c is never forwarded: needle removes \"Upgrade: h2c\" from every request and forwards "
        "it as plain HTTP/1.1 (docs/config.md \"Upgrade and WebSocket\")");
  }
  return std::nullopt;
}

// `upgrade = ["websocket"]`: protocol names as the Upgrade field carries them (RFC 9110 7.8:
// token ["/" token]), stored lower-case. h2c is refused: needle removes it from every request.
void read_route_upgrade(TableReader& r, RouteConfig& route) {
  std::vector<std::string> tokens;
  const bool present = r.array(
      "upgrade", R"(protocol names such as "websocket")",
      [&](const std::string& key, const toml::node& node) {
        if (!node.is_string()) {
          r.context().error(node.source(), key,
                            fmt::format(R"(expected a protocol name such as "websocket", got {})",
                                        type_name(node.type())));
          return;
        }
        std::string token = *node.value<std::string>();
        std::transform(token.begin(), token.end(), token.begin(),
                       [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
        if (auto problem = upgrade_token_problem(token)) {
          r.context().error(node.source(), key, *problem);
          return;
        }
        tokens.push_back(std::move(token));
      });
  if (present) route.upgrade = std::move(tokens);
  r.optional_duration("tunnel_idle_timeout", route.tunnel_idle_timeout);
}

void read_route(TableReader& r, RouteConfig& route) {
  r.optional_string("host", route.host);
  if (route.host) {
    std::transform(route.host->begin(), route.host->end(), route.host->begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  }
  r.string("path_prefix", route.path_prefix);
  SectionSink sink = r.sink();
  read_route_section(sink, r.table(), r.prefix(), route);
  r.known(kRouteSectionKeys);
  if (!r.string("cluster", route.cluster) && !route.return_action) {
    r.missing("cluster", R"(cluster = "app")");
  }
  r.boolean("ignore_client_abort", route.ignore_client_abort);
  read_route_upgrade(r, route);
  read_route_rate_limit(r, route);
  r.finish("[[route]]");
}

void read_cluster(TableReader& r, ClusterConfig& c) {
  const bool has_hosts = r.array(
      "hosts", R"("host:port" strings)", [&](const std::string& key, const toml::node& node) {
        HostPort host;  // port 0 = placeholder for an unreadable entry
        if (node.is_string()) {
          r.read_host_port(key, node, host);
        } else if (const toml::table* weighted = node.as_table()) {
          SectionSink sink = r.sink();
          read_weighted_host(sink, key, *weighted, host);
        } else {
          r.context().error(
              node.source(), key,
              fmt::format(R"(expected a "host:port" string, got {})", type_name(node.type())));
        }
        c.hosts.push_back(std::move(host));
      });
  if (!has_hosts) r.missing("hosts", R"(hosts = ["127.0.0.1:3000"])");
  r.choice("lb", c.lb, kLbPolicies);
  r.duration("connect_timeout", c.connect_timeout);
  r.duration("response_timeout", c.response_timeout);
  r.optional_duration("idle_timeout", c.idle_timeout);
  r.duration("idle_margin_min", c.idle_margin_min);
  r.number("idle_margin_ratio", c.idle_margin_ratio);
  r.duration("initial_idle_limit", c.initial_idle_limit);
  r.integer("max_idle_per_host", c.max_idle_per_host);
  r.integer("max_requests_per_connection", c.max_requests_per_connection);
  r.duration("max_connection_age", c.max_connection_age);
  r.boolean("learn_idle_timeout", c.learn_idle_timeout);
  r.choice("retry_non_idempotent", c.retry_non_idempotent, kRetryModes);
  r.integer("max_retries", c.max_retries);
  r.size("retry_buffer_bytes", c.retry_buffer_bytes);
  r.number("retry_budget_ratio", c.retry_budget_ratio);
  r.integer("retry_budget_min_per_second", c.retry_budget_min_per_second);
  r.integer("eject_after_connect_failures", c.eject_after_connect_failures);
  r.duration("eject_duration", c.eject_duration);
  if (const toml::node* tls = r.take("tls")) {
    LoadContext& ctx = r.context();
    read_cluster_tls({ctx.file, ctx.errors, ctx.places}, r.key("tls"), *tls, c.tls);
  }
  read_cluster_discovery(r, c);
  read_cluster_health({r.context().file, r.context().errors, r.context().places},
                      "cluster." + c.name, r.take("health_check"), r.take("outlier_detection"), c);
  r.finish(fmt::format("[cluster.{}]", c.name));
}

void read_alerts(TableReader& r, AlertsConfig& a) {
  r.optional_string("webhook", a.webhook);
  r.duration("window", a.window);
  std::vector<int> statuses;
  const bool has_statuses =
      r.array("statuses", "HTTP status codes", [&](const std::string& key, const toml::node& node) {
        if (!node.is_integer()) {
          r.context().error(node.source(), key,
                            fmt::format("expected an HTTP status code such as 502, got {}",
                                        type_name(node.type())));
          return;
        }
        const int64_t status = *node.value<int64_t>();
        // Out-of-int values become 0 so validation reports them as "not an HTTP status".
        statuses.push_back(status >= 0 && status <= 999 ? static_cast<int>(status) : 0);
      });
  if (has_statuses) a.statuses = std::move(statuses);
  r.array("causes", "cause names", [&](const std::string& key, const toml::node& node) {
    if (!node.is_string()) {
      r.context().error(node.source(), key,
                        fmt::format(R"(expected a cause name such as "connect_refused", got {})",
                                    type_name(node.type())));
      return;
    }
    a.causes.push_back(*node.value<std::string>());
  });
  r.boolean("slack_text", a.slack_text);
  r.integer("max_queue", a.max_queue);
  r.finish("[alerts]");
}

// A section that must be a table: [server].
const toml::table* section_table(TableReader& root, std::string_view name) {
  const toml::node* node = root.take(name);
  if (!node) return nullptr;
  if (const toml::table* t = node->as_table()) return t;
  root.wrong_type(name, *node, fmt::format("a table: write [{}] on its own line", name));
  return nullptr;
}

// A section that must be an array of tables: [[listener]].
template <class T, class F>
void read_table_array(TableReader& root, std::string_view name, std::vector<T>& out, F&& read_one) {
  const toml::node* node = root.take(name);
  if (!node) return;
  const toml::array* items = node->as_array();
  if (!items) {
    root.wrong_type(name, *node,
                    fmt::format("[[{}]] tables (double brackets, one per {})", name, name));
    return;
  }
  for (size_t i = 0; i < items->size(); ++i) {
    const std::string key = fmt::format("{}[{}]", name, i);
    const toml::table* table = (*items)[i].as_table();
    if (!table) {
      root.context().error((*items)[i].source(), key,
                           fmt::format("expected a table, got {}; write [[{}]] sections",
                                       type_name((*items)[i].type()), name));
      continue;
    }
    root.context().record(key, table->source());
    TableReader reader(root.context(), *table, key);
    T item;
    read_one(reader, item);
    out.push_back(std::move(item));
  }
}

void read_clusters(TableReader& root, std::vector<ClusterConfig>& out) {
  const toml::table* clusters = section_table(root, "cluster");
  if (!clusters) return;
  LoadContext& ctx = root.context();
  for (const auto& [name_key, node] : *clusters) {
    const std::string name(name_key.str());
    const std::string key = "cluster." + name;
    const toml::table* table = node.as_table();
    if (!table) {
      ctx.error(node.source(), key,
                fmt::format("expected a [cluster.NAME] table such as [cluster.app], got {}; "
                            "a cluster's keys go under its own [cluster.NAME] header",
                            type_name(node.type())));
      continue;
    }
    ctx.record(key, table->source());
    TableReader reader(ctx, *table, key);
    ClusterConfig cluster;
    cluster.name = name;
    read_cluster(reader, cluster);
    out.push_back(std::move(cluster));
  }
  // toml++ iterates keys in sorted order; keep the file's order instead.
  std::stable_sort(out.begin(), out.end(), [&](const ClusterConfig& a, const ClusterConfig& b) {
    return ctx.places.line_of("cluster." + a.name) < ctx.places.line_of("cluster." + b.name);
  });
}

void read_root(LoadContext& ctx, const toml::table& root, Config& config) {
  TableReader r(ctx, root, "");
  if (const toml::table* t = section_table(r, "server")) {
    TableReader server(ctx, *t, "server");
    read_server(server, config.server);
  }
  read_table_array(r, "listener", config.listeners, read_listener);
  if (const toml::table* t = section_table(r, "admin")) {
    TableReader admin(ctx, *t, "admin");
    read_admin(admin, config.admin);
  }
  read_table_array(r, "route", config.routes, read_route);
  read_clusters(r, config.clusters);
  if (const toml::table* t = section_table(r, "alerts")) {
    TableReader alerts(ctx, *t, "alerts");
    read_alerts(alerts, config.alerts);
  }
  r.finish("the top level");
}

// The key a syntax error is nearest to, from the text alone (the document did not parse):
// the section header above `line` plus the key on that line, e.g. "cluster.app.hosts".
std::string nearest_key(std::string_view text, int line) {
  static const std::regex kHeader(R"(^\s*(\[\[?)\s*([A-Za-z0-9_.\-]+)\s*\]\]?)");
  static const std::regex kKey(R"(^\s*([A-Za-z0-9_\-]+)\s*=)");
  std::string section;
  std::map<std::string, int> array_counts;
  std::istringstream lines{std::string(text)};
  std::string current;
  for (int n = 1; std::getline(lines, current) && n <= line; ++n) {
    std::smatch m;
    if (std::regex_search(current, m, kHeader)) {
      const std::string name = m[2].str();
      if (m[1].str() == "[[") {
        section = fmt::format("{}[{}]", name, array_counts[name]++);
      } else {
        section = name;
      }
      if (n == line) return section;
    } else if (n == line && std::regex_search(current, m, kKey)) {
      return section.empty() ? m[1].str() : fmt::format("{}.{}", section, m[1].str());
    }
  }
  return section;
}

}  // namespace

LoadResult parse_config(std::string_view toml_text, const std::string& source_name) {
  SourceMap places;
  return parse_config_placed(toml_text, source_name, places);
}

LoadResult parse_config_placed(std::string_view toml_text, const std::string& source_name,
                               SourceMap& places) {
  LoadResult result;
  toml::table root;
#if TOML_EXCEPTIONS
  try {
    root = toml::parse(toml_text, source_name);
  } catch (const toml::parse_error& e) {
    const int line = static_cast<int>(e.source().begin.line);
    result.errors.push_back(ConfigError{
        source_name, line, static_cast<int>(e.source().begin.column), nearest_key(toml_text, line),
        fmt::format("TOML syntax error: {}", e.description())});
    return result;
  }
#else
  toml::parse_result parsed = toml::parse(toml_text, source_name);
  if (!parsed) {
    const auto& e = parsed.error();
    const int line = static_cast<int>(e.source().begin.line);
    result.errors.push_back(ConfigError{
        source_name, line, static_cast<int>(e.source().begin.column), nearest_key(toml_text, line),
        fmt::format("TOML syntax error: {}", e.description())});
    return result;
  }
  root = std::move(parsed).table();
#endif

  Config config;
  config.source = source_name;
  LoadContext ctx{source_name, result.errors, places};
  read_root(ctx, root, config);
  validate_config(config, places, result.errors);
  sort_errors(result.errors);
  if (result.errors.empty()) result.config = std::move(config);
  return result;
}

}  // namespace needle::config
