// Parsing and checks of the keys issue 19 adds (docs/config.md "Routing", "Header rules",
// "Weighted hosts", "Client address and X-Forwarded-*"). Shape here, as in toml_loader.cc;
// checks that need the whole config in validate_route_section().
#include "config/route_section.h"

#include <algorithm>
#include <array>

#include <fmt/format.h>
#include <re2/re2.h>

#include "base/duration.h"
#include "config/value_text.h"

namespace needle::config {
namespace {

constexpr std::array<std::string_view, 11> kRouteKeys = {
    "path_exact",   "path_regex",       "methods",         "rewrite_prefix",
    "host_rewrite", "response_timeout", "max_retries",     "retry_non_idempotent",
    "return",       "request_headers",  "response_headers"};
constexpr std::array<std::string_view, 4> kServerKeys = {"trusted_proxies", "forwarded",
                                                         "server_header", "via"};

constexpr uint32_t kMaxWeight = 10000;
constexpr uint32_t kMaxRouteRetries = 10;  // as a cluster's max_retries

std::string join_key(const std::string& prefix, std::string_view name) {
  return prefix.empty() ? std::string(name) : fmt::format("{}.{}", prefix, name);
}

// Reads one table's keys of this file: node lookup, recording, typed reads.
class Keys {
 public:
  Keys(SectionSink& sink, const toml::table& table, std::string prefix)
      : sink_(sink), table_(table), prefix_(std::move(prefix)) {}

  std::string key(std::string_view name) const { return join_key(prefix_, name); }

  const toml::node* take(std::string_view name) {
    const toml::node* node = table_.get(name);
    if (node) sink_.record(key(name), *node);
    return node;
  }

  bool string(std::string_view name, std::optional<std::string>& out) {
    const toml::node* node = take(name);
    if (!node) return false;
    if (!node->is_string()) {
      sink_.error(*node, key(name), "expected a string");
      return false;
    }
    out = *node->value<std::string>();
    return true;
  }

  void boolean(std::string_view name, bool& out) {
    const toml::node* node = take(name);
    if (!node) return;
    if (!node->is_boolean()) return sink_.error(*node, key(name), "expected true or false");
    out = *node->value<bool>();
  }

  SectionSink& sink() { return sink_; }
  const toml::table& table() const { return table_; }

