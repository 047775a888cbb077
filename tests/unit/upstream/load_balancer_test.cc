#include "upstream/load_balancer.h"

#include <vector>

#include <gtest/gtest.h>

namespace needle::upstream {
namespace {

std::vector<HostCandidate> hosts(size_t n) { return std::vector<HostCandidate>(n); }

TEST(RoundRobinBalancer, CyclesThroughUsableHosts) {
  RoundRobinBalancer lb;
  auto h = hosts(3);
  std::vector<size_t> picks;
  for (int i = 0; i < 6; ++i) picks.push_back(*lb.pick(h));
  EXPECT_EQ(picks, (std::vector<size_t>{0, 1, 2, 0, 1, 2}));
}

TEST(RoundRobinBalancer, SkipsUnusableHosts) {
  RoundRobinBalancer lb;
  auto h = hosts(4);
  h[1].usable = false;
  h[2].usable = false;
  std::vector<size_t> picks;
  for (int i = 0; i < 4; ++i) picks.push_back(*lb.pick(h));
  EXPECT_EQ(picks, (std::vector<size_t>{0, 3, 0, 3}));
}

TEST(RoundRobinBalancer, NulloptWhenNoneUsable) {
  RoundRobinBalancer lb;
  auto h = hosts(2);
  h[0].usable = h[1].usable = false;
  EXPECT_FALSE(lb.pick(h));
  EXPECT_FALSE(lb.pick({}));
}

TEST(RoundRobinBalancer, SurvivesTheHostListShrinking) {
  RoundRobinBalancer lb;
  auto five = hosts(5);
  for (int i = 0; i < 4; ++i) lb.pick(five);
  auto two = hosts(2);
  auto pick = lb.pick(two);
  ASSERT_TRUE(pick);
  EXPECT_LT(*pick, 2u);
}

TEST(LeastRequestBalancer, NulloptWhenNoneUsable) {
  LeastRequestBalancer lb(1);
  auto h = hosts(3);
  for (auto& c : h) c.usable = false;
  EXPECT_FALSE(lb.pick(h));
  EXPECT_FALSE(lb.pick({}));
}

TEST(LeastRequestBalancer, NeverPicksAnUnusableHost) {
  LeastRequestBalancer lb(7);
  auto h = hosts(5);
  h[0].usable = h[2].usable = h[4].usable = false;
  h[1].active_requests = 100;  // even heavily loaded, usable beats unusable
  for (int i = 0; i < 1000; ++i) {
    size_t pick = *lb.pick(h);
    EXPECT_TRUE(pick == 1 || pick == 3);
  }
}

TEST(LeastRequestBalancer, SingleUsableHostIsAlwaysPicked) {
  LeastRequestBalancer lb(3);
  auto h = hosts(3);
  h[0].usable = h[2].usable = false;
  for (int i = 0; i < 10; ++i) EXPECT_EQ(lb.pick(h), 1u);
}

TEST(LeastRequestBalancer, DistributionIsRoughlyEvenUnderEqualLoad) {
  LeastRequestBalancer lb(42);
  auto h = hosts(4);
  std::vector<int> count(4);
  const int n = 40000;
  for (int i = 0; i < n; ++i) ++count[*lb.pick(h)];
  for (int c : count) {
    EXPECT_GT(c, n / 4 * 0.9);
    EXPECT_LT(c, n / 4 * 1.1);
  }
}

TEST(LeastRequestBalancer, PrefersTheLessLoaded) {
  LeastRequestBalancer lb(42);
  auto h = hosts(2);
  h[0].active_requests = 10;
  h[1].active_requests = 1;
  std::vector<int> count(2);
  for (int i = 0; i < 10000; ++i) ++count[*lb.pick(h)];
  // The loaded host wins only when both draws land on it: ~1/4 of the time.
  EXPECT_GT(count[1], 7000);
  EXPECT_LT(count[0], 3000);
}

TEST(LeastRequestBalancer, SameSeedSameChoices) {
  LeastRequestBalancer a(5), b(5);
  auto h = hosts(8);
  for (size_t i = 0; i < h.size(); ++i) h[i].active_requests = static_cast<uint32_t>(i % 3);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(a.pick(h), b.pick(h));
}

TEST(LoadBalancerFactory, MakesThePolicyAsked) {
  auto rr = make_load_balancer(config::LbPolicy::round_robin);
  auto lr = make_load_balancer(config::LbPolicy::least_request);
  EXPECT_NE(dynamic_cast<RoundRobinBalancer*>(rr.get()), nullptr);
  EXPECT_NE(dynamic_cast<LeastRequestBalancer*>(lr.get()), nullptr);
}

}  // namespace
}  // namespace needle::upstream
