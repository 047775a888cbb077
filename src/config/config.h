#pragma once
// The immutable, validated configuration. Built from TOML by load_config_file()/parse_config()
// or from CLI flags by quick_config(); every other layer reads only this struct.
// Every key is documented in docs/config.md; defaults here are the documented defaults.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/clock.h"
#include "config/cidr.h"
#include "http/header_rules.h"
#include "http/path_normalizer.h"
#include "tls/tls_settings.h"

namespace needle::config {

using namespace std::chrono_literals;

// "127.0.0.1:8080", "[::1]:8080", "localhost:3000", "app.internal:80".
struct HostPort {
  std::string host;  // literal IP (no brackets) or DNS name
  uint16_t port = 0;
  uint32_t weight = 1;            // cluster hosts only: `{ address = "...", weight = 3 }`
  std::string to_string() const;  // re-adds brackets for IPv6
};

struct ServerConfig {
  unsigned workers = 0;                       // 0 = number of cores
  Millis header_timeout = 10s;                // client request head must arrive within -> 408
  Millis body_timeout = 60s;                  // max gap between client body reads -> 408
  Millis client_idle_timeout = 75s;           // keep-alive idle; announced as Keep-Alive: timeout=
  Millis send_timeout = 60s;                  // client not reading its response -> close
  Millis drain_timeout = 30s;                 // SIGTERM/reload: in-flight requests get this long
  uint32_t max_requests_per_client_connection = 0;  // 0 = unlimited
  uint32_t max_connections_per_worker = 10000;
  size_t max_request_line = 8 * 1024;         // -> 414
  size_t max_header_bytes = 32 * 1024;        // whole head -> 431
  size_t max_header_count = 100;              // -> 431
  uint64_t max_body_bytes = 1ull << 30;       // -> 413
  std::string access_log = "stdout";          // "stdout", "off" or a file path
  // Routing on the normalized path (docs/config.md "Path normalization").
  bool merge_slashes = false;                 // "//" -> "/" before routing and forwarding
  http::EscapedSlashAction escaped_slashes = http::EscapedSlashAction::reject_request;
  // Client address and forwarding headers (docs/config.md "Client address and X-Forwarded-*";
  // parsed in route_section.cc).
  CidrSet trusted_proxies;                   // peers whose X-Forwarded-* are believed
  bool forwarded = false;                    // also write RFC 7239 Forwarded upstream
  std::optional<std::string> server_header;  // response Server: set to this; nullopt = pass
  bool via = true;                           // Via: 1.1 needle on requests sent upstream
  // Upgrade tunnels (docs/config.md "Upgrade and WebSocket").
  Millis tunnel_idle_timeout = 1h;            // no byte either way for this long -> close
  uint32_t max_tunnels_per_worker = 10000;    // over it an upgrade is answered 503; 0 = unlimited
};

// [listener.tls] and [cluster.NAME.tls] (docs/config.md "TLS"; read by tls_section.cc, whose
// files are checked at load by building the contexts: docs/decisions/0007-tls-contexts.md).
struct ListenerTlsConfig {
  tls::ServerTlsSettings settings;
  Millis handshake_timeout = 10s;  // accept -> handshake done (else closed, counted "timeout")
};
struct UpstreamTlsConfig {
  tls::ClientTlsSettings settings;
};

struct ListenerConfig {
  HostPort address;
  std::optional<ListenerTlsConfig> tls;  // set: the listener speaks HTTPS only
};

struct AdminConfig {
  std::optional<HostPort> address = HostPort{"127.0.0.1", 9901};  // nullopt = disabled ("off")
};

// Per-route actions and match rules beyond host and prefix (docs/config.md "Routing";
// parsed in route_section.cc).
enum class RetryNonIdempotent;  // below
struct HostRewrite {
  enum class Kind { keep, fixed, upstream };  // upstream: the chosen host's "host:port"
  Kind kind = Kind::keep;
  std::string value;  // for fixed
};
// Overrides of the cluster's settings for one route; nullopt = the cluster's.
struct RouteOverrides {
  std::optional<Millis> response_timeout;
  std::optional<uint32_t> max_retries;
  std::optional<RetryNonIdempotent> retry_non_idempotent;
};
// `return = { status = 301, headers = { Location = "https://$host$request_uri" } }`.
struct ReturnAction {
  int status = 200;
  std::vector<std::pair<std::string, http::ValueTemplate>> headers;
  std::string body;
};

// Discovery and overload protection of a cluster (docs/config.md "Discovery by DNS",
// "Circuit breakers", "Slow start") and of a route ("Rate limiting"). Parsed by
// discovery_section.h.
struct DnsDiscoveryConfig {
  std::optional<Millis> refresh;                 // fixed re-resolution period; else the TTL...
  Millis refresh_min = 5s;                       // ...bounded below by this
  Millis refresh_max = 300s;                     // ...and above by this
  std::optional<HostPort> resolver;              // nullopt: /etc/resolv.conf
};

struct CircuitBreakerConfig {                    // 0 = unlimited; per process, split per worker
  uint32_t max_connections = 0;                  // upstream connections per host
  uint32_t max_pending = 0;                      // requests waiting for a new connection
  uint32_t max_requests = 0;                     // requests in flight to the cluster
};

enum class RateLimitKey { client_address, header };

struct RateLimitConfig {
  double rate = 0;                               // tokens per second
  uint32_t burst = 0;                            // bucket size
  RateLimitKey key = RateLimitKey::client_address;
  std::string header;                            // key = header: the header's value
  size_t max_keys = 100000;                      // distinct keys tracked at once
};

struct RouteConfig {
  std::optional<std::string> host;  // exact, case-insensitive (stored lower-case), port ignored
  std::string path_prefix = "/";
  std::string cluster;
  // nginx's proxy_ignore_client_abort: keep waiting for the upstream's response when the client
  // closes before it (default: cancel the attempt, log 499 client_closed).
  bool ignore_client_abort = false;
  // Match rules and actions of issue 19 (docs/config.md "Routing"). One of path_prefix (the
  // default), path_exact and path_regex decides the path match.
  std::optional<std::string> path_exact{};
  std::optional<std::string> path_regex{};  // RE2 syntax, searched in the normalized path
  std::vector<std::string> methods{};       // empty: any method
  std::optional<std::string> rewrite_prefix{};
  HostRewrite host_rewrite{};
  RouteOverrides overrides{};
  std::optional<ReturnAction> return_action{};  // answered by needle; no cluster
  http::HeaderRuleSet request_headers{};
  http::HeaderRuleSet response_headers{};
  // Upgrade tunnels (docs/config.md "Upgrade and WebSocket"): the Upgrade protocol names
  // (RFC 9110 7.8; compared case-insensitively, stored lower-case) this route forwards with
  // Connection: upgrade; an empty list forwards none. The tunnel's idle limit, when the route
  // overrides [server] tunnel_idle_timeout.
  std::vector<std::string> upgrade = {"websocket"};
  std::optional<Millis> tunnel_idle_timeout;
  std::optional<RateLimitConfig> rate_limit;     // [route.rate_limit]; nullopt = unlimited
};

enum class LbPolicy { round_robin, least_request };
// Which requests that failed on a reused connection before any response byte may be replayed.
enum class RetryNonIdempotent : int { never, idempotency_key, reused_connection };

// The spelling used in the TOML file: "round_robin", "least_request".
std::string_view lb_policy_name(LbPolicy policy);
// The spelling used in the TOML file: "never", "idempotency-key", "reused-connection".
std::string_view retry_non_idempotent_name(RetryNonIdempotent mode);

// --- Upstream health (issue 20; docs/config.md "Health checks", "Outlier detection") -------
enum class HealthCheckType { http, tcp };
// [cluster.NAME.health_check]: one checker per process probes every host of the cluster.
struct HealthCheckConfig {
  HealthCheckType type = HealthCheckType::http;
  std::string path = "/healthz";                 // http: GET target
  std::optional<std::string> host;               // http: Host header; default the host's address
  std::vector<int> expected_statuses = {200};    // http: a pass
  Millis interval = 2s;                          // from the end of one check to the next
  Millis timeout = 1s;                           // connect + response head and body
  uint32_t healthy_threshold = 2;                // passes that bring an unhealthy host back
  uint32_t unhealthy_threshold = 3;              // failures that take a healthy host out
  bool initial_healthy = false;                  // initial_state = "healthy" | "unhealthy"
};
// [cluster.NAME.outlier_detection]: passive, from the outcomes of real requests, process-wide.
struct OutlierDetectionConfig {
  uint32_t consecutive_5xx = 5;                  // 0 = off
  uint32_t consecutive_gateway_failure = 5;      // connect failure, reset, timeout; 0 = off
  Millis base_ejection_time = 30s;               // times the host's ejection count...
  Millis max_ejection_time = 300s;               // ...capped here
  uint32_t max_ejection_percent = 50;            // at least one host may always be ejected
  Millis interval = 10s;                         // an ejection count decays by one per interval
};

struct ClusterConfig {
  std::string name;
  std::vector<HostPort> hosts;
  LbPolicy lb = LbPolicy::round_robin;
  Millis connect_timeout = 5s;
  Millis response_timeout = 60s;                 // request sent -> response head; also max gap in body
  std::optional<Millis> idle_timeout;            // the upstream's idle close, if known; else learned
  Millis idle_margin_min = 100ms;                // margin = max(idle_margin_min, idle_margin_ratio * limit)
  double idle_margin_ratio = 0.10;
  Millis initial_idle_limit = 1500ms;            // before any hint or learning: safe against gunicorn's 2 s
  size_t max_idle_per_host = 1024;               // per worker
  uint32_t max_requests_per_connection = 0;      // 0 = unlimited
  Millis max_connection_age = 0ms;               // 0 = unlimited
  bool learn_idle_timeout = true;                // sentinel probing
  RetryNonIdempotent retry_non_idempotent = RetryNonIdempotent::idempotency_key;
  uint32_t max_retries = 2;                      // per request (reused-conn resets and connect failures)
  size_t retry_buffer_bytes = 64 * 1024;         // bodies larger than this are not replayable
  double retry_budget_ratio = 0.2;               // retries may add at most this fraction of requests
  uint32_t retry_budget_min_per_second = 10;     // ...but always at least this many per second
  uint32_t eject_after_connect_failures = 5;     // consecutive connect failures eject a host
  Millis eject_duration = 5s;
  std::optional<UpstreamTlsConfig> tls;          // set: connections to the hosts use TLS
  DnsDiscoveryConfig dns;                        // host names in `hosts`
  CircuitBreakerConfig breakers;
  Millis slow_start = 0ms;                       // 0 = off
  std::optional<HealthCheckConfig> health_check;            // nullopt: no active checks
  std::optional<OutlierDetectionConfig> outlier_detection;  // nullopt: per-worker ejection only
};

struct AlertsConfig {
  std::optional<std::string> webhook;            // http://host:port/path ; nullopt = off
  Millis window = 10s;
  std::vector<int> statuses = {500, 502, 503, 504};
  std::vector<std::string> causes;               // empty = any cause
  bool slack_text = false;
  size_t max_queue = 64;
};

struct Config {
  std::string source = "<built-in>";             // file path the config came from
  ServerConfig server;
  std::vector<ListenerConfig> listeners;
  AdminConfig admin;
  std::vector<RouteConfig> routes;
  std::vector<ClusterConfig> clusters;
  AlertsConfig alerts;

