// The state machines of upstream health (issue 20): the active check's thresholds, ejection
// growth and decay, max_ejection_percent, the streaks workers report, and panic mode.
#include "upstream/host_health.h"

#include <memory>
#include <vector>

#include <gtest/gtest.h>

namespace needle::upstream {
namespace {

using namespace std::chrono_literals;

TEST(ActiveCheckState, UncheckedHostComesInAtItsFirstPass) {
  ActiveCheckState state(/*initial_healthy=*/false);
  EXPECT_FALSE(state.healthy());
  EXPECT_FALSE(state.on_result(false, 2, 3));  // a failure keeps it out, no change
  EXPECT_FALSE(state.healthy());
  EXPECT_TRUE(state.on_result(true, 2, 3));  // first pass: in at once, not after 2
  EXPECT_TRUE(state.healthy());
}

TEST(ActiveCheckState, HealthyHostGoesOutAfterUnhealthyThresholdFailures) {
  ActiveCheckState state(/*initial_healthy=*/true);
  EXPECT_FALSE(state.on_result(false, 2, 3));
  EXPECT_FALSE(state.on_result(false, 2, 3));
  EXPECT_FALSE(state.on_result(true, 2, 3));  // a pass ends the streak
  EXPECT_FALSE(state.on_result(false, 2, 3));
  EXPECT_FALSE(state.on_result(false, 2, 3));
  EXPECT_TRUE(state.healthy());
  EXPECT_TRUE(state.on_result(false, 2, 3));
  EXPECT_FALSE(state.healthy());
  EXPECT_EQ(state.consecutive_failures(), 3u);
}

TEST(ActiveCheckState, UnhealthyHostNeedsHealthyThresholdPassesToComeBack) {
  ActiveCheckState state(/*initial_healthy=*/true);
  for (int i = 0; i < 3; ++i) state.on_result(false, 2, 3);
  ASSERT_FALSE(state.healthy());
  EXPECT_FALSE(state.on_result(true, 2, 3));   // one pass is not enough once it was checked
  EXPECT_FALSE(state.on_result(false, 2, 3));  // a failure restarts the count
  EXPECT_FALSE(state.on_result(true, 2, 3));
  EXPECT_TRUE(state.on_result(true, 2, 3));
  EXPECT_TRUE(state.healthy());
}

TEST(OutlierState, EjectionGrowsWithEachEjectionUpToTheCap) {
  config::OutlierDetectionConfig config;
  config.base_ejection_time = 10s;
  config.max_ejection_time = 25s;
  OutlierState state;
  const TimePoint t0 = TimePoint{} + 1h;
  EXPECT_EQ(state.eject(t0, config), 10s);
  EXPECT_TRUE(state.ejected());
  EXPECT_FALSE(state.end_if_due(t0 + 9s));
  EXPECT_TRUE(state.end_if_due(t0 + 10s));
  EXPECT_FALSE(state.ejected());
  EXPECT_EQ(state.eject(t0 + 11s, config), 20s);  // second: base * 2
  EXPECT_TRUE(state.end_if_due(t0 + 31s));
  EXPECT_EQ(state.eject(t0 + 32s, config), 25s);  // third: base * 3 = 30 s, capped at 25 s
  EXPECT_EQ(state.multiplier(), 3u);
}

TEST(OutlierState, MultiplierDecaysOnlyWhileInRotation) {
  config::OutlierDetectionConfig config;
  config.base_ejection_time = 10s;
  OutlierState state;
  const TimePoint t0 = TimePoint{} + 1h;
  state.eject(t0, config);
  state.on_interval();  // still ejected: no decay
  EXPECT_EQ(state.multiplier(), 1u);
  state.end_if_due(t0 + 10s);
  state.on_interval();
  EXPECT_EQ(state.multiplier(), 0u);
  state.on_interval();  // never below 0
  EXPECT_EQ(state.eject(t0 + 20s, config), 10s);
}

TEST(MaxEjectionPercent, LimitsTheShareOfHostsOutButAllowsOne) {
  EXPECT_TRUE(may_eject(0, 2, 50));
  EXPECT_FALSE(may_eject(1, 2, 50));
  EXPECT_TRUE(may_eject(0, 3, 50));
  EXPECT_FALSE(may_eject(1, 3, 50));  // floor(1.5) = 1
  EXPECT_TRUE(may_eject(1, 4, 50));
  EXPECT_FALSE(may_eject(2, 4, 50));
  EXPECT_TRUE(may_eject(0, 1, 10));  // at least one, whatever the percentage
  EXPECT_FALSE(may_eject(1, 1, 10));
  EXPECT_TRUE(may_eject(2, 3, 100));
  EXPECT_FALSE(may_eject(0, 3, 0));  // 0: never
}

TEST(ClassifyAttempt, SortsCausesByWhatTheySayAboutTheHost) {
  EXPECT_EQ(classify_attempt(Cause::none, 200), AttemptOutcome::response);
  EXPECT_EQ(classify_attempt(Cause::none, 503), AttemptOutcome::response_5xx);
  EXPECT_EQ(classify_attempt(Cause::upstream_5xx, 500), AttemptOutcome::response_5xx);
  EXPECT_EQ(classify_attempt(Cause::connect_refused, 0), AttemptOutcome::gateway_failure);
  EXPECT_EQ(classify_attempt(Cause::connect_timeout, 0), AttemptOutcome::gateway_failure);
  EXPECT_EQ(classify_attempt(Cause::response_timeout, 0), AttemptOutcome::gateway_failure);
  EXPECT_EQ(classify_attempt(Cause::reset_before_response_on_new, 0),
            AttemptOutcome::gateway_failure);
  // The keep-alive race is needle's to handle (retried), not the host's fault.
  EXPECT_EQ(classify_attempt(Cause::reset_before_response_on_reused, 0), AttemptOutcome::ignored);
  EXPECT_EQ(classify_attempt(Cause::local_resource_exhausted, 0), AttemptOutcome::ignored);
  EXPECT_EQ(classify_attempt(Cause::client_closed, 0), AttemptOutcome::ignored);
}

TEST(HostHealthStreak, ReachesTheThresholdOnceAndAResponseEndsIt) {
  HostHealth host("127.0.0.1:1", true);
  EXPECT_FALSE(host.on_attempt(AttemptOutcome::response_5xx, 3, 3));
  EXPECT_FALSE(host.on_attempt(AttemptOutcome::response_5xx, 3, 3));
  EXPECT_FALSE(host.on_attempt(AttemptOutcome::response, 3, 3));  // streak over
  EXPECT_FALSE(host.on_attempt(AttemptOutcome::response_5xx, 3, 3));
  EXPECT_FALSE(host.on_attempt(AttemptOutcome::response_5xx, 3, 3));
  EXPECT_EQ(host.on_attempt(AttemptOutcome::response_5xx, 3, 3), EjectReason::consecutive_5xx);
  EXPECT_FALSE(host.on_attempt(AttemptOutcome::response_5xx, 3, 3));  // only once per streak
}

TEST(HostHealthStreak, GatewayFailuresHaveTheirOwnStreakAndAny5xxAnswerEndsIt) {
  HostHealth host("127.0.0.1:1", true);
  EXPECT_FALSE(host.on_attempt(AttemptOutcome::gateway_failure, 2, 2));
  EXPECT_FALSE(host.on_attempt(AttemptOutcome::response_5xx, 2, 2));  // it answered
  EXPECT_FALSE(host.on_attempt(AttemptOutcome::gateway_failure, 2, 2));
  EXPECT_EQ(host.on_attempt(AttemptOutcome::gateway_failure, 2, 2),
            EjectReason::consecutive_gateway_failure);
  EXPECT_FALSE(host.on_attempt(AttemptOutcome::ignored, 2, 2));
}

TEST(HostHealthStreak, ThresholdZeroIsOff) {
  HostHealth host("127.0.0.1:1", true);
  for (int i = 0; i < 10; ++i) EXPECT_FALSE(host.on_attempt(AttemptOutcome::response_5xx, 0, 0));
}

TEST(HostHealth, OutReasonsAreIndependentBits) {
  HostHealth host("127.0.0.1:1", /*initial_healthy=*/false);
  EXPECT_FALSE(host.in_rotation());
  EXPECT_TRUE(host.out_for(OutReason::failed_check));
  host.set_out(OutReason::ejected, true);
  host.set_out(OutReason::failed_check, false);
  EXPECT_FALSE(host.in_rotation());
  host.set_out(OutReason::ejected, false);
  EXPECT_TRUE(host.in_rotation());
}

// Records the streaks handed to the detector.
struct RecordingEvents final : HealthEvents {
  std::vector<EjectReason> reached;
  void streak_reached(std::shared_ptr<ClusterHealth>, std::shared_ptr<HostHealth>,
                      EjectReason reason) override {
    reached.push_back(reason);
  }
};

config::ClusterConfig cluster_config(std::vector<uint16_t> ports) {
  config::ClusterConfig c;
  c.name = "app";
  for (uint16_t port : ports) c.hosts.push_back(config::HostPort{"127.0.0.1", port});
  return c;
}

TEST(ClusterHealth, NewHostsStartOutWhileAnActiveCheckHasNotPassed) {
  auto config = cluster_config({1, 2});
  config.health_check = config::HealthCheckConfig{};
  ClusterHealth cluster("app", nullptr);
  cluster.configure(config);
  EXPECT_FALSE(cluster.host("127.0.0.1:1")->in_rotation());
  config.health_check->initial_healthy = true;
  cluster.configure(config);
  EXPECT_TRUE(cluster.host("127.0.0.1:3")->in_rotation());
}

TEST(ClusterHealth, PanicWhileEveryHostIsOut) {
  ClusterHealth cluster("app", nullptr);
  auto config = cluster_config({1, 2});
  config.outlier_detection = config::OutlierDetectionConfig{};
  cluster.configure(config);
  auto a = cluster.host("127.0.0.1:1");
  auto b = cluster.host("127.0.0.1:2");
  EXPECT_FALSE(cluster.recompute_panic());
  a->set_out(OutReason::ejected, true);
  EXPECT_FALSE(cluster.recompute_panic());
  EXPECT_FALSE(cluster.panic());
  b->set_out(OutReason::failed_check, true);
  EXPECT_TRUE(cluster.recompute_panic());
  EXPECT_TRUE(cluster.panic());
  a->set_out(OutReason::ejected, false);
  EXPECT_TRUE(cluster.recompute_panic());
  EXPECT_FALSE(cluster.panic());
}

TEST(ClusterHealth, RemovingTheCheckBringsHostsBack) {
  auto config = cluster_config({1});
  config.health_check = config::HealthCheckConfig{};
  ClusterHealth cluster("app", nullptr);
  cluster.configure(config);
  auto host = cluster.host("127.0.0.1:1");
  cluster.recompute_panic();
  EXPECT_TRUE(cluster.panic());
  config.health_check.reset();
  cluster.configure(config);
  EXPECT_TRUE(host->in_rotation());
  EXPECT_FALSE(cluster.panic());
}

TEST(ClusterHealth, ReportHandsAStreakAtItsThresholdToTheDetector) {
  RecordingEvents events;
  auto cluster = std::make_shared<ClusterHealth>("app", &events);
  auto config = cluster_config({1});
  config.outlier_detection = config::OutlierDetectionConfig{};
  config.outlier_detection->consecutive_5xx = 2;
  cluster->configure(config);
  auto host = cluster->host("127.0.0.1:1");
  cluster->report(host, AttemptOutcome::response_5xx);
  EXPECT_TRUE(events.reached.empty());
  cluster->report(host, AttemptOutcome::response_5xx);
  ASSERT_EQ(events.reached.size(), 1u);
  EXPECT_EQ(events.reached[0], EjectReason::consecutive_5xx);
}

TEST(ClusterHealth, WithoutOutlierDetectionNothingIsReported) {
  RecordingEvents events;
  auto cluster = std::make_shared<ClusterHealth>("app", &events);
  cluster->configure(cluster_config({1}));
  auto host = cluster->host("127.0.0.1:1");
  for (int i = 0; i < 20; ++i) cluster->report(host, AttemptOutcome::gateway_failure);
  EXPECT_TRUE(events.reached.empty());
}

TEST(HealthRegistry, ApplyKeepsTheStateOfHostsAReloadKeeps) {
  HealthRegistry registry(nullptr);
  config::Config config;
  config.clusters.push_back(cluster_config({1, 2}));
  config.clusters[0].outlier_detection = config::OutlierDetectionConfig{};
  registry.apply(config);
  auto kept = registry.cluster("app")->host("127.0.0.1:1");
  kept->set_out(OutReason::ejected, true);
  config.clusters[0].hosts.pop_back();
  registry.apply(config);
  EXPECT_EQ(registry.cluster("app")->hosts().size(), 1u);
  EXPECT_EQ(registry.cluster("app")->host("127.0.0.1:1"), kept);
  EXPECT_FALSE(kept->in_rotation());
  config.clusters.clear();
  registry.apply(config);
  EXPECT_TRUE(registry.clusters().empty());
}

}  // namespace
}  // namespace needle::upstream
