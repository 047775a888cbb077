#include "upstream/idle_timeout_estimator.h"

#include <gtest/gtest.h>

namespace needle::upstream {
namespace {

using namespace std::chrono_literals;

IdleTimeoutEstimator::Settings defaults() { return {}; }

IdleTimeoutEstimator::Settings configured(Millis c) {
  IdleTimeoutEstimator::Settings s;
  s.configured = c;
  return s;
}

TEST(IdleTimeoutEstimator, DefaultIsTheInitialGuess) {
  IdleTimeoutEstimator e(defaults());
  EXPECT_EQ(e.effective_limit(), 1500ms);
  EXPECT_EQ(e.source(), IdleLimitSource::default_initial);
  EXPECT_EQ(idle_limit_source_name(e.source()), "default");
}

TEST(IdleTimeoutEstimator, MarginIsTenPercentOrAtLeast100ms) {
  IdleTimeoutEstimator e(defaults());
  EXPECT_EQ(e.margin_for(5s), 500ms);
  EXPECT_EQ(e.margin_for(1s), 100ms);
  EXPECT_EQ(e.margin_for(300ms), 100ms);
  EXPECT_EQ(e.margin_for(75s), 7500ms);
}

TEST(IdleTimeoutEstimator, Hint5sGives4500ms) {
  IdleTimeoutEstimator e(defaults());
  e.on_hint(5s);
  EXPECT_EQ(e.effective_limit(), 4500ms);
  EXPECT_EQ(e.source(), IdleLimitSource::hint);
}

TEST(IdleTimeoutEstimator, Hint1sGives900ms) {
  IdleTimeoutEstimator e(defaults());
  e.on_hint(1s);
  EXPECT_EQ(e.effective_limit(), 900ms);
}

TEST(IdleTimeoutEstimator, HintKeepsTheLatest) {
  IdleTimeoutEstimator e(defaults());
  e.on_hint(2s);
  e.on_hint(5s);
  EXPECT_EQ(e.hint(), 5s);
  EXPECT_EQ(e.effective_limit(), 4500ms);
}

TEST(IdleTimeoutEstimator, HintOfZeroMeansNeverReuse) {
  IdleTimeoutEstimator e(defaults());
  e.on_hint(0ms);
  EXPECT_EQ(e.effective_limit(), 0ms);
}

TEST(IdleTimeoutEstimator, CloseAt300msGives200ms) {
  IdleTimeoutEstimator e(defaults());
  e.on_idle_close(300ms);
  EXPECT_EQ(e.effective_limit(), 200ms);
  EXPECT_EQ(e.source(), IdleLimitSource::learned);
}

TEST(IdleTimeoutEstimator, Configured75sGives67500ms) {
  IdleTimeoutEstimator e(configured(75s));
  EXPECT_EQ(e.effective_limit(), 67500ms);
  EXPECT_EQ(e.source(), IdleLimitSource::configured);
}

TEST(IdleTimeoutEstimator, LearnedKeepsTheMinimumClose) {
  IdleTimeoutEstimator e(defaults());
  e.on_idle_close(2000ms);
  e.on_idle_close(800ms);
  e.on_idle_close(1200ms);
  EXPECT_EQ(e.learned(), 800ms);
  EXPECT_EQ(e.effective_limit(), 700ms);
}

TEST(IdleTimeoutEstimator, ImplausiblyEarlyClosesAreCountedNotLearned) {
  IdleTimeoutEstimator e(defaults());
  e.on_idle_close(3ms);
  e.on_idle_close(9ms);
  EXPECT_FALSE(e.learned());
  EXPECT_EQ(e.implausible_closes(), 2u);
  EXPECT_EQ(e.effective_limit(), 1500ms);
  e.on_idle_close(IdleTimeoutEstimator::kMinPlausibleIdleClose);
  EXPECT_EQ(e.learned(), 10ms);
}

TEST(IdleTimeoutEstimator, MinimumOfConfiguredHintAndLearned) {
  IdleTimeoutEstimator e(configured(75s));
  e.on_hint(5s);
  EXPECT_EQ(e.effective_limit(), 4500ms);
  EXPECT_EQ(e.source(), IdleLimitSource::hint);
  e.on_idle_close(2s);
  EXPECT_EQ(e.effective_limit(), 1800ms);
  EXPECT_EQ(e.source(), IdleLimitSource::learned);
}

TEST(IdleTimeoutEstimator, TiesGoToConfiguredThenHint) {
  IdleTimeoutEstimator e(configured(5s));
  e.on_hint(5s);
  e.on_idle_close(5s);
  EXPECT_EQ(e.source(), IdleLimitSource::configured);
  IdleTimeoutEstimator h(defaults());
  h.on_hint(5s);
  h.on_idle_close(5s);
  EXPECT_EQ(h.source(), IdleLimitSource::hint);
}

TEST(IdleTimeoutEstimator, SurvivalRaisesTheDefaultLimit) {
  IdleTimeoutEstimator e(defaults());
  e.on_sentinel_survived(1000ms);  // below the guess: no change
  EXPECT_EQ(e.effective_limit(), 1500ms);
  EXPECT_EQ(e.source(), IdleLimitSource::default_initial);
  e.on_sentinel_survived(3000ms);
  EXPECT_EQ(e.effective_limit(), 2700ms);
  EXPECT_EQ(e.source(), IdleLimitSource::learned);
  e.on_sentinel_survived(2000ms);  // keeps the largest
  EXPECT_EQ(e.survived(), 3000ms);
}

TEST(IdleTimeoutEstimator, SurvivalDoesNotOverrideAKnownTimeout) {
  IdleTimeoutEstimator e(defaults());
  e.on_hint(2s);
  e.on_sentinel_survived(60s);
  EXPECT_EQ(e.effective_limit(), 1800ms);
}

TEST(IdleTimeoutEstimator, NonReplayableIsZeroWhileNothingIsProven) {
  IdleTimeoutEstimator e(defaults());
  EXPECT_EQ(e.non_replayable_limit(), 0ms);
}

TEST(IdleTimeoutEstimator, NonReplayableStaysBelowProvenAges) {
  IdleTimeoutEstimator e(defaults());
  e.on_reuse_succeeded(800ms);
  e.on_reuse_succeeded(400ms);  // keeps the largest
  EXPECT_EQ(e.non_replayable_limit(), 700ms);
  e.on_sentinel_survived(3000ms);
  // proven = max(survived 3000, reuse 800) -> 2700, equal to the raised effective limit.
  EXPECT_EQ(e.non_replayable_limit(), 2700ms);
  EXPECT_LE(e.non_replayable_limit(), e.effective_limit());
}

TEST(IdleTimeoutEstimator, NonReplayableNeverExceedsEffective) {
  IdleTimeoutEstimator e(defaults());
  e.on_reuse_succeeded(1400ms);  // 1400 - 140 = 1260 < 1500
  EXPECT_EQ(e.non_replayable_limit(), 1260ms);
  IdleTimeoutEstimator f(defaults());
  f.on_sentinel_survived(1600ms);  // effective max(1500, 1440) = 1500; proven 1440
  EXPECT_EQ(f.non_replayable_limit(), 1440ms);
}

TEST(IdleTimeoutEstimator, NonReplayableEqualsEffectiveOnceTheTimeoutIsKnown) {
  IdleTimeoutEstimator c(configured(75s));
  EXPECT_EQ(c.non_replayable_limit(), 67500ms);
  IdleTimeoutEstimator h(defaults());
  h.on_hint(5s);
  EXPECT_EQ(h.non_replayable_limit(), 4500ms);
  IdleTimeoutEstimator l(defaults());
  l.on_idle_close(300ms);
  EXPECT_EQ(l.non_replayable_limit(), 200ms);
}

TEST(IdleTimeoutEstimator, WantsSentinelOnlyWhileGuessing) {
  IdleTimeoutEstimator e(defaults());
  EXPECT_TRUE(e.wants_sentinel());
  e.on_sentinel_survived(3000ms);
  EXPECT_TRUE(e.wants_sentinel());
  e.on_idle_close(5000ms);
  EXPECT_FALSE(e.wants_sentinel());

  IdleTimeoutEstimator h(defaults());
  h.on_hint(5s);
  EXPECT_FALSE(h.wants_sentinel());
  EXPECT_FALSE(IdleTimeoutEstimator(configured(5s)).wants_sentinel());
  auto off = defaults();
  off.learn = false;
  EXPECT_FALSE(IdleTimeoutEstimator(off).wants_sentinel());
}

TEST(IdleTimeoutEstimator, SentinelHorizonDoublesUpToTheCap) {
  auto s = defaults();
  s.max_horizon = 10s;
  IdleTimeoutEstimator e(s);
  EXPECT_EQ(e.sentinel_horizon(), 3000ms);
  e.on_sentinel_survived(3000ms);
  EXPECT_EQ(e.sentinel_horizon(), 6000ms);
  e.on_sentinel_survived(6000ms);
  EXPECT_EQ(e.sentinel_horizon(), 10s);
  EXPECT_TRUE(e.wants_sentinel());
  e.on_sentinel_survived(10s);
  EXPECT_FALSE(e.wants_sentinel());  // survived the cap: nothing left to learn
}

}  // namespace
}  // namespace needle::upstream
