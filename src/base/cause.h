#pragma once
// Why an upstream attempt (or a whole request) failed: one closed set of values shared by the
// proxy, the pool, the access log, metrics and alerts. Adding a cause means adding it here and
// to cause_name() (and to kLastCause when it goes last); names are stable API (log fields,
// metric labels, alert rules). Values are contiguous from `none` to kLastCause.
#include <cstdint>
#include <string_view>

namespace needle {

enum class Cause : uint8_t {
  none = 0,                           // success
  connect_refused,                    // ECONNREFUSED from the upstream host
  connect_timeout,                    // no TCP handshake within connect_timeout
  connect_error,                      // any other connect failure (unreachable, ...)
  resolve_failed,                     // host name did not resolve
  reset_before_response_on_reused,    // EOF/RST/EPIPE before any response byte, reused conn
  reset_before_response_on_new,       // same on a freshly opened connection
  closed_mid_response,                // upstream closed after response bytes arrived
  response_timeout,                   // no (complete) response head within response_timeout
  invalid_response,                   // response failed to parse / bad framing
  no_healthy_host,                    // every host of the cluster is ejected or unusable
  no_route,                           // no route matched the request
  client_closed,                      // the client went away before the response was done
  client_timeout,                     // the client was too slow (header/body/send timeouts)
  bad_request,                        // the request was rejected by the parser or rules
  retry_budget_exhausted,             // request: a retry was warranted but the budget said no
                                      // (its attempts keep the upstream failure)
  upstream_write_failed,              // error while sending the request (after retries)
  upstream_5xx,                       // the upstream itself answered 5xx; needle relayed it
  local_resource_exhausted,           // needle itself is out of fds or buffers (EMFILE, ENFILE,
                                      // ENOBUFS, ENOMEM) opening an upstream socket; not the
                                      // host's fault: never counts toward its ejection
  stray_bytes_after_response,         // attempt: the response was relayed whole, but the
                                      // upstream sent bytes behind it; connection closed
  upstream_tls_verify_failed,         // the upstream's certificate chain or name did not verify
  upstream_tls_handshake_failed,      // any other TLS handshake failure with the upstream
                                      // (no common version or cipher, refused client cert, ...)
  tunnel_limit,                       // an upgrade request over max_tunnels_per_worker (503)
  upstream_overflow,                  // 503 at once: a circuit breaker of the cluster
                                      // (max_connections, max_pending, max_requests) is full
  rate_limited,                       // 429: the route's rate limit refused the request
};
inline constexpr Cause kLastCause = Cause::rate_limited;

std::string_view cause_name(Cause cause);
// Causes that were the upstream's doing (counted as upstream failures in metrics).
bool is_upstream_cause(Cause cause);

}  // namespace needle
