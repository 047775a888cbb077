// Weighted hosts (docs/config.md "Weighted hosts"): nginx's smooth weighted round robin and
// Envoy's weighted least request.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "upstream/load_balancer.h"

namespace needle::upstream {
namespace {

std::vector<HostCandidate> weighted(std::initializer_list<uint32_t> weights) {
  std::vector<HostCandidate> hosts;
  for (uint32_t w : weights) hosts.push_back(HostCandidate{.weight = w});
  return hosts;
}

TEST(WeightedRoundRobin, SmoothSequenceAsNginx) {
  // nginx's example (ngx_http_upstream_round_robin.c): weights 5, 1, 1 -> a a b a c a a.
  RoundRobinBalancer rr;
  const auto hosts = weighted({5, 1, 1});
  std::string order;
  for (int i = 0; i < 7; ++i) order += static_cast<char>('a' + *rr.pick(hosts));
  EXPECT_EQ(order, "aabacaa");
}

TEST(WeightedRoundRobin, SharesFollowWeightsAndSkipUnusableHosts) {
  RoundRobinBalancer rr;
  auto hosts = weighted({3, 1, 2});
  std::vector<int> picks(3);
  for (int i = 0; i < 600; ++i) ++picks[*rr.pick(hosts)];
  EXPECT_EQ(picks, (std::vector<int>{300, 100, 200}));
  hosts[0].usable = false;
  picks.assign(3, 0);
  for (int i = 0; i < 300; ++i) ++picks[*rr.pick(hosts)];
  EXPECT_EQ(picks, (std::vector<int>{0, 100, 200}));
  hosts[1].usable = hosts[2].usable = false;
  EXPECT_FALSE(rr.pick(hosts));
}

TEST(WeightedRoundRobin, EqualWeightsKeepPlainRoundRobin) {
  RoundRobinBalancer rr;
  const auto hosts = weighted({4, 4, 4});
  std::string order;
  for (int i = 0; i < 6; ++i) order += static_cast<char>('a' + *rr.pick(hosts));
  EXPECT_EQ(order, "abcabc");
}

TEST(WeightedLeastRequest, SharesFollowWeightsUnderEqualLoad) {
  LeastRequestBalancer lr(42);
  const auto hosts = weighted({3, 1});
  int first = 0;
  constexpr int kPicks = 4000;
  for (int i = 0; i < kPicks; ++i) first += *lr.pick(hosts) == 0 ? 1 : 0;
  EXPECT_NEAR(first, kPicks * 3 / 4, kPicks / 20);
}

TEST(WeightedLeastRequest, LoadLowersAHostsShare) {
  LeastRequestBalancer lr(7);
  auto hosts = weighted({2, 1});
  hosts[0].active_requests = 5;  // 2/6 against 1/1: the light host gets three in four
  int light = 0;
  constexpr int kPicks = 4000;
  for (int i = 0; i < kPicks; ++i) light += *lr.pick(hosts) == 1 ? 1 : 0;
  EXPECT_NEAR(light, kPicks * 3 / 4, kPicks / 20);
  hosts[1].usable = false;
  for (int i = 0; i < 50; ++i) EXPECT_EQ(lr.pick(hosts), 0u);
}

}  // namespace
}  // namespace needle::upstream
