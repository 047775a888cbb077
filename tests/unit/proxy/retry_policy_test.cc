#include "proxy/retry_policy.h"

#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace needle::proxy {
namespace {

using namespace std::chrono_literals;
using config::RetryNonIdempotent;

struct Case {
  std::string name;
  RetryInput input;
  RetryAction action;
  std::string_view reason;
};

RetryInput base(Cause cause, std::string_view method = "GET") {
  RetryInput in;
  in.cause = cause;
  in.method = method;
  return in;
}

template <typename F>
RetryInput with(RetryInput in, F&& edit) {
  edit(in);
  return in;
}

std::vector<Case> cases() {
  using A = RetryAction;
  const Cause reused = Cause::reset_before_response_on_reused;
  const Cause fresh = Cause::reset_before_response_on_new;
  auto other_host = [](RetryInput& in) { in.other_host_available = true; };
  return {
      // Never after response bytes; checked before anything else.
      {"response_started_reused_get",
       with(base(reused), [](auto& in) { in.response_bytes_received = true; }), A::give_up,
       "response_started"},
      {"response_started_beats_connect_cause",
       with(base(Cause::connect_refused),
            [](auto& in) {
              in.response_bytes_received = true;
              in.other_host_available = true;
            }),
       A::give_up, "response_started"},
      // Bounded per request.
      {"max_retries", with(base(reused), [](auto& in) { in.retries_done = 2; }), A::give_up,
       "max_retries"},
      {"max_retries_zero", with(base(reused), [](auto& in) { in.max_retries = 0; }), A::give_up,
       "max_retries"},
      {"under_max_retries", with(base(reused), [](auto& in) { in.retries_done = 1; }),
       A::retry_fresh_connection, "ok"},
      // Connect failures: any method, another host.
      {"refused_post_other_host", with(base(Cause::connect_refused, "POST"), other_host),
       A::retry_other_host, "ok"},
      {"timeout_other_host", with(base(Cause::connect_timeout, "PATCH"), other_host),
       A::retry_other_host, "ok"},
      {"connect_error_other_host", with(base(Cause::connect_error), other_host),
       A::retry_other_host, "ok"},
      {"resolve_failed_other_host", with(base(Cause::resolve_failed), other_host),
       A::retry_other_host, "ok"},
      // A failed TLS handshake with the upstream sent no request byte (issue 18).
      {"tls_verify_post_other_host",
       with(base(Cause::upstream_tls_verify_failed, "POST"), other_host), A::retry_other_host,
       "ok"},
      {"tls_handshake_other_host", with(base(Cause::upstream_tls_handshake_failed), other_host),
       A::retry_other_host, "ok"},
      {"refused_single_host", base(Cause::connect_refused), A::give_up, "no_other_host"},
      {"refused_unbuffered_body_still_retried",
       with(base(Cause::connect_refused, "POST"),
            [](auto& in) {
              in.other_host_available = true;
              in.body_replayable = false;  // nothing was sent yet; the body is still unread
            }),
       A::retry_other_host, "ok"},
      // Reset on a reused connection: retried fresh when replayable.
      {"reused_get", base(reused), A::retry_fresh_connection, "ok"},
      {"reused_head", base(reused, "HEAD"), A::retry_fresh_connection, "ok"},
      {"reused_options", base(reused, "OPTIONS"), A::retry_fresh_connection, "ok"},
      {"reused_trace", base(reused, "TRACE"), A::retry_fresh_connection, "ok"},
      {"reused_put", base(reused, "PUT"), A::retry_fresh_connection, "ok"},
      {"reused_delete", base(reused, "DELETE"), A::retry_fresh_connection, "ok"},
      {"reused_lowercase_get_is_not_get", base(reused, "get"), A::give_up, "not_replayable"},
      {"reused_post_no_key", base(reused, "POST"), A::give_up, "not_replayable"},
      {"reused_post_with_key",
       with(base(reused, "POST"), [](auto& in) { in.has_idempotency_key = true; }),
       A::retry_fresh_connection, "ok"},
      {"reused_post_with_key_mode_never",
       with(base(reused, "POST"),
            [](auto& in) {
              in.has_idempotency_key = true;
              in.non_idempotent = RetryNonIdempotent::never;
            }),
       A::give_up, "not_replayable"},
      {"reused_get_mode_never",
       with(base(reused), [](auto& in) { in.non_idempotent = RetryNonIdempotent::never; }),
       A::retry_fresh_connection, "ok"},
      {"reused_post_opt_in",
       with(base(reused, "POST"),
            [](auto& in) { in.non_idempotent = RetryNonIdempotent::reused_connection; }),
       A::retry_fresh_connection, "ok"},
      {"reused_patch_opt_in_body_not_buffered",
       with(base(reused, "PATCH"),
            [](auto& in) {
              in.non_idempotent = RetryNonIdempotent::reused_connection;
              in.body_replayable = false;
            }),
       A::give_up, "not_replayable"},
      {"reused_put_body_not_buffered",
       with(base(reused, "PUT"), [](auto& in) { in.body_replayable = false; }), A::give_up,
       "not_replayable"},
      // Write failure: reused -> like a reset on a reused connection.
      {"write_failed_reused_get",
       with(base(Cause::upstream_write_failed), [](auto& in) { in.connection_reused = true; }),
       A::retry_fresh_connection, "ok"},
      {"write_failed_reused_post",
       with(base(Cause::upstream_write_failed, "POST"),
            [](auto& in) { in.connection_reused = true; }),
       A::give_up, "not_replayable"},
      // No byte of the request left needle (its first write failed): nobody saw it, so any
      // method is sent again on a fresh connection, as after a failed connect.
      {"reused_post_nothing_sent",
       with(base(reused, "POST"), [](auto& in) { in.request_bytes_sent = false; }),
       A::retry_fresh_connection, "ok"},
      {"write_failed_reused_post_nothing_sent",
       with(base(Cause::upstream_write_failed, "POST"),
            [](auto& in) {
              in.connection_reused = true;
              in.request_bytes_sent = false;
            }),
       A::retry_fresh_connection, "ok"},
      {"reused_patch_nothing_sent_mode_never",
       with(base(reused, "PATCH"),
            [](auto& in) {
              in.request_bytes_sent = false;
              in.non_idempotent = RetryNonIdempotent::never;
            }),
       A::retry_fresh_connection, "ok"},
      // Nothing sent also means no body byte past the retry buffer was read (the pump starts
      // after the first write): a body too large to buffer is replayed all the same.
      {"reused_post_nothing_sent_body_not_buffered",
       with(base(reused, "POST"),
            [](auto& in) {
              in.request_bytes_sent = false;
              in.body_replayable = false;
            }),
       A::retry_fresh_connection, "ok"},
      {"reused_get_sent_body_not_buffered",
       with(base(reused),
            [](auto& in) { in.body_replayable = false; }),
       A::give_up, "not_replayable"},
      {"new_post_nothing_sent_body_not_buffered",
       with(base(fresh, "POST"),
            [](auto& in) {
              in.request_bytes_sent = false;
              in.body_replayable = false;
              in.other_host_available = true;
            }),
       A::retry_other_host, "ok"},
      {"new_post_nothing_sent_single_host",
       with(base(fresh, "POST"), [](auto& in) { in.request_bytes_sent = false; }), A::give_up,
       "no_other_host"},
      {"reused_post_nothing_sent_after_max_retries",
       with(base(reused, "POST"),
            [](auto& in) {
              in.request_bytes_sent = false;
              in.retries_done = 2;
            }),
       A::give_up, "max_retries"},
      // Reset on a fresh connection: the upstream may have acted; idempotent, other host.
      {"new_get_other_host", with(base(fresh), other_host), A::retry_other_host, "ok"},
      {"new_get_single_host", base(fresh), A::give_up, "no_other_host"},
      {"new_post_other_host", with(base(fresh, "POST"), other_host), A::give_up,
       "not_replayable"},
      {"new_post_opt_in_does_not_apply",
       with(base(fresh, "POST"),
            [](auto& in) {
              in.other_host_available = true;
              in.non_idempotent = RetryNonIdempotent::reused_connection;
            }),
       A::give_up, "not_replayable"},
      {"new_post_with_key",
       with(base(fresh, "POST"),
            [](auto& in) {
              in.other_host_available = true;
              in.has_idempotency_key = true;
            }),
       A::retry_other_host, "ok"},
      {"new_get_body_not_buffered",
       with(base(fresh),
            [](auto& in) {
              in.other_host_available = true;
              in.body_replayable = false;
            }),
       A::give_up, "not_replayable"},
      {"write_failed_new_get", with(base(Cause::upstream_write_failed), other_host),
       A::retry_other_host, "ok"},
      // Never retried: the upstream may have acted.
      {"response_timeout", with(base(Cause::response_timeout), other_host), A::give_up,
       "not_retryable_cause"},
      {"invalid_response", with(base(Cause::invalid_response), other_host), A::give_up,
       "not_retryable_cause"},
      {"closed_mid_response", with(base(Cause::closed_mid_response), other_host), A::give_up,
       "not_retryable_cause"},
      {"client_closed", base(Cause::client_closed), A::give_up, "not_retryable_cause"},
      {"none", base(Cause::none), A::give_up, "not_retryable_cause"},
  };
}

class RetryPolicyTable : public ::testing::TestWithParam<Case> {};

TEST_P(RetryPolicyTable, Decides) {
  const Case& c = GetParam();
  RetryDecision d = decide_retry(c.input);
  EXPECT_EQ(d.action, c.action);
  EXPECT_EQ(d.reason, c.reason);
}

INSTANTIATE_TEST_SUITE_P(RetryPolicy, RetryPolicyTable, ::testing::ValuesIn(cases()),
                         [](const auto& info) { return info.param.name; });

TEST(RetryPolicy, ReplayableOnReusedConnectionMatchesDecideRetry) {
  for (const Case& c : cases()) {
    // The checkout asks before anything is sent, so it must assume the request will have been
    // sent when it fails: cases where nothing was sent answer a different question.
    if (c.input.cause != Cause::reset_before_response_on_reused || c.input.retries_done > 0 ||
        c.input.max_retries == 0 || c.input.response_bytes_received ||
        !c.input.request_bytes_sent) {
      continue;
    }
    EXPECT_EQ(replayable_on_reused_connection(c.input),
              decide_retry(c.input).action == RetryAction::retry_fresh_connection)
        << c.name;
  }
}

TimePoint t0() { return TimePoint{} + std::chrono::hours(1); }

// A connect failure's retry to another host: what the budget bounds.
RetryInput budgeted_retry() {
  return with(base(Cause::connect_refused), [](auto& in) { in.other_host_available = true; });
}

// The budget is consulted only for retries the policy allows, and its refusal is a reason of
// its own (the request then ends with Cause::retry_budget_exhausted).
TEST(RetryPolicy, BudgetRefusesAnAllowedRetry) {
  RetryBudget budget(0.0, 1);
  const RetryDecision first = decide_retry(budgeted_retry(), budget, t0());
  EXPECT_EQ(first.action, RetryAction::retry_other_host);
  EXPECT_EQ(first.reason, "ok");
  const RetryDecision second = decide_retry(budgeted_retry(), budget, t0());
  EXPECT_EQ(second.action, RetryAction::give_up);
  EXPECT_EQ(second.reason, kRetryBudgetExhausted);
}

TEST(RetryPolicy, BudgetIsNotSpentOnAGiveUp) {
  RetryBudget budget(0.0, 1);
  const RetryDecision no = decide_retry(base(Cause::response_timeout), budget, t0());
  EXPECT_EQ(no.reason, "not_retryable_cause");
  // The one retry of this second is still there.
  EXPECT_EQ(decide_retry(budgeted_retry(), budget, t0()).reason, "ok");
}

// An upstream restart closes every idle pooled connection at once: each request that met one
// gets its one retry on a fresh connection even with the budget spent (the idle-close race
// never becomes a 502), and those retries count against the budget for every other kind.
TEST(RetryPolicy, StaleConnectionRetryGoesWithTheBudgetSpentAndIsCounted) {
  RetryBudget budget(0.0, 2);
  const RetryInput stale = base(Cause::reset_before_response_on_reused);
  for (int i = 0; i < 20; ++i) {
    const RetryDecision decision = decide_retry(stale, budget, t0());
    EXPECT_EQ(decision.action, RetryAction::retry_fresh_connection) << i;
  }
  EXPECT_EQ(decide_retry(budgeted_retry(), budget, t0()).reason, kRetryBudgetExhausted);
  // A second retry of the same request is a retry like any other.
  const RetryInput again = with(stale, [](auto& in) { in.retries_done = 1; });
  EXPECT_EQ(decide_retry(again, budget, t0()).reason, kRetryBudgetExhausted);
  // Only the policy's own rules can refuse the first one.
  const RetryInput post = base(Cause::reset_before_response_on_reused, "POST");
  EXPECT_EQ(decide_retry(post, budget, t0()).reason, "not_replayable");
}

TEST(RetryBudget, MinimumPerSecondWithoutTraffic) {
  RetryBudget budget(0.2, 3);
  EXPECT_TRUE(budget.try_spend(t0()));
  EXPECT_TRUE(budget.try_spend(t0()));
  EXPECT_TRUE(budget.try_spend(t0()));
  EXPECT_FALSE(budget.try_spend(t0()));
}

TEST(RetryBudget, RatioOfRequests) {
  RetryBudget budget(0.2, 1);
  for (int i = 0; i < 100; ++i) budget.on_request(t0());
  int allowed = 0;
  for (int i = 0; i < 50; ++i) allowed += budget.try_spend(t0() + 10ms) ? 1 : 0;
  EXPECT_EQ(allowed, 20);
}

TEST(RetryBudget, RefillsAfterTheWindow) {
  RetryBudget budget(0.0, 2);
  EXPECT_TRUE(budget.try_spend(t0()));
  EXPECT_TRUE(budget.try_spend(t0()));
  EXPECT_FALSE(budget.try_spend(t0() + 500ms));
  // Half a second into the next window, half of the previous window's retries still count.
  EXPECT_TRUE(budget.try_spend(t0() + 1500ms));
  EXPECT_FALSE(budget.try_spend(t0() + 1500ms));
  EXPECT_TRUE(budget.try_spend(t0() + 5s));
  EXPECT_TRUE(budget.try_spend(t0() + 5s));
  EXPECT_FALSE(budget.try_spend(t0() + 5s));
}

TEST(RetryBudget, PreviousWindowFadesOut) {
  // 0.1 s into the next window the previous one (10 requests) weighs 0.9: 9 -> 4.5 retries.
  RetryBudget early(0.5, 0);
  for (int i = 0; i < 10; ++i) early.on_request(t0());
  int allowed = 0;
  for (int i = 0; i < 10; ++i) allowed += early.try_spend(t0() + 1100ms) ? 1 : 0;
  EXPECT_EQ(allowed, 4);
  // 0.9 s in it weighs 0.1: 1 request -> 0.5 retries: none.
  RetryBudget late(0.5, 0);
  for (int i = 0; i < 10; ++i) late.on_request(t0());
  EXPECT_FALSE(late.try_spend(t0() + 1900ms));
}

}  // namespace
}  // namespace needle::proxy
