#include "base/buffer_pool.h"

#include <gtest/gtest.h>

#include <vector>

namespace needle {
namespace {

std::vector<PooledBuffer> take(BufferPool& pool, size_t n) {
  std::vector<PooledBuffer> taken;
  for (size_t i = 0; i < n; ++i) taken.push_back(pool.acquire());
  return taken;
}

TEST(BufferPool, ReleaseUnusedFreesOnlyWhatAWholePeriodDidNotNeed) {
  BufferPool pool(4096, 64);
  take(pool, 8);  // a burst: 8 buffers come back to the free list
  EXPECT_EQ(pool.free_count(), 8u);
  EXPECT_EQ(pool.release_unused(), 0u);  // the burst's own period needed them all
  {
    auto steady = take(pool, 3);  // the next period never needs more than 3
  }
  EXPECT_EQ(pool.release_unused(), 5u);
  EXPECT_EQ(pool.free_count(), 3u);
  EXPECT_EQ(pool.release_unused(), 3u);  // a quiet period: the rest goes too
  EXPECT_EQ(pool.free_count(), 0u);
  auto again = pool.acquire();  // an empty pool still lends
  EXPECT_TRUE(again);
}

}  // namespace
}  // namespace needle
