// PoolCore without sockets: a fake connection that records its close, a ManualClock.
#include "upstream/pool_core.h"

#include <map>
#include <memory>
#include <vector>

#include <gtest/gtest.h>

namespace needle::upstream {
namespace {

using namespace std::chrono_literals;

struct FakeConn {
  FakeConn(uint64_t id, std::shared_ptr<std::vector<uint64_t>> closed)
      : id(id), closed(std::move(closed)) {}
  ~FakeConn() { closed->push_back(id); }
  uint64_t id;
  std::shared_ptr<std::vector<uint64_t>> closed;
  IdleSocketState socket = IdleSocketState::quiet;  // what a peek would find
  // Whether the reactor would vouch for the socket (no event since its queue was seen empty):
  // then a checkout allowed to skip the probe does not look at `socket`.
  bool reactor_quiet = false;
  int peeks = 0;
};

using Core = PoolCore<FakeConn>;

IdleSocketState probe(FakeConn& conn, bool may_skip) {
  if (may_skip && conn.reactor_quiet) return IdleSocketState::quiet_unprobed;
  ++conn.peeks;
  return conn.socket;
}

ReleaseInfo outcome(bool response_complete, bool upstream_keep_alive) {
  ReleaseInfo info;
  info.response_complete = response_complete;
  info.upstream_keep_alive = upstream_keep_alive;
  return info;
}
ReleaseInfo clean() { return outcome(true, true); }

class PoolCoreTest : public ::testing::Test {
 protected:
  PoolCoreTest() { settings.idle.learn = false; }

  Core& core() {
    if (!core_) core_ = std::make_unique<Core>(settings, clock);
    return *core_;
  }
  // A fresh connection, busy as if just connected for an exchange.
  std::unique_ptr<FakeConn> open(uint64_t id) {
    core().connect_started();
    core().connect_succeeded(id, clock.now());
    return std::make_unique<FakeConn>(id, closed);
  }
  // open() + release() with a clean response: the connection is idle.
  FakeConn* open_idle(uint64_t id, ReleaseInfo info = clean()) {
    return core().release(id, open(id), info);
  }
  std::optional<Core::Checkout> checkout(bool replayable = true) {
    return core().checkout(replayable, probe);
  }
  uint64_t evicted(EvictReason r) const { return core_->counters().evicted_for(r); }
  bool was_closed(uint64_t id) const {
    return std::find(closed->begin(), closed->end(), id) != closed->end();
  }

