#include "proxy/rate_limiter.h"

#include <algorithm>
#include <functional>

namespace needle::proxy {

RateLimiter::RateLimiter(const config::RateLimitConfig& config)
    : config_(config),
      max_keys_per_shard_(std::max<size_t>(1, (config.max_keys + kShards - 1) / kShards)) {}

RateLimiter::Verdict RateLimiter::take(std::string_view key, TimePoint now) {
  Shard& shard = shards_[std::hash<std::string_view>{}(key) % kShards];
  std::lock_guard lock(shard.mutex);
  auto it = shard.buckets.find(std::string(key));
  if (it == shard.buckets.end()) {
    make_room(shard, now);
    it = shard.buckets.emplace(std::string(key), TokenBucket::full(config_.burst, now)).first;
  }
  const auto wait = it->second.take(config_.rate, config_.burst, now);
  if (!wait) return Verdict{};
  return Verdict{false, *wait};
}

void RateLimiter::make_room(Shard& shard, TimePoint now) {
  if (shard.buckets.size() < max_keys_per_shard_) return;
  std::erase_if(shard.buckets, [&](const auto& entry) {
    return entry.second.full_at(config_.rate, config_.burst, now);
  });
  if (shard.buckets.size() < max_keys_per_shard_) return;
  auto oldest = std::min_element(
      shard.buckets.begin(), shard.buckets.end(),
      [](const auto& a, const auto& b) { return a.second.updated < b.second.updated; });
  shard.buckets.erase(oldest);
}

size_t RateLimiter::key_count() {
  size_t count = 0;
  for (auto& shard : shards_) {
    std::lock_guard lock(shard.mutex);
    count += shard.buckets.size();
  }
  return count;
}

}  // namespace needle::proxy
