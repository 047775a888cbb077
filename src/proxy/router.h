#pragma once
// Route selection on the normalized path (docs/config.md "Routing", "Match order"):
//   1. The path of the target is normalized (http/path_normalizer.h); the query is kept byte for
//      byte. A path that cannot be normalized is refused (the session answers 400).
//   2. Host groups are tried in turn until one has a route that matches: the routes whose host
//      equals the request's host (case-insensitive, port ignored), then each wildcard group
//      whose "*.suffix" the host ends with (longest suffix first, as nginx's server_name), then
//      the routes without a host (the default).
//   3. Within a group: path_exact routes, then path_regex routes in config order (RE2, searched
//      in the path), then the longest path_prefix (nginx's location order: "=", "~", prefix).
//      A route with `methods` matches only those methods; a path that matched only routes of
//      other methods is reported (method_refused: the session answers 405).
// A prefix is a plain string prefix of the normalized path, as nginx's `location /api`:
// "/api" matches "/api", "/api/x" and "/apix"; "/api/" matches only "/api/...".
// The tables and regular expressions are built once at config load; routing allocates nothing
// per request (the normalized target is written into the caller's reused string, and only when
// it changed).
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "http/path_normalizer.h"

namespace re2 {
class RE2;
}

namespace needle::proxy {

struct RouteMatch {
  size_t route_index = 0;       // index into Config::routes
  size_t cluster_index = 0;     // index into Config::clusters (kNoCluster for a return route)
  std::string_view route_name;  // "host/prefix" for logs and metrics labels
  static constexpr size_t kNoCluster = static_cast<size_t>(-1);
};

// What routing decided for one request target.
struct RouteDecision {
  // malformed_escape or escaped_slash: the path was refused (answer 400, match is empty).
  http::PathNormalizeResult path = http::PathNormalizeResult::unchanged;
  std::optional<RouteMatch> match;
  // No match, but a route with `methods` matched the host and path (answer 405).
  bool method_refused = false;

  bool path_refused() const {
    return path == http::PathNormalizeResult::malformed_escape ||
           path == http::PathNormalizeResult::escaped_slash;
  }
};

class Router {
 public:
  explicit Router(const config::Config& config);
  ~Router();
  Router(Router&&) noexcept;
  Router& operator=(Router&&) noexcept;

  // Normalizes the path of `target` and matches it. `forward_target` receives the origin-form
  // target to send upstream (normalized path + the query as received) when normalization changed
  // the path; it is left empty when the target is forwarded as received. An empty `method`
  // matches only routes without `methods`.
  RouteDecision route(std::string_view method, std::string_view host, std::string_view target,
                      std::string& forward_target) const;
  RouteDecision route(std::string_view host, std::string_view target,
                      std::string& forward_target) const {
    return route({}, host, target, forward_target);
  }
  // Matching alone, on a path that is already normal (no query).
  std::optional<RouteMatch> match(std::string_view method, std::string_view host,
                                  std::string_view path, bool* method_refused = nullptr) const;
  std::optional<RouteMatch> match(std::string_view host, std::string_view path) const {
    return match({}, host, path);
  }

 private:
  struct Entry {
    std::string path;  // the prefix or the exact path
    const re2::RE2* regex = nullptr;
    std::vector<std::string> methods;  // empty: any
    size_t route_index = 0;
    size_t cluster_index = 0;
    std::string name;
  };
  // The routes of one host, one wildcard, or the default.
  struct Group {
    std::string host;  // lower-case, no port; for a wildcard the suffix with its dot
    std::vector<Entry> exact;
    std::vector<Entry> regex;   // config order
    std::vector<Entry> prefix;  // longest first (config order among equal lengths)
  };

  static const Entry* match_group(const Group& group, std::string_view method,
                                  std::string_view path, bool& method_refused);
  static bool allows(const Entry& entry, std::string_view method);
  Group& group_for(std::vector<Group>& groups, const std::string& host);

  http::PathNormalizeOptions normalize_;
  std::vector<Group> exact_hosts_;     // one per distinct route host
  std::vector<Group> wildcard_hosts_;  // longest suffix first
  Group any_host_;                     // routes without a host
  std::vector<std::unique_ptr<re2::RE2>> regexes_;
};

// "Example.COM:8080" -> "example.com"; "[::1]:80" -> "[::1]".
std::string normalize_host(std::string_view host);
// True when `host` (as received: any case, maybe a port) names `lower_host` (lower-case, no
// port). Allocates nothing.
bool host_matches(std::string_view host, std::string_view lower_host);
// True when `host` (as received) ends with `lower_suffix` (".example.com") and has at least one
// character before it: "*.example.com" matches "a.example.com", not "example.com".
bool host_matches_wildcard(std::string_view host, std::string_view lower_suffix);
// Path part of a request target: origin-form as is; absolute-form "http://a/b?c" -> "/b?c".
std::string_view target_path(std::string_view target);
// Where the path of a target_path() result ends: at the first '?' or '#', else its size.
size_t path_end(std::string_view path_and_query);

}  // namespace needle::proxy
