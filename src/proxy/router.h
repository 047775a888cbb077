#pragma once
// Route selection on the normalized path (docs/architecture.md "Routing"):
//   1. The path of the target is normalized (http/path_normalizer.h); the query is kept byte for
//      byte. A path that cannot be normalized is refused (the session answers 400).
//   2. Routes whose host equals the request's host (case-insensitive, port ignored) are tried
//      first; routes without a host only when none of those matches.
//   3. Within each group the longest path_prefix wins, whatever the config order (nginx's
//      prefix locations); equal prefixes cannot happen (validation refuses them).
// A prefix is a plain string prefix of the normalized path, as nginx's `location /api`:
// "/api" matches "/api", "/api/x" and "/apix"; "/api/" matches only "/api/...".
// The tables are sorted once at config load; routing allocates nothing per request (the
// normalized target is written into the caller's reused string, and only when it changed).
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "http/path_normalizer.h"

namespace needle::proxy {

struct RouteMatch {
  size_t route_index = 0;       // index into Config::routes
  size_t cluster_index = 0;     // index into Config::clusters
  std::string_view route_name;  // "host/prefix" for logs and metrics labels
};

// What routing decided for one request target.
struct RouteDecision {
  // malformed_escape or escaped_slash: the path was refused (answer 400, match is empty).
  http::PathNormalizeResult path = http::PathNormalizeResult::unchanged;
  std::optional<RouteMatch> match;

  bool path_refused() const {
    return path == http::PathNormalizeResult::malformed_escape ||
           path == http::PathNormalizeResult::escaped_slash;
  }
};

class Router {
 public:
  explicit Router(const config::Config& config);

  // Normalizes the path of `target` and matches it. `forward_target` receives the origin-form
  // target to send upstream (normalized path + the query as received) when normalization
  // changed the path; it is left empty when the target is forwarded as received.
  RouteDecision route(std::string_view host, std::string_view target,
                      std::string& forward_target) const;
  // Matching alone, on a path that is already normal (no query).
  std::optional<RouteMatch> match(std::string_view host, std::string_view path) const;

 private:
  struct Entry {
    std::string path_prefix;
    size_t route_index;
    size_t cluster_index;
    std::string name;
  };
  // Routes of one host, longest prefix first (config order among equal lengths).
  struct HostTable {
    std::string host;  // lower-case, no port
    std::vector<Entry> entries;
  };

  static const Entry* longest_prefix(const std::vector<Entry>& entries, std::string_view path);

  http::PathNormalizeOptions normalize_;
  std::vector<HostTable> hosts_;  // one per distinct route host
  std::vector<Entry> any_host_;   // routes without a host
};

// "Example.COM:8080" -> "example.com"; "[::1]:80" -> "[::1]".
std::string normalize_host(std::string_view host);
// True when `host` (as received: any case, maybe a port) names `lower_host` (lower-case, no
// port). Allocates nothing.
bool host_matches(std::string_view host, std::string_view lower_host);
// Path part of a request target: origin-form as is; absolute-form "http://a/b?c" -> "/b?c".
std::string_view target_path(std::string_view target);
// Where the path of a target_path() result ends: at the first '?' or '#', else its size.
size_t path_end(std::string_view path_and_query);

}  // namespace needle::proxy