 private:
  SectionSink& sink_;
  const toml::table& table_;
  std::string prefix_;
};

bool is_token(std::string_view text) {
  return http::is_field_name(text);
}

bool is_host_text(std::string_view host) {
  return !host.empty() && std::all_of(host.begin(), host.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '[' || c == ']' || c == ':';
  });
}

// `{ set = { Name = "value" }, add = { ... }, remove = ["Name"] }`.
void read_header_rules(Keys& keys, std::string_view name, http::HeaderRuleSet& out) {
  const toml::node* node = keys.take(name);
  if (!node) return;
  SectionSink& sink = keys.sink();
  const std::string key = keys.key(name);
  const toml::table* table = node->as_table();
  if (!table) {
    return sink.error(*node, key,
                      R"(expected a table such as { set = { "X-Env" = "prod" }, )"
                      R"(remove = ["X-Debug"] })");
  }
  auto check_name = [&](const toml::node& where, const std::string& field_key,
                        std::string_view field) {
    if (!http::is_field_name(field)) {
      sink.error(where, field_key, fmt::format("\"{}\" is not a header field name", field));
      return false;
    }
    if (http::framing_field(field)) {
      sink.error(where, field_key,
                 fmt::format("{} frames the message or the connection and is needle's to "
                             "write; header rules may not set, add or remove it{}",
                             field,
                             http::classify_field(field) == http::FieldId::host
                                 ? " (use the route's host_rewrite)"
                                 : ""));
      return false;
    }
    return true;
  };
  for (const auto& [op_key, op_node] : *table) {
    const std::string op(op_key.str());
    const std::string op_full = fmt::format("{}.{}", key, op);
    sink.record(op_full, op_node);
    if (op == "remove") {
      const toml::array* names = op_node.as_array();
      if (!names) {
        sink.error(op_node, op_full, R"(expected an array of field names such as ["X-Debug"])");
        continue;
      }
      for (size_t i = 0; i < names->size(); ++i) {
        const toml::node& item = (*names)[i];
        const std::string item_key = fmt::format("{}[{}]", op_full, i);
        sink.record(item_key, item);
        if (!item.is_string()) {
          sink.error(item, item_key, "expected a field name string");
          continue;
        }
        const std::string field = *item.value<std::string>();
        if (!check_name(item, item_key, field)) continue;
        out.push(http::HeaderRule{http::HeaderRuleOp::remove, field, http::FieldId::other, {}});
      }
      continue;
    }
    if (op != "set" && op != "add") {
      sink.error(op_node, op_full,
                 fmt::format("unknown key '{}'; header rules have set, add and remove", op));
      continue;
    }
    const toml::table* fields = op_node.as_table();
    if (!fields) {
      sink.error(op_node, op_full, R"(expected a table such as { "X-Env" = "prod" })");
      continue;
    }
    for (const auto& [field_key, value_node] : *fields) {
      const std::string field(field_key.str());
      const std::string item_key = fmt::format("{}.{}", op_full, field);
      sink.record(item_key, value_node);
      if (!check_name(value_node, item_key, field)) continue;
      if (!value_node.is_string()) {
        sink.error(value_node, item_key, "expected a string value");
        continue;
      }
      std::string problem;
      auto value = http::compile_value(*value_node.value<std::string>(), problem);
      if (!value) {
        sink.error(value_node, item_key, problem);
        continue;
      }
      out.push(http::HeaderRule{op == "set" ? http::HeaderRuleOp::set : http::HeaderRuleOp::add,
                                field, http::FieldId::other, std::move(*value)});
    }
  }
}

// `return = { status = 301, headers = { Location = "..." }, body = "..." }`.
void read_return(Keys& keys, std::optional<ReturnAction>& out) {
  const toml::node* node = keys.take("return");
  if (!node) return;
  SectionSink& sink = keys.sink();
  const std::string key = keys.key("return");
  const toml::table* table = node->as_table();
  if (!table) {
    return sink.error(*node, key,
                      R"(expected a table such as { status = 301, headers = { Location = )"
                      R"("https://$host$request_uri" } })");
  }
  ReturnAction action;
  bool ok = true;
  for (const auto& [name_key, value] : *table) {
    const std::string name(name_key.str());
    const std::string item_key = fmt::format("{}.{}", key, name);
    sink.record(item_key, value);
    if (name == "status") {
      const auto status = value.value<int64_t>();
      if (!value.is_integer() || *status < 200 || *status > 599) {
        sink.error(value, item_key, "expected an HTTP status from 200 to 599, e.g. 301");
        ok = false;
        continue;
      }
      action.status = static_cast<int>(*status);
    } else if (name == "body") {
      if (!value.is_string()) {
        sink.error(value, item_key, "expected a string");
        ok = false;
        continue;
      }
      action.body = *value.value<std::string>();
    } else if (name == "headers") {
      const toml::table* fields = value.as_table();
      if (!fields) {
        sink.error(value, item_key, R"(expected a table such as { Location = "/new" })");
        ok = false;
        continue;
      }
      for (const auto& [field_key, field_value] : *fields) {
        const std::string field(field_key.str());
        const std::string field_full = fmt::format("{}.{}", item_key, field);
        sink.record(field_full, field_value);
        std::string problem;
        std::optional<http::ValueTemplate> compiled;
        if (!http::is_field_name(field)) {
          problem = fmt::format("\"{}\" is not a header field name", field);
        } else if (http::framing_field(field)) {
          problem =
              fmt::format("{} is written by needle from the body; it may not be set here", field);
        } else if (!field_value.is_string()) {
          problem = "expected a string value";
        } else {
          compiled = http::compile_value(*field_value.value<std::string>(), problem);
        }
        if (!compiled) {
          sink.error(field_value, field_full, problem);
          ok = false;
          continue;
        }
        action.headers.emplace_back(field, std::move(*compiled));
      }
    } else {
      sink.error(value, item_key,
                 fmt::format("unknown key '{}'; return has status, headers and body", name));
      ok = false;
    }
  }
  if (ok)
    out = std::move(action);
  else
    out = ReturnAction{};  // still a return route: do not also report "missing cluster"
}

void read_methods(Keys& keys, std::vector<std::string>& out) {
  const toml::node* node = keys.take("methods");
  if (!node) return;
  const std::string key = keys.key("methods");
  const toml::array* items = node->as_array();
  if (!items || items->empty()) {
    return keys.sink().error(*node, key, R"(expected a non-empty array such as ["GET", "HEAD"])");
  }
  for (size_t i = 0; i < items->size(); ++i) {
    const toml::node& item = (*items)[i];
    const std::string item_key = fmt::format("{}[{}]", key, i);
    keys.sink().record(item_key, item);
    const auto method = item.value<std::string>();
    if (!item.is_string() || !is_token(*method)) {
      keys.sink().error(item, item_key, R"(expected a method name such as "GET")");
      continue;
    }
    // RFC 9110 9.1: methods are case-sensitive; the standard ones are upper-case.
    if (std::any_of(method->begin(), method->end(), [](char c) { return c >= 'a' && c <= 'z'; })) {
      keys.sink().error(item, item_key,
                        fmt::format("\"{}\": methods are case-sensitive (RFC 9110 9.1); write "
                                    "it in upper case as clients send it",
                                    *method));
      continue;
    }
    out.push_back(*method);
  }
}

void read_overrides(Keys& keys, RouteOverrides& out) {
  SectionSink& sink = keys.sink();
  if (const toml::node* node = keys.take("response_timeout")) {
    const auto text = node->value<std::string>();
    const auto parsed = node->is_string() ? parse_duration(*text) : std::nullopt;
    if (!parsed || *parsed <= Millis(0)) {
      sink.error(*node, keys.key("response_timeout"),
                 fmt::format("{} greater than 0", kDurationForms));
    } else {
      out.response_timeout = *parsed;
    }
  }
  if (const toml::node* node = keys.take("max_retries")) {
    const auto n = node->value<int64_t>();
    if (!node->is_integer() || *n < 0 || *n > kMaxRouteRetries) {
      sink.error(*node, keys.key("max_retries"),
                 fmt::format("expected an integer from 0 to {}", kMaxRouteRetries));
    } else {
      out.max_retries = static_cast<uint32_t>(*n);
    }
  }
  if (const toml::node* node = keys.take("retry_non_idempotent")) {
    const auto text = node->value<std::string>();
    static constexpr std::pair<std::string_view, RetryNonIdempotent> kModes[] = {
        {"never", RetryNonIdempotent::never},
        {"idempotency-key", RetryNonIdempotent::idempotency_key},
        {"reused-connection", RetryNonIdempotent::reused_connection}};
    for (const auto& [name, mode] : kModes) {
      if (node->is_string() && *text == name) out.retry_non_idempotent = mode;
    }
    if (!out.retry_non_idempotent) {
      sink.error(*node, keys.key("retry_non_idempotent"),
                 R"(expected one of "never", "idempotency-key", "reused-connection")");
    }
  }
}

}  // namespace

void SectionSink::error(const toml::node& where, const std::string& key, std::string message) {
  errors.push_back(ConfigError{file, static_cast<int>(where.source().begin.line),
                               static_cast<int>(where.source().begin.column), key,
                               std::move(message)});
}

void SectionSink::record(const std::string& key, const toml::node& where) {
  places.add(key, static_cast<int>(where.source().begin.line),
             static_cast<int>(where.source().begin.column));
}

const std::span<const std::string_view> kRouteSectionKeys(kRouteKeys);
const std::span<const std::string_view> kServerForwardingKeys(kServerKeys);

void read_route_section(SectionSink& sink, const toml::table& table, const std::string& prefix,
                        RouteConfig& route) {
  Keys keys(sink, table, prefix);
  keys.string("path_exact", route.path_exact);
  keys.string("path_regex", route.path_regex);
  const int path_keys = (table.contains("path_prefix") ? 1 : 0) + (route.path_exact ? 1 : 0) +
                        (route.path_regex ? 1 : 0);
  if (path_keys > 1) {
    sink.error(table, prefix,
               "a route matches its path with one of path_prefix, path_exact and path_regex; "
               "split it into one route per match");
  }
  if (route.path_exact && (route.path_exact->empty() || route.path_exact->front() != '/')) {
    sink.error(*table.get("path_exact"), keys.key("path_exact"),
               fmt::format("\"{}\" must start with '/'", *route.path_exact));
  }
  if (route.path_regex) {
    const RE2 compiled(*route.path_regex, RE2::Quiet);
    if (!compiled.ok()) {
      sink.error(*table.get("path_regex"), keys.key("path_regex"),
                 fmt::format("not an RE2 regular expression: {}", compiled.error()));
    }
  }
  read_methods(keys, route.methods);
  if (keys.string("rewrite_prefix", route.rewrite_prefix)) {
    const toml::node& where = *table.get("rewrite_prefix");
    if (route.path_exact || route.path_regex) {
      sink.error(where, keys.key("rewrite_prefix"),
                 "rewrite_prefix replaces the matched path_prefix; this route has none");
    } else if (route.rewrite_prefix->empty() || route.rewrite_prefix->front() != '/') {
      sink.error(where, keys.key("rewrite_prefix"),
                 fmt::format("\"{}\" must start with '/'", *route.rewrite_prefix));
    }
  }
  std::optional<std::string> host_rewrite;
  if (keys.string("host_rewrite", host_rewrite)) {
    if (*host_rewrite == "$upstream") {
      route.host_rewrite.kind = HostRewrite::Kind::upstream;
    } else if (is_host_text(*host_rewrite)) {
      route.host_rewrite = {HostRewrite::Kind::fixed, *host_rewrite};
    } else {
      sink.error(*table.get("host_rewrite"), keys.key("host_rewrite"),
                 fmt::format("\"{}\" is not a host; write e.g. \"api.internal\" or "
                             "\"$upstream\" (the chosen host's address)",
                             *host_rewrite));
    }
  }
  read_overrides(keys, route.overrides);
  read_return(keys, route.return_action);
  read_header_rules(keys, "request_headers", route.request_headers);
  read_header_rules(keys, "response_headers", route.response_headers);
}

void read_server_forwarding(SectionSink& sink, const toml::table& table, ServerConfig& server) {
  Keys keys(sink, table, "server");
  if (const toml::node* node = keys.take("trusted_proxies")) {
    const toml::array* items = node->as_array();
    if (!items) {
      sink.error(*node, keys.key("trusted_proxies"),
                 R"(expected an array of ranges such as ["10.0.0.0/8", "::1/128"])");
    } else {
      for (size_t i = 0; i < items->size(); ++i) {
        const toml::node& item = (*items)[i];
        const std::string item_key = fmt::format("server.trusted_proxies[{}]", i);
        sink.record(item_key, item);
        std::string problem = "expected a string such as \"10.0.0.0/8\"";
        const auto text = item.value<std::string>();
        const auto cidr = item.is_string() ? parse_cidr(*text, problem) : std::nullopt;
        if (!cidr) {
          sink.error(item, item_key,
                     item.is_string() ? fmt::format("\"{}\" {}", *text, problem) : problem);
          continue;
        }
        server.trusted_proxies.add(*cidr);
      }
    }
  }
  keys.boolean("forwarded", server.forwarded);
  if (keys.string("server_header", server.server_header)) {
    std::string problem;
    if (!http::compile_value(*server.server_header, problem) ||
        server.server_header->find('$') != std::string::npos) {
      sink.error(*table.get("server_header"), "server.server_header",
                 "expected a plain value such as \"needle\" (no CR, LF, NUL or variables)");
    }
  }
  keys.boolean("via", server.via);
}

void read_weighted_host(SectionSink& sink, const std::string& key, const toml::table& table,
                        HostPort& host) {
  for (const auto& [name_key, value] : table) {
    const std::string name(name_key.str());
    const std::string item_key = fmt::format("{}.{}", key, name);
    sink.record(item_key, value);
    if (name == "address") {
      if (!value.is_string()) {
        sink.error(value, item_key, std::string(kHostPortForms));
        continue;
      }
      auto parsed = parse_host_port_explained(*value.value<std::string>());
      if (!parsed.value) {
        sink.error(value, item_key, fmt::format("{}; {}", parsed.problem, kHostPortForms));
        continue;
      }
      const uint32_t weight = host.weight;
      host = std::move(*parsed.value);
      host.weight = weight;
    } else if (name == "weight") {
      const auto n = value.value<int64_t>();
      if (!value.is_integer() || *n < 1 || *n > kMaxWeight) {
        sink.error(value, item_key, fmt::format("expected an integer from 1 to {}", kMaxWeight));
        continue;
      }
      host.weight = static_cast<uint32_t>(*n);
    } else {
      sink.error(value, item_key,
                 fmt::format("unknown key '{}'; a host is {{ address = \"10.0.0.1:80\", "
                             "weight = 3 }}",
                             name));
    }
  }
  if (!table.contains("address")) {
    sink.error(table, key, R"(missing 'address'; e.g. { address = "10.0.0.1:80", weight = 3 })");
  }
}

std::string route_match_key(const RouteConfig& route) {
  std::string key = route.path_exact   ? "exact " + *route.path_exact
                    : route.path_regex ? "regex " + *route.path_regex
                                       : "prefix " + route.path_prefix;
  if (!route.methods.empty()) key += fmt::format(" methods {}", fmt::join(route.methods, ","));
  return key;
}

void validate_route_section(const Config& config, const SourceMap& places,
                            std::vector<ConfigError>& errors) {
  for (size_t i = 0; i < config.routes.size(); ++i) {
    const RouteConfig& route = config.routes[i];
    const std::string key = fmt::format("route[{}]", i);
    if (route.return_action && !route.cluster.empty()) {
      errors.push_back(places.error(config.source, key + ".return",
                                    "a route with return is answered by needle; remove its "
                                    "cluster (or the return)"));
    }
    if (route.return_action &&
        (route.rewrite_prefix || route.overrides.max_retries || route.overrides.response_timeout ||
         route.host_rewrite.kind != HostRewrite::Kind::keep || !route.request_headers.empty())) {
      errors.push_back(places.error(config.source, key + ".return",
                                    "a route with return sends nothing upstream: rewrite_prefix, "
                                    "host_rewrite, request_headers, response_timeout and "
                                    "max_retries do not apply"));
    }
  }
}

}  // namespace needle::config
