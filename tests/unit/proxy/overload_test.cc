// Overload protection's pure parts: the token bucket, a route's rate limiter (exact counts,
// per key, bounded memory), the circuit breakers' per-worker counters and slow start's share.
#include <chrono>
#include <string>

#include <gtest/gtest.h>

#include "proxy/circuit_breakers.h"
#include "proxy/rate_limiter.h"
#include "proxy/slow_start.h"
#include "proxy/token_bucket.h"

namespace needle::proxy {
namespace {

using namespace std::chrono_literals;

TEST(TokenBucket, StartsFullThenRefusesUntilRefilled) {
  ManualClock clock;
  auto bucket = TokenBucket::full(3, clock.now());
  for (int i = 0; i < 3; ++i) EXPECT_FALSE(bucket.take(2.0, 3, clock.now())) << i;
  const auto wait = bucket.take(2.0, 3, clock.now());
  ASSERT_TRUE(wait);
  EXPECT_EQ(std::chrono::duration_cast<Millis>(*wait), 500ms);  // 1 token at 2/s
  clock.advance(499ms);
  EXPECT_TRUE(bucket.take(2.0, 3, clock.now()));
  clock.advance(1ms);
  EXPECT_FALSE(bucket.take(2.0, 3, clock.now()));
  EXPECT_TRUE(bucket.take(2.0, 3, clock.now()));
}

TEST(TokenBucket, NeverHoldsMoreThanTheBurst) {
  ManualClock clock;
  auto bucket = TokenBucket::full(2, clock.now());
  clock.advance(1h);
  int taken = 0;
  while (!bucket.take(10.0, 2, clock.now())) ++taken;
  EXPECT_EQ(taken, 2);
  EXPECT_FALSE(bucket.full_at(10.0, 2, clock.now()));
  EXPECT_TRUE(bucket.full_at(10.0, 2, clock.now() + 200ms));
}

TEST(TokenBucket, RetryAfterIsWholeSecondsRoundedUp) {
  EXPECT_EQ(retry_after_seconds(1ms), 1);
  EXPECT_EQ(retry_after_seconds(1000ms), 1);
  EXPECT_EQ(retry_after_seconds(1001ms), 2);
  EXPECT_EQ(retry_after_seconds(0ms), 1);
}

config::RateLimitConfig limit(double rate, uint32_t burst, size_t max_keys = 100000) {
  config::RateLimitConfig c;
  c.rate = rate;
  c.burst = burst;
  c.max_keys = max_keys;
  return c;
}

TEST(RateLimiter, ExactBurstPerKey) {
  ManualClock clock;
  RateLimiter limiter(limit(0.5, 5));
  int allowed_a = 0;
  int allowed_b = 0;
  for (int i = 0; i < 12; ++i) {
    allowed_a += limiter.take("a", clock.now()).allowed;
    allowed_b += limiter.take("b", clock.now()).allowed;
  }
  EXPECT_EQ(allowed_a, 5);
  EXPECT_EQ(allowed_b, 5);
  const auto refused = limiter.take("a", clock.now());
  EXPECT_FALSE(refused.allowed);
  EXPECT_EQ(std::chrono::duration_cast<Millis>(refused.retry_after), 2000ms);
  clock.advance(2s);
  EXPECT_TRUE(limiter.take("a", clock.now()).allowed);
  EXPECT_FALSE(limiter.take("a", clock.now()).allowed);
}

TEST(RateLimiter, MemoryIsBoundedByMaxKeys) {
  ManualClock clock;
  RateLimiter limiter(limit(1, 1, 32));  // 2 per shard
  for (int i = 0; i < 1000; ++i) limiter.take("key" + std::to_string(i), clock.now());
  EXPECT_LE(limiter.key_count(), 32u);
}

TEST(CircuitBreakers, PerWorkerLimitIsTheCeilingOfTheShare) {
  EXPECT_EQ(per_worker_limit(0, 4), 0u);
  EXPECT_EQ(per_worker_limit(10, 1), 10u);
  EXPECT_EQ(per_worker_limit(10, 4), 3u);
  EXPECT_EQ(per_worker_limit(2, 4), 1u);
  EXPECT_EQ(per_worker_limit(8, 0), 8u);
}

TEST(CircuitBreakers, MaxRequestsRefusesAtTheBoundAndSlotsGiveBack) {
  config::CircuitBreakerConfig config;
  config.max_requests = 2;
  CircuitBreakers breakers(config, 1, nullptr);
  CircuitBreakers::Slot a;
  CircuitBreakers::Slot b;
  CircuitBreakers::Slot c;
  EXPECT_FALSE(breakers.enter_request(a));
  EXPECT_FALSE(breakers.enter_request(b));
  EXPECT_EQ(breakers.enter_request(c), Breaker::max_requests);
  EXPECT_EQ(breakers.counts().requests, 2u);
  a = CircuitBreakers::Slot();
  EXPECT_EQ(breakers.counts().requests, 1u);
  EXPECT_FALSE(breakers.enter_request(c));
  EXPECT_EQ(breakers.counts().requests, 2u);
}

TEST(CircuitBreakers, MaxConnectionsBeforeMaxPending) {
  config::CircuitBreakerConfig config;
  config.max_connections = 3;
  config.max_pending = 1;
  CircuitBreakers breakers(config, 1, nullptr);
  CircuitBreakers::Slot first;
  CircuitBreakers::Slot second;
  EXPECT_EQ(breakers.enter_pending(3, first), Breaker::max_connections);
  EXPECT_FALSE(breakers.enter_pending(2, first));
  EXPECT_EQ(breakers.enter_pending(0, second), Breaker::max_pending);
  EXPECT_EQ(breakers.counts().pending, 1u);
}

TEST(CircuitBreakers, AReloadKeepsCountingTheRequestsInFlight) {
  config::CircuitBreakerConfig config;
  config.max_requests = 1;
  auto old_generation = std::make_unique<CircuitBreakers>(config, 1, nullptr);
  CircuitBreakers::Slot in_flight;
  ASSERT_FALSE(old_generation->enter_request(in_flight));
  CircuitBreakers fresh(config, 1, old_generation.get());
  old_generation.reset();
  CircuitBreakers::Slot next;
  EXPECT_EQ(fresh.enter_request(next), Breaker::max_requests);
  in_flight = CircuitBreakers::Slot();  // the old generation's request ends
  EXPECT_FALSE(fresh.enter_request(next));
}

TEST(CircuitBreakers, LimitsAreDividedAmongWorkers) {
  config::CircuitBreakerConfig config;
  config.max_requests = 5;
  CircuitBreakers breakers(config, 2, nullptr);
  EXPECT_EQ(breakers.max_requests(), 3u);
  EXPECT_EQ(breakers.max_pending(), 0u);
}

TEST(SlowStart, ShareRampsLinearlyFromTheFloor) {
  EXPECT_EQ(slow_start_share(0ms, 0ms), 1.0);
  EXPECT_EQ(slow_start_share(10s, 0ms), kSlowStartFloor);
  EXPECT_DOUBLE_EQ(slow_start_share(10s, 5s), 0.5);
  EXPECT_EQ(slow_start_share(10s, 500ms), kSlowStartFloor);
  EXPECT_EQ(slow_start_share(10s, 10s), 1.0);
  EXPECT_EQ(slow_start_share(10s, 1h), 1.0);
}

}  // namespace
}  // namespace needle::proxy
