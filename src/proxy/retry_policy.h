#pragma once
// Whether a failed upstream attempt may be retried (DESIGN.md rule 5). A pure function of its
// input, unit-tested on its own; the exchange gathers the facts, this decides.
#include <cstdint>
#include <string_view>

#include "base/cause.h"
#include "base/clock.h"
#include "config/config.h"

namespace needle::proxy {

struct RetryInput {
  Cause cause = Cause::none;          // why the attempt failed
  bool connection_reused = false;     // the attempt ran on a pooled (reused) connection
  bool response_bytes_received = false;
  // Whether any byte of the request was accepted by the kernel for the upstream. false: the first
  // write failed (e.g. ECONNRESET from a RST the pool could not see), so the upstream cannot have
  // seen the request, and no body byte past the retry buffer was read from the client: it is
  // replayed whatever its method and body size.
  bool request_bytes_sent = true;
  std::string_view method;
  bool has_idempotency_key = false;   // Idempotency-Key or X-Idempotency-Key present
  bool body_replayable = true;        // whole body held in the retry buffer (or no body)
  uint32_t retries_done = 0;          // retries already made for this request
  uint32_t max_retries = 2;
  config::RetryNonIdempotent non_idempotent = config::RetryNonIdempotent::idempotency_key;
  bool other_host_available = false;  // an untried, usable host exists
};

enum class RetryAction {
  give_up,
  retry_fresh_connection,  // same cluster, never a pooled connection (any host; prefer same)
  retry_other_host,        // connect failure: another host, fresh connection
};

struct RetryDecision {
  RetryAction action = RetryAction::give_up;
  std::string_view reason;  // "not_replayable", "response_started", "max_retries", ... or "ok"
};

// The reason of a retry that decide_retry allowed and the RetryBudget refused; the request then
// ends with Cause::retry_budget_exhausted (its attempts keep the upstream failure).
inline constexpr std::string_view kRetryBudgetExhausted = "retry_budget_exhausted";

RetryDecision decide_retry(const RetryInput& input);

class RetryBudget;
// decide_retry, then the budget: a retry the policy allows is spent from `budget`, or refused
// with reason kRetryBudgetExhausted (action give_up). One retry is exempt, though counted: the
// first retry of a request whose pooled connection died before any response byte
// (the idle-close race). It replaces an attempt the pool sent down a connection the upstream had
// already closed, so it adds at most one attempt per request, and refusing it would turn the
// idle close needle exists to absorb into a 502 whenever many pooled connections die at once
// (an upstream restart closes every idle one in the same millisecond).
RetryDecision decide_retry(const RetryInput& input, RetryBudget& budget, TimePoint now);

// Whether a failure of this request on a reused connection before any response byte would be
// retried on a fresh connection (the body, the method or idempotency key, and the route's
// RetryNonIdempotent mode; cause and counters are ignored). Pass it to
// HostPool::checkout_idle(request_replayable): a request that cannot be replayed gets the
// stricter non_replayable_limit, so a wrong idle-limit guess costs a fresh connect, not a 502.
bool replayable_on_reused_connection(const RetryInput& input);

// Caps retries to a fraction of requests (Envoy's retry budget, Finagle's RetryBudget):
// a retry is allowed while retries in the last window <= max(min_per_second, ratio * requests).
class RetryBudget {
 public:
  RetryBudget(double ratio, uint32_t min_per_second);
  void on_request(TimePoint now);
  bool try_spend(TimePoint now);  // true: the retry may go; counted
  void spend(TimePoint now);      // a retry that goes whatever the budget says; counted

 private:
  void roll(TimePoint now);
  double ratio_;
  uint32_t min_per_second_;
  TimePoint window_start_{};
  // Two 1-second windows (current and previous) give a smooth sliding count.
  uint64_t requests_cur_ = 0, requests_prev_ = 0;
  uint64_t retries_cur_ = 0, retries_prev_ = 0;
};

}  // namespace needle::proxy
