#include "base/block_pool.h"

#include <gtest/gtest.h>

#include <array>
#include <list>
#include <set>

namespace needle {
namespace {

TEST(BlockPool, BlocksAreDistinctReusedAndGrowByWholeChunks) {
  BlockPool pool;
  constexpr size_t kPerChunk = BlockPool::kChunkSize / BlockPool::kBlockSize;
  std::set<void*> taken;
  for (size_t i = 0; i < kPerChunk; ++i) EXPECT_TRUE(taken.insert(pool.allocate()).second);
  EXPECT_EQ(pool.chunks(), 1u);
  void* next = pool.allocate();  // the first chunk is used up
  EXPECT_EQ(pool.chunks(), 2u);
  EXPECT_FALSE(taken.count(next));
  pool.deallocate(next);
  EXPECT_EQ(pool.allocate(), next);  // a freed block is the next one handed out
}

TEST(BlockAllocator, ListNodesComeFromThePoolAndLargeObjectsFromTheHeap) {
  auto pool = std::make_shared<BlockPool>();
  {
    std::list<int, BlockAllocator<int>> list{BlockAllocator<int>(pool)};
    for (int i = 0; i < 100; ++i) list.push_back(i);
    EXPECT_EQ(pool->chunks(), 1u);
  }
  BlockAllocator<std::array<char, 4 * BlockPool::kBlockSize>> big(pool);
  auto* p = big.allocate(1);  // does not fit a block: the heap, and the pool stays as it was
  big.deallocate(p, 1);
  EXPECT_EQ(pool->chunks(), 1u);
}

TEST(BlockAllocator, KeepsThePoolAliveForBlocksGivenBackLate) {
  auto pool = std::make_shared<BlockPool>();
  BlockAllocator<long> late(pool);
  long* p = late.allocate(1);
  pool.reset();  // the owner is gone; an operation destroyed later still gives its block back
  late.deallocate(p, 1);
  EXPECT_EQ(late.pool().use_count(), 1);
}

}  // namespace
}  // namespace needle
