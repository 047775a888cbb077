#include "proxy/router.h"

#include <algorithm>
#include <cctype>

namespace needle::proxy {
namespace {

char lower(char c) {
  return static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
}

// The host without its port: "[::1]:80" -> "[::1]", "a.test:8080" -> "a.test".
std::string_view strip_port(std::string_view host) {
  if (!host.empty() && host.front() == '[') {
    const size_t close = host.find(']');
    return host.substr(0, close == std::string_view::npos ? host.size() : close + 1);
  }
  return host.substr(0, host.find(':'));
}

}  // namespace

std::string normalize_host(std::string_view host) {
  std::string out(strip_port(host));
  std::transform(out.begin(), out.end(), out.begin(), lower);
  return out;
}

bool host_matches(std::string_view host, std::string_view lower_host) {
  const std::string_view name = strip_port(host);
  if (name.size() != lower_host.size()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    if (lower(name[i]) != lower_host[i]) return false;
  }
  return true;
}

std::string_view target_path(std::string_view target) {
  if (target.empty() || target.front() == '/') return target;
  const size_t scheme = target.find("://");
  if (scheme == std::string_view::npos) return target;  // authority-form or "*"
  const size_t path = target.find('/', scheme + 3);
  if (path == std::string_view::npos) return "/";
  return target.substr(path);
}

size_t path_end(std::string_view path_and_query) {
  const size_t end = path_and_query.find_first_of("?#");
  return end == std::string_view::npos ? path_and_query.size() : end;
}

Router::Router(const config::Config& config)
    : normalize_{.merge_slashes = config.server.merge_slashes,
                 .escaped_slashes = config.server.escaped_slashes} {
  for (size_t r = 0; r < config.routes.size(); ++r) {
    const auto& route = config.routes[r];
    Entry entry{route.path_prefix, r, 0, std::string()};
    for (size_t i = 0; i < config.clusters.size(); ++i) {
      if (config.clusters[i].name == route.cluster) entry.cluster_index = i;
    }
    if (!route.host) {
      entry.name = entry.path_prefix;
      any_host_.push_back(std::move(entry));
      continue;
    }
    const std::string host = normalize_host(*route.host);
    entry.name = host + entry.path_prefix;
    auto table = std::find_if(hosts_.begin(), hosts_.end(),
                              [&](const HostTable& t) { return t.host == host; });
    if (table == hosts_.end()) table = hosts_.insert(hosts_.end(), HostTable{host, {}});
    table->entries.push_back(std::move(entry));
  }
  // Longest prefix first; stable, so config order decides among equal lengths.
  const auto longer = [](const Entry& a, const Entry& b) {
    return a.path_prefix.size() > b.path_prefix.size();
  };
  for (HostTable& table : hosts_)
    std::stable_sort(table.entries.begin(), table.entries.end(), longer);
  std::stable_sort(any_host_.begin(), any_host_.end(), longer);
}

const Router::Entry* Router::longest_prefix(const std::vector<Entry>& entries,
                                            std::string_view path) {
  for (const Entry& entry : entries) {
    if (path.starts_with(entry.path_prefix)) return &entry;
  }
  return nullptr;
}

std::optional<RouteMatch> Router::match(std::string_view host, std::string_view path) const {
  const Entry* found = nullptr;
  for (const HostTable& table : hosts_) {
    if (!host_matches(host, table.host)) continue;
    found = longest_prefix(table.entries, path);
    break;  // host names are distinct
  }
  if (found == nullptr) found = longest_prefix(any_host_, path);
  if (found == nullptr) return std::nullopt;
  return RouteMatch{found->route_index, found->cluster_index, found->name};
}

RouteDecision Router::route(std::string_view host, std::string_view target,
                            std::string& forward_target) const {
  forward_target.clear();
  const std::string_view path_and_query = target_path(target);
  const size_t end = path_end(path_and_query);
  const std::string_view path = path_and_query.substr(0, end);
  RouteDecision decision;
  decision.path = http::normalize_path(path, normalize_, forward_target);
  switch (decision.path) {
    case http::PathNormalizeResult::unchanged:
      forward_target.clear();
      decision.match = match(host, path);
      break;
    case http::PathNormalizeResult::normalized: {
      const size_t normalized_size = forward_target.size();
      std::string_view rest = path_and_query.substr(end);
      // RFC 9112 3.2: no fragment upstream (the serializer drops it from absolute-form too).
      if (path_and_query.data() != target.data()) rest = rest.substr(0, rest.find('#'));
      forward_target.append(rest);
      decision.match = match(host, std::string_view(forward_target).substr(0, normalized_size));
      break;
    }
    case http::PathNormalizeResult::malformed_escape:
    case http::PathNormalizeResult::escaped_slash:
      forward_target.clear();
      break;
  }
  return decision;
}

}  // namespace needle::proxy