  const ClusterConfig* find_cluster(std::string_view name) const;
};

// A config problem, located: "needle.toml:12:1: cluster.app.connect_timeout: expected a
// duration like \"5s\" or \"250ms\"".
struct ConfigError {
  std::string file;
  int line = 0;  // 0 when the problem has no single place (e.g. "no listener")
  int column = 0;
  std::string key;
  std::string message;
  std::string to_string() const;
};

struct LoadResult {
  std::optional<Config> config;       // set iff errors is empty
  std::vector<ConfigError> errors;    // all problems found, in file order
};

LoadResult load_config_file(const std::string& path);
LoadResult parse_config(std::string_view toml_text, const std::string& source_name);

// `needle run --listen ADDR --upstream HOST:PORT [--workers N] [--admin ADDR]`.
LoadResult quick_config(const std::string& listen, const std::vector<std::string>& upstreams,
                        unsigned workers, const std::string& admin);

// Port 1-65535 required; IPv6 literals need brackets. nullopt on anything else.
std::optional<HostPort> parse_host_port(std::string_view text);

// Byte sizes as written in config: "65536", "64KiB", "1MiB", "1GiB", "1TiB" (binary units;
// "64 KiB" with one space is accepted too). nullopt on anything else, including overflow.
std::optional<uint64_t> parse_size(std::string_view text);

}  // namespace needle::config
