#pragma once
// Route selection: routes are tried in config order and the first match wins (Envoy's rule), so
// operators put specific routes first. A route matches when its host (if any) equals the
// request's host, case-insensitive and ignoring any port, and the path starts with its prefix.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"

namespace needle::proxy {

struct RouteMatch {
  size_t route_index = 0;
  size_t cluster_index = 0;    // index into Config::clusters
  std::string_view route_name; // "host/prefix" for logs and metrics labels
};

class Router {
 public:
  explicit Router(const config::Config& config);
  std::optional<RouteMatch> match(std::string_view host, std::string_view target) const;

 private:
  struct Entry {
    std::optional<std::string> host;  // lower-case
    std::string path_prefix;
    size_t cluster_index;
    std::string name;
  };
  std::vector<Entry> entries_;
};

// "Example.COM:8080" -> "example.com"; "[::1]:80" -> "[::1]".
std::string normalize_host(std::string_view host);
// Path part of a request target: origin-form as is; absolute-form "http://a/b?c" -> "/b?c".
std::string_view target_path(std::string_view target);

}  // namespace needle::proxy
