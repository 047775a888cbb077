#include "config/health_section.h"

#include <algorithm>
#include <limits>

#include <fmt/format.h>

#include "base/duration.h"
#include "config/value_text.h"

namespace needle::config {
namespace {

// Reads one table's keys; every key asked for is known, finish() reports the others.
class SectionReader {
 public:
  SectionReader(HealthSectionSink& sink, const toml::table& table, std::string prefix)
      : sink_(sink), table_(table), prefix_(std::move(prefix)) {}

  std::string key(std::string_view name) const { return fmt::format("{}.{}", prefix_, name); }

  void error(const toml::node& where, const std::string& key, std::string message) {
    sink_.errors.push_back(ConfigError{sink_.file, static_cast<int>(where.source().begin.line),
                                       static_cast<int>(where.source().begin.column), key,
                                       std::move(message)});
  }

  const toml::node* take(std::string_view name) {
    known_.emplace_back(name);
    const toml::node* node = table_.get(name);
    if (node) {
      sink_.places.add(key(name), static_cast<int>(node->source().begin.line),
                       static_cast<int>(node->source().begin.column));
    }
    return node;
  }

  void string(std::string_view name, std::string& out) {
    const toml::node* node = take(name);
    if (!node) return;
    if (!node->is_string()) return error(*node, key(name), "expected a string");
    out = *node->value<std::string>();
  }

  // An integer in [min, max].
  void integer(std::string_view name, uint32_t& out, int64_t min, int64_t max) {
    const toml::node* node = take(name);
    if (!node) return;
    if (!node->is_integer()) return error(*node, key(name), "expected an integer");
    const int64_t value = *node->value<int64_t>();
    if (value < min || value > max) {
      return error(*node, key(name),
                   fmt::format("must be between {} and {}, got {}", min, max, value));
    }
    out = static_cast<uint32_t>(value);
  }

  // A positive duration.
  void duration(std::string_view name, Millis& out) {
    const toml::node* node = take(name);
    if (!node) return;
    if (!node->is_string()) {
      return error(*node, key(name), fmt::format("expected a string; {}", kDurationForms));
    }
    const std::string text = *node->value<std::string>();
    auto parsed = parse_duration(text);
    if (!parsed) {
      return error(*node, key(name),
                   fmt::format("\"{}\" is not a duration; {}", text, kDurationForms));
    }
    if (parsed->count() <= 0) return error(*node, key(name), "must be greater than 0");
    out = *parsed;
  }

  // One of `names`; the index chosen, or -1.
  int choice(std::string_view name, std::initializer_list<std::string_view> names) {
    const toml::node* node = take(name);
    if (!node) return -1;
    const std::string shown = fmt::format("\"{}\"", fmt::join(names, "\", \""));
    if (node->is_string()) {
      const std::string text = *node->value<std::string>();
      int index = 0;
      for (std::string_view candidate : names) {
        if (candidate == text) return index;
        ++index;
      }
    }
    error(*node, key(name), fmt::format("expected one of {}", shown));
    return -1;
  }

  void finish() {
    for (const auto& [k, node] : table_) {
      const std::string name(k.str());
      if (std::find(known_.begin(), known_.end(), name) != known_.end()) continue;
      error(node, key(name),
            fmt::format("unknown key '{}'; keys allowed here: {}", name, fmt::join(known_, ", ")));
    }
  }

  const toml::table& table() const { return table_; }

