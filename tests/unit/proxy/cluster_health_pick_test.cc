// Host selection with the process-wide upstream health (issue 20): a host out of rotation is
// not picked, panic mode (every host out) picks them all, a worker's own connect-failure
// ejection still holds in panic, outcomes reach the host's streaks, and outlier detection
// turns the per-worker connect-failure ejection off.
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>

#include "config/config.h"
#include "proxy/cluster_runtime.h"
#include "upstream/host_health.h"

namespace needle::proxy {
namespace {

struct RecordingEvents final : upstream::HealthEvents {
  std::vector<upstream::EjectReason> reached;
  void streak_reached(std::shared_ptr<upstream::ClusterHealth>,
                      std::shared_ptr<upstream::HostHealth>,
                      upstream::EjectReason reason) override {
    reached.push_back(reason);
  }
};

class ClusterHealthPick : public ::testing::Test {
 protected:
  ClusterHealthPick() : registry(&events) {
    config = std::make_shared<config::Config>();
    config::ClusterConfig c;
    c.name = "app";
    // Nothing listens on these: picks never connect here.
    c.hosts = {config::HostPort{"127.0.0.1", 1}, config::HostPort{"127.0.0.1", 2}};
    config->clusters.push_back(c);
    config->routes.push_back(config::RouteConfig{std::nullopt, "/", "app"});
  }

  std::unique_ptr<WorkerRuntime> build() {
    registry.apply(*config);
    return std::make_unique<WorkerRuntime>(io.get_executor(), config, SteadyClock::instance(),
                                           nullptr, &registry);
  }
  upstream::HostHealth& host(int port) {
    return *registry.cluster("app")->host("127.0.0.1:" + std::to_string(port));
  }

  asio::io_context io{1};
  RecordingEvents events;
  upstream::HealthRegistry registry;
  std::shared_ptr<config::Config> config;
};

TEST_F(ClusterHealthPick, AHostOutOfRotationIsNotPicked) {
  auto runtime = build();
  ClusterRuntime& cluster = *runtime->clusters[0];
  host(1).set_out(upstream::OutReason::ejected, true);
  registry.cluster("app")->recompute_panic();
  for (int i = 0; i < 4; ++i) EXPECT_EQ(cluster.pick_host({}), std::optional<size_t>(1));
  EXPECT_FALSE(cluster.has_other_host({1}));
  EXPECT_FALSE(cluster.in_panic());
  host(1).set_out(upstream::OutReason::ejected, false);
  EXPECT_TRUE(cluster.has_other_host({1}));
}

TEST_F(ClusterHealthPick, PanicModePicksEveryHost) {
  auto runtime = build();
  ClusterRuntime& cluster = *runtime->clusters[0];
  host(1).set_out(upstream::OutReason::failed_check, true);
  host(2).set_out(upstream::OutReason::ejected, true);
  registry.cluster("app")->recompute_panic();
  ASSERT_TRUE(cluster.in_panic());
  std::vector<size_t> picked;
  for (int i = 0; i < 4; ++i) picked.push_back(*cluster.pick_host({}));
  EXPECT_EQ(picked, (std::vector<size_t>{0, 1, 0, 1}));
  EXPECT_EQ(registry.cluster("app")->panic_picks(), 4u);
  EXPECT_EQ(cluster.pick_host({0}), std::optional<size_t>(1));
  EXPECT_FALSE(cluster.pick_host({0, 1}));  // every host tried: nothing left
}

TEST_F(ClusterHealthPick, NewHostsWaitForTheirFirstCheck) {
  config->clusters[0].health_check = config::HealthCheckConfig{};
  auto runtime = build();
  ClusterRuntime& cluster = *runtime->clusters[0];
  EXPECT_FALSE(host(1).in_rotation());
  host(2).set_out(upstream::OutReason::failed_check, false);  // its first check passed
  registry.cluster("app")->recompute_panic();
  for (int i = 0; i < 3; ++i) EXPECT_EQ(cluster.pick_host({}), std::optional<size_t>(1));
}

TEST_F(ClusterHealthPick, AttemptOutcomesFeedTheHostsStreaks) {
  config->clusters[0].outlier_detection = config::OutlierDetectionConfig{};
  config->clusters[0].outlier_detection->consecutive_gateway_failure = 2;
  auto runtime = build();
  ClusterRuntime& cluster = *runtime->clusters[0];
  cluster.report_attempt(0, Cause::connect_refused, 0);
  cluster.report_attempt(1, Cause::connect_refused, 0);                  // another host's streak
  cluster.report_attempt(0, Cause::reset_before_response_on_reused, 0);  // not the host's fault
  EXPECT_TRUE(events.reached.empty());
  cluster.report_attempt(0, Cause::connect_timeout, 0);
  ASSERT_EQ(events.reached.size(), 1u);
  EXPECT_EQ(events.reached[0], upstream::EjectReason::consecutive_gateway_failure);
}

TEST_F(ClusterHealthPick, OutlierDetectionReplacesThePerWorkerConnectEjection) {
  config->clusters[0].eject_after_connect_failures = 1;
  config->clusters[0].outlier_detection = config::OutlierDetectionConfig{};
  auto runtime = build();
  upstream::HostPool& pool = runtime->clusters[0]->host(0);
  std::optional<upstream::ConnectResult> result;
  asio::co_spawn(
      io, [&]() -> net::Task<void> { result = co_await pool.connect(); }, asio::detached);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  while (!result && std::chrono::steady_clock::now() < deadline) {
    io.run_one_for(std::chrono::milliseconds(1));
  }
  ASSERT_TRUE(result.has_value());
  EXPECT_FALSE(result->lease);
  EXPECT_FALSE(pool.ejected()) << "with outlier detection the worker does not eject on its own";
}

}  // namespace
}  // namespace needle::proxy