  PoolSettings settings;
  ManualClock clock;
  std::shared_ptr<std::vector<uint64_t>> closed = std::make_shared<std::vector<uint64_t>>();
  std::unique_ptr<Core> core_;
};

TEST_F(PoolCoreTest, FreshConnectionIsBusyAndCounted) {
  auto conn = open(1);
  EXPECT_EQ(core().busy_count(), 1u);
  EXPECT_EQ(core().active_requests(), 1u);
  EXPECT_EQ(core().counters().opened, 1u);
}

TEST_F(PoolCoreTest, ConnectsInFlightCountAsActive) {
  core().connect_started();
  core().connect_started();
  EXPECT_EQ(core().active_requests(), 2u);
  core().connect_failed(Cause::connect_refused);
  core().connect_abandoned();
  EXPECT_EQ(core().active_requests(), 0u);
  EXPECT_EQ(core().counters().connect_failures, 1u);
}

TEST_F(PoolCoreTest, CheckoutIsLifo) {
  open_idle(1);
  clock.advance(10ms);
  open_idle(2);
  clock.advance(10ms);
  open_idle(3);
  EXPECT_EQ(core().idle_ids(), (std::vector<uint64_t>{1, 2, 3}));
  auto c = checkout();
  ASSERT_TRUE(c);
  EXPECT_EQ(c->id, 3u);
  EXPECT_EQ(c->requests_done, 1u);
  EXPECT_EQ(c->idle_age, 0ms);
  EXPECT_EQ(checkout()->id, 2u);
  EXPECT_EQ(core().counters().reused, 2u);
}

TEST_F(PoolCoreTest, ReleaseAfterReuseCountsRequestsAndRecordsIdleAge) {
  open_idle(1);
  clock.advance(400ms);
  auto c = checkout();
  ASSERT_TRUE(c);
  EXPECT_EQ(c->idle_age, 400ms);
  ASSERT_NE(core().release(c->id, std::move(c->conn), clean()), nullptr);
  clock.advance(5ms);
  auto again = checkout();
  EXPECT_EQ(again->requests_done, 2u);
  EXPECT_EQ(again->idle_age, 5ms);
  // The reuse at 400 ms proved the upstream keeps at least that long.
  EXPECT_EQ(core().estimator().non_replayable_limit(), 300ms);
}

TEST_F(PoolCoreTest, NeverReusedAtTheLimit) {
  open_idle(1);
  clock.advance(1499ms);
  auto c = checkout();
  ASSERT_TRUE(c);  // 1 ms under the 1500 ms default limit
  core().release(c->id, std::move(c->conn), clean());
  clock.advance(1500ms);
  EXPECT_FALSE(checkout());
  EXPECT_TRUE(was_closed(1));
  EXPECT_EQ(evicted(EvictReason::idle_limit), 1u);
}

TEST_F(PoolCoreTest, ExpireEvictsAtTheDeadline) {
  open_idle(1);
  clock.advance(500ms);
  open_idle(2);
  EXPECT_EQ(core().next_deadline(), clock.now() - 500ms + 1500ms);
  clock.advance(999ms);
  core().expire();
  EXPECT_EQ(core().idle_count(), 2u);
  clock.advance(1ms);
  core().expire();
  EXPECT_EQ(core().idle_ids(), std::vector<uint64_t>{2});
  EXPECT_EQ(core().next_deadline(), clock.now() + 500ms);
  clock.advance(500ms);
  core().expire();
  EXPECT_EQ(core().idle_count(), 0u);
  EXPECT_FALSE(core().next_deadline());
  EXPECT_EQ(evicted(EvictReason::idle_limit), 2u);
}

TEST_F(PoolCoreTest, AHintMovesTheDeadline) {
  open_idle(1);
  auto c = open(2);
  ReleaseInfo info = clean();
  info.keep_alive_hint = 1s;
  core().release(2, std::move(c), info);
  EXPECT_EQ(core().estimator().effective_limit(), 900ms);
  EXPECT_EQ(core().next_deadline(), clock.now() + 900ms);
}

TEST_F(PoolCoreTest, MaxIdleEvictsTheOldest) {
  settings.max_idle = 2;
  open_idle(1);
  open_idle(2);
  open_idle(3);
  EXPECT_EQ(core().idle_ids(), (std::vector<uint64_t>{2, 3}));
  EXPECT_TRUE(was_closed(1));
  EXPECT_EQ(evicted(EvictReason::max_idle), 1u);
}

TEST_F(PoolCoreTest, MaxIdleZeroKeepsNothing) {
  settings.max_idle = 0;
  EXPECT_EQ(open_idle(1), nullptr);
  EXPECT_EQ(evicted(EvictReason::max_idle), 1u);
}

TEST_F(PoolCoreTest, MaxRequestsPerConnection) {
  settings.max_requests_per_connection = 2;
  ASSERT_NE(open_idle(1), nullptr);  // 1 request done
  auto c = checkout();
  EXPECT_EQ(core().release(c->id, std::move(c->conn), clean()), nullptr);  // 2nd: the last
  EXPECT_EQ(evicted(EvictReason::max_requests), 1u);
}

TEST_F(PoolCoreTest, MaxAgeAtReleaseAndWhileIdle) {
  settings.max_connection_age = 1000ms;
  auto a = open(1);
  clock.advance(1000ms);
  EXPECT_EQ(core().release(1, std::move(a), clean()), nullptr);
  EXPECT_EQ(evicted(EvictReason::max_age), 1u);

  open_idle(2);
  clock.advance(600ms);
  auto c = checkout();  // age 600 ms: still fine
  core().release(c->id, std::move(c->conn), clean());
  EXPECT_EQ(core().next_deadline(), clock.now() + 400ms);  // max age comes before idle limit
  clock.advance(400ms);
  EXPECT_FALSE(checkout());
  EXPECT_EQ(evicted(EvictReason::max_age), 2u);
}

TEST_F(PoolCoreTest, ReusePredicateGuards) {
  EXPECT_EQ(open_idle(1, outcome(false, true)), nullptr);
  EXPECT_EQ(open_idle(2, outcome(true, false)), nullptr);
  EXPECT_EQ(evicted(EvictReason::not_reusable), 2u);
  ReleaseInfo zero_hint = clean();
  zero_hint.keep_alive_hint = 0ms;
  EXPECT_EQ(open_idle(3, zero_hint), nullptr);
  EXPECT_EQ(evicted(EvictReason::idle_limit), 1u);
}

TEST_F(PoolCoreTest, DrainClosesIdleAndLaterReleases) {
  open_idle(1);
  open_idle(2);
  auto busy = open(3);
  core().drain();
  EXPECT_EQ(core().idle_count(), 0u);
  EXPECT_EQ(evicted(EvictReason::draining), 2u);
  EXPECT_EQ(core().release(3, std::move(busy), clean()), nullptr);
  EXPECT_EQ(evicted(EvictReason::draining), 3u);
}

TEST_F(PoolCoreTest, DiscardCloses) {
  auto c = open(1);
  core().discard(1, std::move(c));
  EXPECT_TRUE(was_closed(1));
  EXPECT_EQ(core().busy_count(), 0u);
  EXPECT_EQ(evicted(EvictReason::not_reusable), 1u);
}

TEST_F(PoolCoreTest, CheckoutProbeEvictsAndTriesTheNext) {
  open_idle(1);
  clock.advance(400ms);
  auto first = checkout();  // reused at 400 ms: the upstream keeps at least that long
  ASSERT_NE(core().release(first->id, std::move(first->conn), clean()), nullptr);
  clock.advance(200ms);
  FakeConn* two = open_idle(2);
  clock.advance(5ms);
  two->socket = IdleSocketState::closed;  // FIN arrived, watch not run yet
  auto c = checkout();
  ASSERT_TRUE(c);
  EXPECT_EQ(c->id, 1u);
  EXPECT_TRUE(was_closed(2));
  EXPECT_EQ(evicted(EvictReason::checkout_probe_failed), 1u);
  // Replaces the 10 ms plausibility floor: 5 ms is far below the proven 400 ms, a suspect.
  EXPECT_FALSE(core().estimator().learned());
  EXPECT_EQ(core().estimator().suspect(), 5ms);
}

TEST_F(PoolCoreTest, IdleClosesAtOnceWithDifferentAgesAreNotLearned) {
  open_idle(1);
  clock.advance(60ms);
  open_idle(2);
  clock.advance(60ms);
  open_idle(3);
  clock.advance(20ms);  // a restart: all three closed now, at 140, 80 and 20 ms
  core().on_idle_event(1, IdleSocketState::closed);
  core().on_idle_event(2, IdleSocketState::closed);
  clock.advance(1ms);
  core().on_idle_event(3, IdleSocketState::closed);
  EXPECT_EQ(evicted(EvictReason::upstream_closed_idle), 3u);
  EXPECT_FALSE(core().estimator().learned());
  EXPECT_FALSE(core().estimator().reuse_stopped());
  EXPECT_EQ(core().estimator().last_verdict(), CloseVerdict::restart_burst);
}

TEST_F(PoolCoreTest, AnEarlyCloseStopsReuseUntilTheSentinelDisprovesIt) {
  FakeConn* one = open_idle(1);
  clock.advance(13ms);
  core().on_idle_event(1, IdleSocketState::closed);
  (void)one;
  ASSERT_TRUE(core().estimator().reuse_stopped());
  // Reuse stopped: the next released connection is kept as the sentinel, not reused.
  ASSERT_NE(open_idle(2), nullptr);
  EXPECT_EQ(core().sentinel_id(), 2u);
  EXPECT_FALSE(checkout());
  EXPECT_EQ(core().next_deadline(), clock.now() + 113ms);
  EXPECT_EQ(open_idle(3), nullptr);  // one sentinel is enough
  clock.advance(113ms);
  core().expire();  // survived its horizon: 13 ms is disproven
  EXPECT_FALSE(core().estimator().learned());
  EXPECT_FALSE(core().estimator().reuse_stopped());
  open_idle(4);
  clock.advance(50ms);
  EXPECT_EQ(checkout()->id, 4u);
}

TEST_F(PoolCoreTest, ALearnedRequestCapRetiresConnections) {
  std::vector<std::unique_ptr<FakeConn>> busy;
  for (uint64_t id = 1; id <= 3; ++id) busy.push_back(open(id));
  for (uint64_t id = 1; id <= 3; ++id) core().release(id, std::move(busy[id - 1]), clean());
  for (int round = 1; round < 4; ++round) {  // four requests on each
    std::vector<Core::Checkout> out;
    for (int i = 0; i < 3; ++i) out.push_back(*checkout());
    for (auto& c : out) ASSERT_NE(core().release(c.id, std::move(c.conn), clean()), nullptr);
  }
  for (uint64_t id = 1; id <= 3; ++id) {  // each closed right after its 4th response
    clock.advance(1s);
    core().on_idle_event(id, IdleSocketState::closed);
  }
  EXPECT_EQ(core().estimator().request_cap(), 4u);
  EXPECT_FALSE(core().estimator().learned());
  open_idle(9);
  for (int n = 1; n < 3; ++n) {
    auto c = checkout();
    ASSERT_TRUE(c);
    ASSERT_NE(core().release(c->id, std::move(c->conn), clean()), nullptr);
  }
  auto c = checkout();
  EXPECT_EQ(core().release(c->id, std::move(c->conn), clean()), nullptr);  // the 4th: retired
  EXPECT_EQ(evicted(EvictReason::learned_request_cap), 1u);
}

TEST_F(PoolCoreTest, AConnectRefusalAfterACloseUnlearnsIt) {
  open_idle(1);
  clock.advance(40ms);
  core().on_idle_event(1, IdleSocketState::closed);
  ASSERT_TRUE(core().estimator().reuse_stopped());
  clock.advance(100ms);
  core().connect_started();
  core().connect_failed(Cause::connect_refused);
  EXPECT_FALSE(core().estimator().learned());
  EXPECT_FALSE(core().estimator().reuse_stopped());
}

TEST_F(PoolCoreTest, CheckoutProbeFailureProtectsOlderConnections) {
  open_idle(1);
  clock.advance(200ms);
  FakeConn* two = open_idle(2);
  clock.advance(300ms);
  two->socket = IdleSocketState::closed;  // the upstream closes at (at most) 300 ms
  EXPECT_FALSE(checkout());  // 1 is 500 ms idle: past what was just learned
  EXPECT_EQ(core().estimator().learned(), 300ms);
  EXPECT_EQ(core().next_deadline(), clock.now() - 500ms + 200ms);  // already due: timer evicts
  core().expire();
  EXPECT_TRUE(was_closed(1));
}

TEST_F(PoolCoreTest, YoungConnectionTheReactorVouchesForIsNotProbed) {
  FakeConn* one = open_idle(1);
  one->reactor_quiet = true;
  clock.advance(99ms);  // below probe_exempt_idle (100 ms)
  auto c = checkout();
  ASSERT_TRUE(c);
  EXPECT_EQ(c->conn->peeks, 0);
  EXPECT_EQ(core().counters().probes_skipped, 1u);
  EXPECT_EQ(core().counters().reused, 1u);
}

TEST_F(PoolCoreTest, ConnectionIdleAtTheExemptAgeIsProbedEvenIfTheReactorVouches) {
  FakeConn* one = open_idle(1);
  one->reactor_quiet = true;
  one->socket = IdleSocketState::closed;  // a FIN the reactor has not reported yet
  clock.advance(100ms);
  EXPECT_FALSE(checkout());
  EXPECT_EQ(evicted(EvictReason::checkout_probe_failed), 1u);
  EXPECT_EQ(core().counters().probes_skipped, 0u);
}

// A FIN that came after the reactor's last epoll_wait is invisible to the skip; a replayable
// request survives it by a retry, a non-replayable one would get a 502: it is always probed.
TEST_F(PoolCoreTest, NonReplayableRequestIsProbedEvenIfTheReactorVouches) {
  settings.idle.configured = 5000ms;  // the limit is known: non-replayable requests may reuse
  FakeConn* one = open_idle(1);
  one->reactor_quiet = true;
  clock.advance(10ms);  // below probe_exempt_idle
  auto c = checkout(/*replayable=*/false);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->conn->peeks, 1);
  EXPECT_EQ(core().counters().probes_skipped, 0u);
}

TEST_F(PoolCoreTest, ZeroExemptAgeProbesEveryCheckout) {
  settings.probe_exempt_idle = 0ms;
  open_idle(1)->reactor_quiet = true;
  auto c = checkout();
  ASSERT_TRUE(c);
  EXPECT_EQ(c->conn->peeks, 1);
  EXPECT_EQ(core().counters().probes_skipped, 0u);
}

TEST_F(PoolCoreTest, CheckoutProbeEvictsStrayBytes) {
  open_idle(1)->socket = IdleSocketState::stray_bytes;
  EXPECT_FALSE(checkout());
  EXPECT_EQ(evicted(EvictReason::checkout_probe_failed), 1u);
}

TEST_F(PoolCoreTest, IdleWatchEventsEvictAndTeach) {
  open_idle(1);
  open_idle(2);
  open_idle(3);
  clock.advance(700ms);
  core().on_idle_event(1, IdleSocketState::closed);
  core().on_idle_event(2, IdleSocketState::stray_bytes);
  core().on_idle_event(3, IdleSocketState::quiet);  // nothing happened
  core().on_idle_event(99, IdleSocketState::closed);  // unknown (already gone): ignored
  EXPECT_EQ(core().idle_ids(), std::vector<uint64_t>{3});
  EXPECT_EQ(evicted(EvictReason::upstream_closed_idle), 1u);
  EXPECT_EQ(evicted(EvictReason::stray_bytes_idle), 1u);
  EXPECT_EQ(core().estimator().learned(), 700ms);
  EXPECT_EQ(core().estimator().effective_limit(), 600ms);
}

TEST_F(PoolCoreTest, IdleEventForABusyConnectionIsIgnored) {
  open_idle(1);
  auto c = checkout();
  core().on_idle_event(1, IdleSocketState::closed);
  EXPECT_EQ(core().busy_count(), 1u);
  EXPECT_FALSE(was_closed(1));
  EXPECT_EQ(core().find_idle(1), nullptr);
}

TEST_F(PoolCoreTest, NonReplayableCheckoutUsesTheStricterLimit) {
  open_idle(1);
  clock.advance(400ms);
  // Nothing proven yet: a non-replayable request never reuses on a guessed limit.
  EXPECT_FALSE(checkout(false));
  EXPECT_EQ(core().idle_count(), 1u);  // left for replayable requests, not evicted
  auto c = checkout(true);
  ASSERT_TRUE(c);
  core().release(c->id, std::move(c->conn), clean());  // proves 400 ms -> non-replayable 300 ms
  clock.advance(299ms);
  EXPECT_TRUE(checkout(false));
  open_idle(2);
  clock.advance(300ms);
  EXPECT_FALSE(checkout(false));
  EXPECT_EQ(core().idle_count(), 1u);
  EXPECT_EQ(checkout(true)->id, 2u);
}

TEST_F(PoolCoreTest, NonReplayableUsesTheFullLimitOnceKnown) {
  settings.idle.configured = 5s;
  open_idle(1);
  clock.advance(4499ms);
  EXPECT_TRUE(checkout(false));
}

TEST_F(PoolCoreTest, EjectsAfterConsecutiveConnectFailures) {
  settings.eject_after_connect_failures = 3;
  settings.eject_duration = 5s;
  for (int i = 0; i < 2; ++i) {
    core().connect_started();
    core().connect_failed(Cause::connect_refused);
  }
  EXPECT_FALSE(core().ejected());
  auto ok = open(1);  // a success resets the streak
  for (int i = 0; i < 2; ++i) {
    core().connect_started();
    core().connect_failed(Cause::connect_refused);
  }
  EXPECT_FALSE(core().ejected());
  core().connect_started();
  core().connect_failed(Cause::connect_refused);
  EXPECT_TRUE(core().ejected());
  clock.advance(5s);
  EXPECT_FALSE(core().ejected());
  core().connect_started();
  core().connect_failed(Cause::connect_refused);  // still failing after the ejection: ejected again at once
  EXPECT_TRUE(core().ejected());
}

TEST_F(PoolCoreTest, NeedlesOwnFdShortageNeitherCountsNorEjects) {
  settings.eject_after_connect_failures = 2;
  core().connect_started();
  core().connect_failed(Cause::connect_refused);
  for (int i = 0; i < 10; ++i) {
    core().connect_started();
    core().connect_failed(Cause::local_resource_exhausted);  // EMFILE while opening the socket
  }
  EXPECT_FALSE(core().ejected());
  EXPECT_EQ(core().counters().connect_failures, 1u);
  EXPECT_EQ(core().active_requests(), 0u);
  core().connect_started();
  core().connect_failed(Cause::connect_timeout);  // the host's streak went on underneath
  EXPECT_TRUE(core().ejected());
}

// --- sentinel ------------------------------------------------------------------------------

class PoolCoreSentinelTest : public PoolCoreTest {
 protected:
  PoolCoreSentinelTest() { settings.idle.learn = true; }
};

TEST_F(PoolCoreSentinelTest, TheFirstToReachTheLimitBecomesTheSentinel) {
  open_idle(1);
  clock.advance(100ms);
  open_idle(2);
  clock.advance(1400ms);  // 1 reaches 1500 ms
  core().expire();
  EXPECT_EQ(core().sentinel_id(), 1u);
  EXPECT_EQ(core().idle_ids(), std::vector<uint64_t>{2});
  EXPECT_FALSE(was_closed(1));
  clock.advance(100ms);  // 2 reaches the limit: a sentinel exists, so it is closed
  core().expire();
  EXPECT_TRUE(was_closed(2));
  EXPECT_EQ(evicted(EvictReason::idle_limit), 1u);
}

TEST_F(PoolCoreSentinelTest, TheSentinelIsNeverCheckedOut) {
  open_idle(1);
  clock.advance(1500ms);
  EXPECT_FALSE(checkout());  // lazy expiry promotes it instead of handing it out
  EXPECT_TRUE(core().has_sentinel());
  EXPECT_EQ(core().idle_count(), 0u);
  EXPECT_NE(core().find_idle(1), nullptr);  // still watched
}

TEST_F(PoolCoreSentinelTest, SurvivingTheHorizonRaisesTheLimit) {
  open_idle(1);
  clock.advance(1500ms);
  core().expire();
  ASSERT_TRUE(core().has_sentinel());
  EXPECT_EQ(core().next_deadline(), clock.now() + 1500ms);  // horizon 3000 ms from idle_since
  clock.advance(1500ms);
  core().expire();
  EXPECT_FALSE(core().has_sentinel());
  EXPECT_TRUE(was_closed(1));
  EXPECT_EQ(evicted(EvictReason::sentinel_done), 1u);
  EXPECT_EQ(core().estimator().survived(), 3000ms);
  EXPECT_EQ(core().estimator().effective_limit(), 2700ms);
  EXPECT_EQ(core().estimator().sentinel_horizon(), 6000ms);
}

TEST_F(PoolCoreSentinelTest, ClosedByTheUpstreamTeachesTheTimeout) {
  open_idle(1);
  clock.advance(1500ms);
  core().expire();
  clock.advance(500ms);
  core().on_idle_event(1, IdleSocketState::closed);
  EXPECT_FALSE(core().has_sentinel());
  EXPECT_EQ(evicted(EvictReason::sentinel_done), 1u);
  EXPECT_EQ(core().estimator().learned(), 2000ms);
  EXPECT_EQ(core().estimator().effective_limit(), 1800ms);
  // Was EXPECT_FALSE: a learned limit is re-probed (decision 0006), up to 2 * 2000 ms.
  EXPECT_TRUE(core().estimator().wants_sentinel());
  EXPECT_EQ(core().estimator().sentinel_horizon(), 4000ms);
}

TEST_F(PoolCoreSentinelTest, ASentinelNoLongerWantedIsClosed) {
  open_idle(1);
  clock.advance(1500ms);
  core().expire();
  ASSERT_TRUE(core().has_sentinel());
  ReleaseInfo hinted = clean();
  hinted.keep_alive_hint = 5s;
  open_idle(2, hinted);
  core().expire();
  EXPECT_FALSE(core().has_sentinel());
  EXPECT_EQ(evicted(EvictReason::sentinel_done), 1u);
}

TEST_F(PoolCoreSentinelTest, DrainClosesTheSentinel) {
  open_idle(1);
  clock.advance(1500ms);
  core().expire();
  core().drain();
  EXPECT_FALSE(core().has_sentinel());
  EXPECT_TRUE(was_closed(1));
}

TEST_F(PoolCoreSentinelTest, NoSentinelWhenTheTimeoutIsConfigured) {
  settings.idle.configured = 2s;
  open_idle(1);
  clock.advance(1800ms);
  core().expire();
  EXPECT_FALSE(core().has_sentinel());
  EXPECT_EQ(evicted(EvictReason::idle_limit), 1u);
}

TEST(PoolEvictReason, EveryReasonHasAName) {
  for (size_t i = 0; i < static_cast<size_t>(EvictReason::count_); ++i) {
    EXPECT_NE(evict_reason_name(static_cast<EvictReason>(i)), "unknown");
  }
}

}  // namespace
}  // namespace needle::upstream