 private:
  HealthSectionSink& sink_;
  const toml::table& table_;
  std::string prefix_;
  std::vector<std::string> known_;
};

const toml::table* as_section(HealthSectionSink& sink, const toml::node& node,
                              const std::string& key) {
  if (const toml::table* table = node.as_table()) return table;
  sink.errors.push_back(
      ConfigError{sink.file, static_cast<int>(node.source().begin.line),
                  static_cast<int>(node.source().begin.column), key,
                  fmt::format("expected a table: write [{}] on its own line", key)});
  return nullptr;
}

void read_expected_statuses(SectionReader& r, std::vector<int>& out) {
  const toml::node* node = r.take("expected_statuses");
  if (!node) return;
  const toml::array* items = node->as_array();
  if (!items || items->empty()) {
    return r.error(*node, r.key("expected_statuses"),
                   "expected a non-empty array of HTTP status codes such as [200, 204]");
  }
  std::vector<int> statuses;
  for (size_t i = 0; i < items->size(); ++i) {
    const toml::node& item = (*items)[i];
    const std::string key = fmt::format("{}[{}]", r.key("expected_statuses"), i);
    const auto value = item.value<int64_t>();
    if (!item.is_integer() || *value < 100 || *value > 599) {
      r.error(item, key, "expected an HTTP status code from 100 to 599");
      continue;
    }
    statuses.push_back(static_cast<int>(*value));
  }
  out = std::move(statuses);
}

void read_health_check(SectionReader& r, HealthCheckConfig& h) {
  const int type = r.choice("type", {"http", "tcp"});
  if (type == 1) h.type = HealthCheckType::tcp;
  const toml::node* path = r.table().get("path");
  r.string("path", h.path);
  if (path && path->is_string() && (h.path.empty() || h.path.front() != '/')) {
    r.error(*path, r.key("path"), "must start with '/', e.g. \"/healthz\"");
  }
  if (path && h.type == HealthCheckType::tcp) {
    r.error(*path, r.key("path"),
            "a tcp check sends no request; remove path or use type = \"http\"");
  }
  std::string host;
  r.string("host", host);
  if (!host.empty()) h.host = host;
  read_expected_statuses(r, h.expected_statuses);
  r.duration("interval", h.interval);
  r.duration("timeout", h.timeout);
  r.integer("healthy_threshold", h.healthy_threshold, 1, 1000);
  r.integer("unhealthy_threshold", h.unhealthy_threshold, 1, 1000);
  const int initial = r.choice("initial_state", {"unhealthy", "healthy"});
  if (initial == 1) h.initial_healthy = true;
  if (h.timeout > h.interval) {
    const toml::node* where = r.table().get("timeout");
    r.error(where ? *where : static_cast<const toml::node&>(r.table()), r.key("timeout"),
            fmt::format("{} ms is longer than interval ({} ms): a check would still run when "
                        "the next one is due",
                        h.timeout.count(), h.interval.count()));
  }
  r.finish();
}

void read_outlier_detection(SectionReader& r, OutlierDetectionConfig& o) {
  constexpr int64_t kMaxCount = std::numeric_limits<uint32_t>::max();
  r.integer("consecutive_5xx", o.consecutive_5xx, 0, kMaxCount);
  r.integer("consecutive_gateway_failure", o.consecutive_gateway_failure, 0, kMaxCount);
  r.duration("base_ejection_time", o.base_ejection_time);
  r.duration("max_ejection_time", o.max_ejection_time);
  r.integer("max_ejection_percent", o.max_ejection_percent, 0, 100);
  r.duration("interval", o.interval);
  if (o.max_ejection_time < o.base_ejection_time) {
    const toml::node* where = r.table().get("max_ejection_time");
    r.error(where ? *where : static_cast<const toml::node&>(r.table()), r.key("max_ejection_time"),
            fmt::format("{} ms is below base_ejection_time ({} ms)", o.max_ejection_time.count(),
                        o.base_ejection_time.count()));
  }
  r.finish();
}

}  // namespace

void read_cluster_health(HealthSectionSink sink, const std::string& cluster_key,
                         const toml::node* health_check, const toml::node* outlier_detection,
                         ClusterConfig& cluster) {
  if (health_check) {
    const std::string key = cluster_key + ".health_check";
    if (const toml::table* table = as_section(sink, *health_check, key)) {
      SectionReader reader(sink, *table, key);
      HealthCheckConfig config;
      read_health_check(reader, config);
      cluster.health_check = std::move(config);
    }
  }
  if (outlier_detection) {
    const std::string key = cluster_key + ".outlier_detection";
    if (const toml::table* table = as_section(sink, *outlier_detection, key)) {
      SectionReader reader(sink, *table, key);
      OutlierDetectionConfig config;
      read_outlier_detection(reader, config);
      cluster.outlier_detection = config;
    }
  }
}

}  // namespace needle::config
