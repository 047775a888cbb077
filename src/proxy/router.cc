#include "proxy/router.h"

#include <algorithm>
#include <cctype>

namespace needle::proxy {

std::string normalize_host(std::string_view host) {
  std::string out;
  if (!host.empty() && host.front() == '[') {
    const size_t close = host.find(']');
    out = std::string(host.substr(0, close == std::string_view::npos ? host.size() : close + 1));
  } else {
    const size_t colon = host.find(':');
    out = std::string(host.substr(0, colon));
  }
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::string_view target_path(std::string_view target) {
  if (target.empty() || target.front() == '/') return target;
  const size_t scheme = target.find("://");
  if (scheme == std::string_view::npos) return target;  // authority-form or "*"
  const size_t path = target.find('/', scheme + 3);
  if (path == std::string_view::npos) return "/";
  return target.substr(path);
}

Router::Router(const config::Config& config) {
  for (const auto& route : config.routes) {
    Entry entry;
    if (route.host) entry.host = normalize_host(*route.host);
    entry.path_prefix = route.path_prefix;
    entry.cluster_index = 0;
    for (size_t i = 0; i < config.clusters.size(); ++i) {
      if (config.clusters[i].name == route.cluster) entry.cluster_index = i;
    }
    entry.name = (entry.host ? *entry.host : std::string()) + entry.path_prefix;
    entries_.push_back(std::move(entry));
  }
}

std::optional<RouteMatch> Router::match(std::string_view host, std::string_view target) const {
  const std::string_view path = target_path(target);
  std::string normalized;
  bool normalized_done = false;
  for (size_t i = 0; i < entries_.size(); ++i) {
    const Entry& entry = entries_[i];
    if (entry.host) {
      if (!normalized_done) {
        normalized = normalize_host(host);
        normalized_done = true;
      }
      if (normalized != *entry.host) continue;
    }
    if (path.substr(0, entry.path_prefix.size()) != entry.path_prefix) continue;
    return RouteMatch{i, entry.cluster_index, entry.name};
  }
  return std::nullopt;
}

}  // namespace needle::proxy
