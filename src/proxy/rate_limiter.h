#pragma once
// One route's rate limit (docs/config.md "Rate limiting"): a token bucket per key (client
// address or a header's value), shared by every worker. The table is split in kShards shards,
// each behind its own mutex, held only for one hash lookup and a few arithmetic operations:
// the count is exact across workers (no per-worker split of the rate), and two workers
// contend only when their keys hash to the same shard at the same moment.
// Memory is bounded by max_keys: a shard at its share of max_keys first forgets the buckets
// that are full again (they carry no state), then the one updated longest ago (that key may
// get up to a burst more than its due).
#include <array>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "base/clock.h"
#include "config/config.h"
#include "proxy/token_bucket.h"

namespace needle::proxy {

class RateLimiter {
 public:
  explicit RateLimiter(const config::RateLimitConfig& config);

  struct Verdict {
    bool allowed = true;
    Duration retry_after{0};  // when refused: the wait until the key has a token again
  };
  // Any thread.
  Verdict take(std::string_view key, TimePoint now);
  const config::RateLimitConfig& config() const { return config_; }
  size_t key_count();  // buckets held (all shards)

 private:
  static constexpr size_t kShards = 16;
  struct Shard {
    std::mutex mutex;
    std::unordered_map<std::string, TokenBucket> buckets;  // guarded by mutex
  };
  void make_room(Shard& shard, TimePoint now);  // shard.mutex held

  config::RateLimitConfig config_;
  size_t max_keys_per_shard_;
  std::array<Shard, kShards> shards_;
};

}  // namespace needle::proxy
