#include "server/state_handoff.h"

#include <fmt/format.h>

#include "base/json_writer.h"
#include "server/json_reader.h"

namespace needle::server {
namespace {

using upstream::CloseVerdict;
using upstream::IdleTimeoutEstimator;

void append_optional(std::string& out, std::string_view key, std::optional<int64_t> value) {
  if (value) out += fmt::format(",\"{}\":{}", key, *value);
}

void append_host(std::string& out, const HostLearnedState& host) {
  const auto& evidence = host.state.evidence;
  out += "{\"cluster\":";
  json::append_string(out, host.cluster);
  out += ",\"host\":";
  json::append_string(out, host.host);
  auto ms = [](const std::optional<Millis>& v) {
    return v ? std::optional<int64_t>(v->count()) : std::nullopt;
  };
  append_optional(out, "ejection_left_ms", ms(host.state.ejection_left));
  append_optional(out, "hint_ms", ms(evidence.hint));
  append_optional(out, "survived_ms", ms(evidence.survived));
  append_optional(out, "proven_reuse_ms", ms(evidence.proven_reuse));
  if (evidence.request_cap) append_optional(out, "request_cap", *evidence.request_cap);
  out += fmt::format(",\"max_requests_before_reuse\":{},\"closes\":[",
                     evidence.max_requests_before_reuse);
  for (size_t i = 0; i < evidence.closes.size(); ++i) {
    const auto& close = evidence.closes[i];
    out += fmt::format(
        "{}{{\"ago_ms\":{},\"idle_age_ms\":{},\"requests_done\":{},\"verdict\":\"{}\"}}",
        i ? "," : "", close.ago.count(), close.idle_age.count(),
        close.requests_done, upstream::close_verdict_name(close.verdict));
  }
  out += "]}";
}

std::optional<Millis> read_ms(const Json& object, std::string_view key) {
  const Json& value = object[key];
  if (value.type != Json::Type::number || value.n < 0) return std::nullopt;
  return Millis(value.integer());
}

std::optional<CloseVerdict> verdict_named(std::string_view name) {
  for (size_t i = 0; i < static_cast<size_t>(CloseVerdict::count_); ++i) {
    const auto verdict = static_cast<CloseVerdict>(i);
    if (upstream::close_verdict_name(verdict) == name) return verdict;
  }
  return std::nullopt;
}

std::optional<HostLearnedState> read_host(const Json& object, std::string* why) {
  if (object.type != Json::Type::object || object["cluster"].type != Json::Type::string ||
      object["host"].type != Json::Type::string) {
    *why = "a host entry without cluster and host";
    return std::nullopt;
  }
  HostLearnedState host;
  host.cluster = object["cluster"].str();
  host.host = object["host"].str();
  host.state.ejection_left = read_ms(object, "ejection_left_ms");
  auto& evidence = host.state.evidence;
  evidence.hint = read_ms(object, "hint_ms");
  evidence.survived = read_ms(object, "survived_ms");
  evidence.proven_reuse = read_ms(object, "proven_reuse_ms");
  if (auto cap = read_ms(object, "request_cap")) {
    evidence.request_cap = static_cast<uint32_t>(cap->count());
  }
  if (auto most = read_ms(object, "max_requests_before_reuse")) {
    evidence.max_requests_before_reuse = static_cast<uint32_t>(most->count());
  }
  for (const Json& close : object["closes"].items) {
    auto ago = read_ms(close, "ago_ms");
    auto age = read_ms(close, "idle_age_ms");
    auto done = read_ms(close, "requests_done");
    auto verdict = verdict_named(close["verdict"].str());
    if (!ago || !age || !done || !verdict) {
      *why = fmt::format("a malformed close for {}", host.host);
      return std::nullopt;
    }
    evidence.closes.push_back({*ago, *age, static_cast<uint32_t>(done->count()), *verdict});
  }
  return host;
}

}  // namespace

std::string render_upgrade_state(const UpgradeState& state) {
  std::string out = fmt::format("{{\"version\":{},\"workers\":[", kUpgradeStateVersion);
  for (size_t w = 0; w < state.workers.size(); ++w) {
    out += w ? ",[" : "[";
    for (size_t h = 0; h < state.workers[w].size(); ++h) {
      if (h) out += ',';
      append_host(out, state.workers[w][h]);
    }
    out += ']';
  }
  out += "]}\n";
  return out;
}

std::optional<UpgradeState> parse_upgrade_state(std::string_view text, std::string* why) {
  std::string ignored;
  if (why == nullptr) why = &ignored;
  const auto json = JsonReader::parse(text);
  if (!json || json->type != Json::Type::object) {
    *why = "not JSON";
    return std::nullopt;
  }
  const Json& version = (*json)["version"];
  if (version.type != Json::Type::number || version.integer() != kUpgradeStateVersion) {
    *why = fmt::format("version is not {}", kUpgradeStateVersion);
    return std::nullopt;
  }
  UpgradeState state;
  for (const Json& worker : (*json)["workers"].items) {
    if (worker.type != Json::Type::array) {
      *why = "a worker entry that is not an array";
      return std::nullopt;
    }
    auto& hosts = state.workers.emplace_back();
    for (const Json& object : worker.items) {
      auto host = read_host(object, why);
      if (!host) return std::nullopt;
      hosts.push_back(std::move(*host));
    }
  }
  return state;
}

}  // namespace needle::server
