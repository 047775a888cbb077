#include "base/cause.h"

namespace needle {

std::string_view cause_name(Cause cause) {
  switch (cause) {
    case Cause::none: return "none";
    case Cause::connect_refused: return "connect_refused";
    case Cause::connect_timeout: return "connect_timeout";
    case Cause::connect_error: return "connect_error";
    case Cause::resolve_failed: return "resolve_failed";
    case Cause::reset_before_response_on_reused: return "reset_before_response_on_reused";
    case Cause::reset_before_response_on_new: return "reset_before_response_on_new";
    case Cause::closed_mid_response: return "closed_mid_response";
    case Cause::response_timeout: return "response_timeout";
    case Cause::invalid_response: return "invalid_response";
    case Cause::no_healthy_host: return "no_healthy_host";
    case Cause::no_route: return "no_route";
    case Cause::client_closed: return "client_closed";
    case Cause::client_timeout: return "client_timeout";
    case Cause::bad_request: return "bad_request";
    case Cause::retry_budget_exhausted: return "retry_budget_exhausted";
    case Cause::upstream_write_failed: return "upstream_write_failed";
    case Cause::upstream_5xx: return "upstream_5xx";
    case Cause::local_resource_exhausted: return "local_resource_exhausted";
    case Cause::stray_bytes_after_response: return "stray_bytes_after_response";
    case Cause::upstream_tls_verify_failed: return "upstream_tls_verify_failed";
    case Cause::upstream_tls_handshake_failed: return "upstream_tls_handshake_failed";
    case Cause::tunnel_limit: return "tunnel_limit";
    case Cause::upstream_overflow: return "upstream_overflow";
    case Cause::rate_limited: return "rate_limited";
  }
  return "unknown";
}

bool is_upstream_cause(Cause cause) {
  switch (cause) {
    case Cause::connect_refused:
    case Cause::connect_timeout:
    case Cause::connect_error:
    case Cause::resolve_failed:
    case Cause::reset_before_response_on_reused:
    case Cause::reset_before_response_on_new:
    case Cause::closed_mid_response:
    case Cause::response_timeout:
    case Cause::invalid_response:
    case Cause::no_healthy_host:
    case Cause::upstream_write_failed:
    case Cause::stray_bytes_after_response:
    case Cause::upstream_tls_verify_failed:
    case Cause::upstream_tls_handshake_failed:
      return true;
    default:
      return false;
  }
}

}  // namespace needle
