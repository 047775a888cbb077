// The closed Cause enum: contiguous up to kLastCause, every value named once (names are API:
// log fields, metric labels, alert rule matchers, [alerts] causes).
#include "base/cause.h"

#include <set>
#include <string>

#include <gtest/gtest.h>

namespace needle {
namespace {

TEST(Cause, EveryValueUpToTheLastHasItsOwnName) {
  std::set<std::string> names;
  for (unsigned i = 0; i <= static_cast<unsigned>(kLastCause); ++i) {
    const std::string name(cause_name(static_cast<Cause>(i)));
    EXPECT_NE(name, "unknown") << i;
    EXPECT_TRUE(names.insert(name).second) << "duplicate name " << name;
  }
  EXPECT_EQ(cause_name(static_cast<Cause>(static_cast<unsigned>(kLastCause) + 1)), "unknown");
}

TEST(Cause, LocalResourceExhaustionIsNeedlesOwnNotTheUpstreams) {
  EXPECT_EQ(cause_name(Cause::local_resource_exhausted), "local_resource_exhausted");
  EXPECT_FALSE(is_upstream_cause(Cause::local_resource_exhausted));
  EXPECT_TRUE(is_upstream_cause(Cause::connect_error));
}

// A relayed response with bytes behind it is the upstream's fault (needle_upstream_failures_total
// counts it); the budget's refusal is needle's own policy, not an upstream failure.
TEST(Cause, StrayBytesAreTheUpstreamsAndTheBudgetIsNot) {
  EXPECT_EQ(cause_name(Cause::stray_bytes_after_response), "stray_bytes_after_response");
  EXPECT_TRUE(is_upstream_cause(Cause::stray_bytes_after_response));
  EXPECT_EQ(cause_name(Cause::retry_budget_exhausted), "retry_budget_exhausted");
  EXPECT_FALSE(is_upstream_cause(Cause::retry_budget_exhausted));
}

// A TLS handshake with the upstream that fails is the upstream's doing (issue 18).
TEST(Cause, UpstreamTlsFailuresAreTheUpstreams) {
  EXPECT_EQ(cause_name(Cause::upstream_tls_verify_failed), "upstream_tls_verify_failed");
  EXPECT_EQ(cause_name(Cause::upstream_tls_handshake_failed), "upstream_tls_handshake_failed");
  EXPECT_TRUE(is_upstream_cause(Cause::upstream_tls_verify_failed));
  EXPECT_TRUE(is_upstream_cause(Cause::upstream_tls_handshake_failed));
}

// Refusals of needle's own overload protection are not upstream failures: a breaker refuses
// before any attempt (the upstream is not to blame, and must not be ejected for it), and a rate
// limit is the client's doing.
TEST(Cause, OverloadRefusalsAreNotUpstreamFailures) {
  EXPECT_EQ(cause_name(Cause::upstream_overflow), "upstream_overflow");
  EXPECT_FALSE(is_upstream_cause(Cause::upstream_overflow));
  EXPECT_EQ(cause_name(Cause::rate_limited), "rate_limited");
  EXPECT_FALSE(is_upstream_cause(Cause::rate_limited));
}

// `draining` was never produced (a draining worker finishes the requests it has and closes idle
// connections quietly; it refuses none), so it is not a cause: docs and alert filters list only
// causes some code path produces.
TEST(Cause, DrainingIsNotACause) {
  for (unsigned i = 0; i <= static_cast<unsigned>(kLastCause); ++i) {
    EXPECT_NE(cause_name(static_cast<Cause>(i)), "draining");
  }
}

}  // namespace
}  // namespace needle
