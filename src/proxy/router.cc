#include "proxy/router.h"

#include <algorithm>
#include <cctype>

#include <re2/re2.h>

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

bool host_matches_wildcard(std::string_view host, std::string_view lower_suffix) {
  const std::string_view name = strip_port(host);
  if (name.size() <= lower_suffix.size()) return false;
  const std::string_view tail = name.substr(name.size() - lower_suffix.size());
  for (size_t i = 0; i < tail.size(); ++i) {
    if (lower(tail[i]) != lower_suffix[i]) return false;
  }
  return true;
}

Router::Router(const config::Config& config)
    : normalize_{.merge_slashes = config.server.merge_slashes,
                 .escaped_slashes = config.server.escaped_slashes} {
  for (size_t r = 0; r < config.routes.size(); ++r) {
    const auto& route = config.routes[r];
    Entry entry;
    entry.route_index = r;
    entry.methods = route.methods;
    entry.cluster_index = RouteMatch::kNoCluster;
    for (size_t i = 0; i < config.clusters.size(); ++i) {
      if (config.clusters[i].name == route.cluster) entry.cluster_index = i;
    }
    if (!route.return_action && entry.cluster_index == RouteMatch::kNoCluster) {
      entry.cluster_index = 0;  // validation refuses an unknown cluster; keep the index valid
    }
    std::string shown_path;
    if (route.path_exact) {
      entry.path = *route.path_exact;
      shown_path = "=" + entry.path;
    } else if (route.path_regex) {
      // RE2 (linear time, no backtracking): config load checked that it compiles.
      regexes_.push_back(std::make_unique<re2::RE2>(*route.path_regex, re2::RE2::Quiet));
      entry.regex = regexes_.back().get();
      shown_path = "~" + *route.path_regex;
    } else {
      entry.path = route.path_prefix;
      shown_path = entry.path;
    }
    Group* group = &any_host_;
    if (route.host) {
      const std::string host = normalize_host(*route.host);
      entry.name = host + shown_path;
      group = host.starts_with("*.") ? &group_for(wildcard_hosts_, host.substr(1))
                                     : &group_for(exact_hosts_, host);
    } else {
      entry.name = shown_path;
    }
    auto& list = route.path_exact ? group->exact : route.path_regex ? group->regex : group->prefix;
    list.push_back(std::move(entry));
  }
  // Longest prefix first; stable, so config order decides among equal lengths.
  const auto longer = [](const Entry& a, const Entry& b) { return a.path.size() > b.path.size(); };
  auto sort_group = [&](Group& g) { std::stable_sort(g.prefix.begin(), g.prefix.end(), longer); };
  for (Group& g : exact_hosts_) sort_group(g);
  for (Group& g : wildcard_hosts_) sort_group(g);
  sort_group(any_host_);
  // The most specific wildcard first: "*.api.example.com" before "*.example.com".
  std::stable_sort(wildcard_hosts_.begin(), wildcard_hosts_.end(),
                   [](const Group& a, const Group& b) { return a.host.size() > b.host.size(); });
}

Router::~Router() = default;
Router::Router(Router&&) noexcept = default;
Router& Router::operator=(Router&&) noexcept = default;

Router::Group& Router::group_for(std::vector<Group>& groups, const std::string& host) {
  auto found =
      std::find_if(groups.begin(), groups.end(), [&](const Group& g) { return g.host == host; });
  if (found != groups.end()) return *found;
  groups.push_back(Group{});
  groups.back().host = host;
  return groups.back();
}

bool Router::allows(const Entry& entry, std::string_view method) {
  if (entry.methods.empty()) return true;
  for (const std::string& m : entry.methods) {
    if (m == method) return true;  // RFC 9110 9.1: case-sensitive
  }
  return false;
}

const Router::Entry* Router::match_group(const Group& group, std::string_view method,
                                         std::string_view path, bool& method_refused) {
  auto pick = [&](const Entry& entry) {
    if (allows(entry, method)) return true;
    method_refused = true;
    return false;
  };
  for (const Entry& entry : group.exact) {
    if (path == entry.path && pick(entry)) return &entry;
  }
  for (const Entry& entry : group.regex) {
    if (re2::RE2::PartialMatch(path, *entry.regex) && pick(entry)) return &entry;
  }
  for (const Entry& entry : group.prefix) {
    if (path.starts_with(entry.path) && pick(entry)) return &entry;
  }
  return nullptr;
}

std::optional<RouteMatch> Router::match(std::string_view method, std::string_view host,
                                        std::string_view path, bool* method_refused) const {
  bool refused = false;
  const Entry* found = nullptr;
  for (const Group& group : exact_hosts_) {
    if (!host_matches(host, group.host)) continue;
    found = match_group(group, method, path, refused);
    break;  // host names are distinct
  }
  for (size_t i = 0; found == nullptr && i < wildcard_hosts_.size(); ++i) {
    const Group& group = wildcard_hosts_[i];
    if (host_matches_wildcard(host, group.host)) found = match_group(group, method, path, refused);
  }
  if (found == nullptr) found = match_group(any_host_, method, path, refused);
  if (method_refused != nullptr) *method_refused = found == nullptr && refused;
  if (found == nullptr) return std::nullopt;
  return RouteMatch{found->route_index, found->cluster_index, found->name};
}

RouteDecision Router::route(std::string_view method, std::string_view host, std::string_view target,
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
      decision.match = match(method, host, path, &decision.method_refused);
      break;
    case http::PathNormalizeResult::normalized: {
      const size_t normalized_size = forward_target.size();
      std::string_view rest = path_and_query.substr(end);
      // RFC 9112 3.2: no fragment upstream (the serializer drops it from absolute-form too).
      if (path_and_query.data() != target.data()) rest = rest.substr(0, rest.find('#'));
      forward_target.append(rest);
      decision.match =
          match(method, host, std::string_view(forward_target).substr(0, normalized_size),
                &decision.method_refused);
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
