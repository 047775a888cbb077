#include "proxy/retry_policy.h"

#include <algorithm>
#include <array>

namespace needle::proxy {
namespace {

// RFC 9110 9.2.2. Method names are case-sensitive (RFC 9110 9.1): "get" is not GET.
bool is_idempotent_method(std::string_view method) {
  static constexpr std::array<std::string_view, 6> kIdempotent = {"GET",   "HEAD", "OPTIONS",
                                                                   "TRACE", "PUT",  "DELETE"};
  return std::find(kIdempotent.begin(), kIdempotent.end(), method) != kIdempotent.end();
}

bool is_connect_failure(Cause cause) {
  return cause == Cause::connect_refused || cause == Cause::connect_timeout ||
         cause == Cause::connect_error || cause == Cause::resolve_failed ||
         // No request byte was sent before a TLS handshake failed (another host may verify).
         cause == Cause::upstream_tls_verify_failed ||
         cause == Cause::upstream_tls_handshake_failed;
}

// The upstream may have received the request and acted on it, but sent nothing back.
bool is_lost_before_response(const RetryInput& in) {
  return in.cause == Cause::reset_before_response_on_reused ||
         in.cause == Cause::reset_before_response_on_new ||
         in.cause == Cause::upstream_write_failed;
}

bool failed_on_reused_connection(const RetryInput& in) {
  if (in.cause == Cause::reset_before_response_on_reused) return true;
  if (in.cause == Cause::reset_before_response_on_new) return false;
  return in.connection_reused;  // upstream_write_failed: the flag says which
}

// Replayable after a reused connection died under it: the upstream most likely closed it
// idle and never saw the request, but cannot prove it, so the request must also be safe to
// repeat: an idempotent method, or an idempotency key (when the route trusts keys), or the
// route's explicit opt-in for any method. The body must be whole in the retry buffer.
bool replayable_after_reused_failure(const RetryInput& in) {
  if (!in.body_replayable) return false;
  if (is_idempotent_method(in.method)) return true;
  switch (in.non_idempotent) {
    case config::RetryNonIdempotent::never: return false;
    case config::RetryNonIdempotent::idempotency_key: return in.has_idempotency_key;
    case config::RetryNonIdempotent::reused_connection: return true;
  }
  return false;
}

// A fresh connection died before the response: the upstream saw the request and may have
// acted. Only requests safe to repeat: idempotent methods, or an idempotency key (unless the
// route says never). The reused_connection opt-in does not extend to fresh connections.
bool replayable_after_new_failure(const RetryInput& in) {
  if (!in.body_replayable) return false;
  if (is_idempotent_method(in.method)) return true;
  return in.has_idempotency_key && in.non_idempotent != config::RetryNonIdempotent::never;
}

// No byte of the request left needle (its first write failed): nobody received it, so it is
// safe to send again whatever its method (RFC 9110 9.2.2 is about requests the server may have
// acted on) and whatever its body's size: the body pump starts only after that write, so no body
// byte was consumed beyond what the retry buffer holds, and a retry sends the same bytes
// (the held prefix) and streams the rest.
bool nothing_sent(const RetryInput& in) { return !in.request_bytes_sent; }

constexpr RetryDecision give_up(std::string_view reason) {
  return {RetryAction::give_up, reason};
}

}  // namespace

bool replayable_on_reused_connection(const RetryInput& input) {
  return replayable_after_reused_failure(input);
}

RetryDecision decide_retry(const RetryInput& in) {
  // Once response bytes arrived the client may already be seeing them; nothing is replayed.
  if (in.response_bytes_received) return give_up("response_started");
  if (in.retries_done >= in.max_retries) return give_up("max_retries");

  // No byte reached the upstream: any method may go to another host. With a single-host
  // cluster (or every other host tried or ejected) a failed connect is final: retrying the
  // same host at once would only repeat the refusal or the timeout.
  if (is_connect_failure(in.cause)) {
    if (!in.other_host_available) return give_up("no_other_host");
    return {RetryAction::retry_other_host, "ok"};
  }

  if (is_lost_before_response(in)) {
    if (failed_on_reused_connection(in)) {
      // The idle-close race: retry once, on a connection that cannot be stale.
      if (!nothing_sent(in) && !replayable_after_reused_failure(in)) {
        return give_up("not_replayable");
      }
      return {RetryAction::retry_fresh_connection, "ok"};
    }
    if (!nothing_sent(in) && !replayable_after_new_failure(in)) return give_up("not_replayable");
    if (!in.other_host_available) return give_up("no_other_host");
    return {RetryAction::retry_other_host, "ok"};
  }

  // response_timeout, invalid_response, closed_mid_response and anything else: the upstream
  // may have acted on the request, or the failure is not the upstream's; never retried.
  return give_up("not_retryable_cause");
}

namespace {
// The first retry after the idle-close race (retry_policy.h says why it is exempt).
bool is_stale_connection_retry(const RetryInput& in, const RetryDecision& decision) {
  return decision.action == RetryAction::retry_fresh_connection && in.retries_done == 0;
}
}  // namespace

RetryDecision decide_retry(const RetryInput& input, RetryBudget& budget, TimePoint now) {
  const RetryDecision decision = decide_retry(input);
  if (decision.action == RetryAction::give_up) return decision;
  if (is_stale_connection_retry(input, decision)) {
    budget.spend(now);
    return decision;
  }
  if (budget.try_spend(now)) return decision;
  return give_up(kRetryBudgetExhausted);
}

RetryBudget::RetryBudget(double ratio, uint32_t min_per_second)
    : ratio_(ratio), min_per_second_(min_per_second) {}

void RetryBudget::roll(TimePoint now) {
  constexpr auto window = std::chrono::seconds(1);
  if (now - window_start_ >= 2 * window) {  // both windows are stale (or first use)
    requests_prev_ = retries_prev_ = 0;
    requests_cur_ = retries_cur_ = 0;
    window_start_ = now;
  } else if (now - window_start_ >= window) {
    requests_prev_ = requests_cur_;
    retries_prev_ = retries_cur_;
    requests_cur_ = retries_cur_ = 0;
    window_start_ += window;
  }
}

void RetryBudget::spend(TimePoint now) {
  roll(now);
  ++retries_cur_;
}

void RetryBudget::on_request(TimePoint now) {
  roll(now);
  ++requests_cur_;
}

bool RetryBudget::try_spend(TimePoint now) {
  roll(now);
  // Sliding count over the last second: the previous window weighs by how much of it is
  // still inside that second.
  const double elapsed = to_seconds(now - window_start_);
  const double prev_weight = std::clamp(1.0 - elapsed, 0.0, 1.0);
  const double requests = static_cast<double>(requests_cur_) + prev_weight * requests_prev_;
  const double retries = static_cast<double>(retries_cur_) + prev_weight * retries_prev_;
  const double allowed = std::max(static_cast<double>(min_per_second_), ratio_ * requests);
  if (retries + 1 > allowed) return false;
  ++retries_cur_;
  return true;
}

}  // namespace needle::proxy
