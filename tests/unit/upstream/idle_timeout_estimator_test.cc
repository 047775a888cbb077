#include "upstream/idle_timeout_estimator.h"

#include <gtest/gtest.h>

namespace needle::upstream {
namespace {

using namespace std::chrono_literals;

IdleTimeoutEstimator::Settings defaults() { return {}; }

// Closes far apart in time (one at a time, like an idle timeout's), unless a test says when.
TimePoint next_close_time() {
  static TimePoint t = TimePoint{} + std::chrono::hours(1);
  t += 10s;
  return t;
}
void close_at(IdleTimeoutEstimator& e, Millis age, uint32_t requests_done = 1) {
  e.on_idle_close({next_close_time(), age, requests_done});
}
void close_at(IdleTimeoutEstimator& e, TimePoint at, Millis age, uint32_t requests_done = 1) {
  e.on_idle_close({at, age, requests_done});
}

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
  close_at(e, 300ms);
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
  close_at(e, 2000ms);
  close_at(e, 800ms);
  close_at(e, 1200ms);
  EXPECT_EQ(e.learned(), 800ms);
  EXPECT_EQ(e.effective_limit(), 700ms);
}

// Replaces ImplausiblyEarlyClosesAreCountedNotLearned (the 10 ms floor): an early close with
// nothing to explain it is learned, and the sentinel re-probes until it is disproven.
TEST(IdleTimeoutEstimator, AnUnexplainedEarlyCloseIsLearnedAndReprobed) {
  IdleTimeoutEstimator e(defaults());
  close_at(e, 13ms);
  EXPECT_EQ(e.learned(), 13ms);
  EXPECT_EQ(e.effective_limit(), 0ms);
  EXPECT_TRUE(e.reuse_stopped());
  EXPECT_EQ(e.last_verdict(), CloseVerdict::idle_timeout);
  EXPECT_TRUE(e.wants_sentinel());
  EXPECT_EQ(e.sentinel_horizon(), 113ms);  // max(2L, L + margin_min)
}

TEST(IdleTimeoutEstimator, MinimumOfConfiguredHintAndLearned) {
  IdleTimeoutEstimator e(configured(75s));
  e.on_hint(5s);
  EXPECT_EQ(e.effective_limit(), 4500ms);
  EXPECT_EQ(e.source(), IdleLimitSource::hint);
  close_at(e, 2s);
  EXPECT_EQ(e.effective_limit(), 1800ms);
  EXPECT_EQ(e.source(), IdleLimitSource::learned);
}

TEST(IdleTimeoutEstimator, TiesGoToConfiguredThenHint) {
  IdleTimeoutEstimator e(configured(5s));
  e.on_hint(5s);
  close_at(e, 5s);
  EXPECT_EQ(e.source(), IdleLimitSource::configured);
  IdleTimeoutEstimator h(defaults());
  h.on_hint(5s);
  close_at(h, 5s);
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
  close_at(l, 300ms);
  EXPECT_EQ(l.non_replayable_limit(), 200ms);
}

// Was WantsSentinelOnlyWhileGuessing: a learned limit is now re-probed too (it may be wrong).
TEST(IdleTimeoutEstimator, WantsSentinelWhileGuessingOrWhileLearnedBinds) {
  IdleTimeoutEstimator e(defaults());
  EXPECT_TRUE(e.wants_sentinel());
  e.on_sentinel_survived(3000ms);
  EXPECT_TRUE(e.wants_sentinel());
  close_at(e, 5000ms);
  EXPECT_TRUE(e.wants_sentinel());
  EXPECT_EQ(e.sentinel_horizon(), 10s);
  e.on_hint(4s);  // the hint binds now: nothing to re-probe
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

// --- evidence (docs/decisions/0006-idle-close-evidence.md) ------------------------------------

const TimePoint t0 = TimePoint{} + std::chrono::hours(2);

TEST(IdleCloseEvidence, CloseAtTheSameTimeWithDifferentAgesIsARestartBurst) {
  IdleTimeoutEstimator e(defaults());
  close_at(e, t0, 180ms);
  EXPECT_EQ(e.learned(), 180ms);  // alone, it is learned at once (down fast)...
  close_at(e, t0 + 2ms, 40ms);
  close_at(e, t0 + 4ms, 120ms);
  EXPECT_FALSE(e.learned());  // ...and un-learned when its peers show the burst
  EXPECT_EQ(e.effective_limit(), 1500ms);
  EXPECT_EQ(e.verdicts(CloseVerdict::restart_burst), 3u);
  EXPECT_EQ(e.last_verdict(), CloseVerdict::restart_burst);
}

TEST(IdleCloseEvidence, AnIdleTimeoutClosesAtTheSameAgeAtDifferentTimes) {
  IdleTimeoutEstimator e(defaults());
  close_at(e, t0, 2000ms);
  close_at(e, t0 + 30ms, 2010ms);  // same age, within the window: agrees, not a burst
  close_at(e, t0 + 400ms, 2005ms);
  EXPECT_EQ(e.learned(), 2000ms);
  EXPECT_EQ(e.verdicts(CloseVerdict::restart_burst), 0u);
}

TEST(IdleCloseEvidence, ClosesOfDifferentAgesFarApartInTimeAreNotABurst) {
  IdleTimeoutEstimator e(defaults());
  close_at(e, t0, 2000ms);
  close_at(e, t0 + 60ms, 900ms);
  EXPECT_EQ(e.learned(), 900ms);
}

TEST(IdleCloseEvidence, ACloseFarBelowAProvenAgeIsASuspect) {
  IdleTimeoutEstimator e(defaults());
  e.on_sentinel_survived(3000ms);
  close_at(e, t0, 60ms);
  EXPECT_FALSE(e.learned());
  EXPECT_EQ(e.suspect(), 60ms);
  EXPECT_EQ(e.effective_limit(), 2700ms);  // replayable requests keep reusing
  EXPECT_EQ(e.non_replayable_limit(), 0ms);  // non-replayable ones stay below the suspect
  EXPECT_EQ(e.last_verdict(), CloseVerdict::suspect);
}

TEST(IdleCloseEvidence, ARepeatedSuspectIsLearnedAndForgetsTheProvenAges) {
  IdleTimeoutEstimator e(defaults());
  e.on_reuse_succeeded(4000ms, 1);
  close_at(e, t0, 1000ms);
  EXPECT_FALSE(e.learned());
  close_at(e, t0 + 3s, 1020ms);  // same age, another time: the upstream got shorter
  EXPECT_EQ(e.learned(), 1000ms);
  EXPECT_EQ(e.effective_limit(), 900ms);
  EXPECT_FALSE(e.survived());
}

TEST(IdleCloseEvidence, ASuspectOfAnotherAgeDoesNotConfirm) {
  IdleTimeoutEstimator e(defaults());
  e.on_reuse_succeeded(4000ms, 1);
  close_at(e, t0, 1000ms);
  close_at(e, t0 + 3s, 300ms);
  EXPECT_FALSE(e.learned());
  EXPECT_EQ(e.suspect(), 300ms);
}

TEST(IdleCloseEvidence, AConnectRefusalAfterClosesConfirmsARestart) {
  IdleTimeoutEstimator e(defaults());
  close_at(e, t0, 30ms);
  EXPECT_TRUE(e.reuse_stopped());
  const uint64_t before = e.revision();
  e.on_connect_refused(t0 + 200ms);
  EXPECT_GT(e.revision(), before);
  EXPECT_FALSE(e.learned());
  EXPECT_FALSE(e.reuse_stopped());
  EXPECT_EQ(e.last_verdict(), CloseVerdict::restart_confirmed);
}

TEST(IdleCloseEvidence, ARefusalLongAfterTheCloseChangesNothing) {
  IdleTimeoutEstimator e(defaults());
  close_at(e, t0, 800ms);
  e.on_connect_refused(t0 + IdleTimeoutEstimator::kRestartConfirmWindow + 1ms);
  EXPECT_EQ(e.learned(), 800ms);
}

TEST(IdleCloseEvidence, ClosesAfterTheSameRequestCountAreARequestCap) {
  IdleTimeoutEstimator e(defaults());
  close_at(e, t0, 12ms, 5);
  EXPECT_EQ(e.learned(), 12ms);  // one close: nothing to compare with yet
  close_at(e, t0 + 1s, 15ms, 5);
  close_at(e, t0 + 2s, 11ms, 5);
  EXPECT_EQ(e.request_cap(), 5u);
  EXPECT_FALSE(e.learned());
  EXPECT_FALSE(e.reuse_stopped());
  EXPECT_EQ(e.verdicts(CloseVerdict::request_cap), 3u);
}

TEST(IdleCloseEvidence, NoCapWhenAConnectionServedMoreRequests) {
  IdleTimeoutEstimator e(defaults());
  e.on_reuse_succeeded(1ms, 5);  // a connection with 5 done served a sixth
  close_at(e, t0, 800ms, 5);
  close_at(e, t0 + 1s, 810ms, 5);
  close_at(e, t0 + 2s, 805ms, 5);
  EXPECT_FALSE(e.request_cap());
  EXPECT_EQ(e.learned(), 800ms);
}

TEST(IdleCloseEvidence, ASurvivingSentinelDisprovesTheLearnedClose) {
  IdleTimeoutEstimator e(defaults());
  close_at(e, t0, 13ms);
  ASSERT_TRUE(e.reuse_stopped());
  e.on_sentinel_survived(e.sentinel_horizon());
  EXPECT_FALSE(e.learned());
  EXPECT_FALSE(e.reuse_stopped());
  EXPECT_EQ(e.effective_limit(), 1500ms);
  EXPECT_EQ(e.last_verdict(), CloseVerdict::disproven);
}

TEST(IdleCloseEvidence, AReuseAboveALearnedCloseDisprovesIt) {
  IdleTimeoutEstimator e(defaults());
  close_at(e, t0, 300ms);
  e.on_reuse_succeeded(200ms, 1);  // within tolerance of nothing above 300: no change
  EXPECT_EQ(e.learned(), 300ms);
  e.on_reuse_succeeded(400ms, 1);
  EXPECT_FALSE(e.learned());
}

TEST(IdleCloseEvidence, TheLimitRecoversAfterTheTimeoutDropsAndRisesAgain) {
  IdleTimeoutEstimator e(defaults());
  // Timeout 1 s: learned from one close.
  close_at(e, t0, 1000ms);
  EXPECT_EQ(e.effective_limit(), 900ms);
  // Redeploy with 5 s: the re-probing sentinel survives 2 s, then 4 s, then is closed at 5 s.
  EXPECT_EQ(e.sentinel_horizon(), 2000ms);
  e.on_sentinel_survived(2000ms);
  EXPECT_FALSE(e.learned());
  EXPECT_EQ(e.effective_limit(), 1800ms);
  e.on_sentinel_survived(e.sentinel_horizon());
  close_at(e, t0 + 20s, 5000ms);
  EXPECT_EQ(e.learned(), 5000ms);
  EXPECT_EQ(e.effective_limit(), 4500ms);
}

TEST(IdleCloseEvidence, OldClosesAgeOutOfTheHistory) {
  IdleTimeoutEstimator e(defaults());
  close_at(e, t0, 500ms);
  for (size_t i = 1; i <= IdleTimeoutEstimator::kHistory; ++i) {
    close_at(e, t0 + static_cast<int>(i) * 10s, 2000ms);
  }
  EXPECT_EQ(e.learned(), 2000ms);
}

TEST(IdleCloseEvidence, WithoutLearningTheSentinelReprobesOnlyWhenReuseStopped) {
  auto s = defaults();
  s.learn = false;
  IdleTimeoutEstimator e(s);
  close_at(e, t0, 800ms);
  EXPECT_FALSE(e.wants_sentinel());
  close_at(e, t0 + 10s, 30ms);
  EXPECT_TRUE(e.wants_sentinel());
}

TEST(IdleCloseEvidence, EveryVerdictHasAName) {
  for (size_t i = 0; i < static_cast<size_t>(CloseVerdict::count_); ++i) {
    EXPECT_NE(close_verdict_name(static_cast<CloseVerdict>(i)), "unknown");
  }
}

}  // namespace
}  // namespace needle::upstream
