// Slow start through ClusterRuntime::pick_host: a host a new generation adds gets a share of
// the balancer's picks that ramps from 10 % to all of them over the window; the hosts of the
// first generation are not slowed.
#include <chrono>
#include <memory>

#include <gtest/gtest.h>
#include <asio/io_context.hpp>

#include "proxy/cluster_runtime.h"

namespace needle::proxy {
namespace {

using namespace std::chrono_literals;

std::shared_ptr<const config::Config> config_with_hosts(std::vector<uint16_t> ports,
                                                        Millis slow_start) {
  auto config = std::make_shared<config::Config>();
  config::ClusterConfig cluster;
  cluster.name = "app";
  for (uint16_t port : ports) cluster.hosts.push_back(config::HostPort{"127.0.0.1", port});
  cluster.slow_start = slow_start;
  config->clusters.push_back(cluster);
  config->routes.push_back(config::RouteConfig{std::nullopt, "/", "app"});
  return config;
}

// How many of `n` picks went to host index `host`.
int picks_of(ClusterRuntime& cluster, size_t host, int n) {
  int count = 0;
  for (int i = 0; i < n; ++i) count += cluster.pick_host({}) == host;
  return count;
}

TEST(SlowStartPicks, ANewHostRampsUpOverTheWindow) {
  asio::io_context io;
  ManualClock clock;
  auto first =
      std::make_unique<WorkerRuntime>(io.get_executor(), config_with_hosts({1001}, 10s), clock);
  EXPECT_EQ(picks_of(*first->clusters[0], 0, 100), 100);
  // A reload (or a DNS answer) adds host 1002.
  WorkerRuntime second(io.get_executor(), config_with_hosts({1001, 1002}, 10s), clock, first.get());
  ClusterRuntime& cluster = *second.clusters[0];
  ASSERT_EQ(cluster.host_name(1), "127.0.0.1:1002");
  // Round robin would give it half (2000). A pick of it stands with the probability of its
  // share (10 % at the start, 50 % half way); a refused one goes to the other host, after
  // which round robin offers the new host again at once, so with two hosts it gets
  // share / (1 + share) of the picks: about 9 %, then 33 %.
  const int at_start = picks_of(cluster, 1, 4000);
  EXPECT_GT(at_start, 200);
  EXPECT_LT(at_start, 550);
  clock.advance(5s);
  const int half_way = picks_of(cluster, 1, 4000);
  EXPECT_GT(half_way, 1100);
  EXPECT_LT(half_way, 1600);
  clock.advance(5s);  // the window is over: plain round robin
  EXPECT_EQ(picks_of(cluster, 1, 4000), 2000);
  first->clusters[0]->drain();
}

TEST(SlowStartPicks, OffByDefaultAndForTheFirstGeneration) {
  asio::io_context io;
  ManualClock clock;
  WorkerRuntime first(io.get_executor(), config_with_hosts({1001, 1002}, 10s), clock);
  EXPECT_EQ(picks_of(*first.clusters[0], 1, 1000), 500);
  WorkerRuntime off(io.get_executor(), config_with_hosts({1001, 1003}, 0s), clock, &first);
  EXPECT_EQ(picks_of(*off.clusters[0], 1, 1000), 500);
}

}  // namespace
}  // namespace needle::proxy
