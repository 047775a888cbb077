#pragma once
// Fixed-size blocks carved from 64 KiB chunks, with an allocator adapter, for small objects that
// live long and come in thousands (the keep-alive park's records and their readiness waits).
// Kept together in their own chunks they fill whole pages, instead of pinning the pages of the
// short-lived objects the general heap placed them between. Chunks are kept until the pool is
// destroyed, so its memory is its peak use (at most a few MiB per worker: one block pair per
// parked client). Single-threaded, like everything a worker owns.
#include <cstddef>
#include <memory>
#include <new>
#include <vector>

namespace needle {

class BlockPool {
 public:
  static constexpr size_t kBlockSize = 96;  // a park list node, or its wait operation
  static constexpr size_t kChunkSize = 64 * 1024;

  BlockPool() = default;
  BlockPool(const BlockPool&) = delete;
  BlockPool& operator=(const BlockPool&) = delete;

  void* allocate() {
    if (free_ == nullptr) grow();
    FreeBlock* block = free_;
    free_ = block->next;
    return block;
  }
  void deallocate(void* p) { free_ = new (p) FreeBlock{free_}; }
  size_t chunks() const { return chunks_.size(); }

 private:
  struct FreeBlock {
    FreeBlock* next;
  };
  struct alignas(std::max_align_t) Block {
    unsigned char bytes[kBlockSize];
  };

  void grow() {
    auto chunk = std::make_unique<Block[]>(kChunkSize / kBlockSize);
    for (size_t i = kChunkSize / kBlockSize; i-- > 0;) deallocate(&chunk[i]);
    chunks_.push_back(std::move(chunk));
  }

  FreeBlock* free_ = nullptr;
  std::vector<std::unique_ptr<Block[]>> chunks_;
};

// Allocates one T at a time from a BlockPool when it fits a block, from the heap otherwise (so a
// container or Asio may rebind it to any type). It shares ownership of the pool: an operation
// that an io_context destroys after the pool's owner is gone still has its block's chunk.
template <typename T>
class BlockAllocator {
 public:
  using value_type = T;

  explicit BlockAllocator(std::shared_ptr<BlockPool> pool) : pool_(std::move(pool)) {}
  template <typename U>
  BlockAllocator(const BlockAllocator<U>& other) : pool_(other.pool()) {}

  T* allocate(size_t n) {
    if (fits(n)) return static_cast<T*>(pool_->allocate());
    return std::allocator<T>().allocate(n);
  }
  void deallocate(T* p, size_t n) {
    if (fits(n)) {
      pool_->deallocate(p);
    } else {
      std::allocator<T>().deallocate(p, n);
    }
  }
  const std::shared_ptr<BlockPool>& pool() const { return pool_; }
  template <typename U>
  bool operator==(const BlockAllocator<U>& other) const {
    return pool_ == other.pool();
  }

 private:
  static bool fits(size_t n) {
    return n == 1 && sizeof(T) <= BlockPool::kBlockSize && alignof(T) <= alignof(std::max_align_t);
  }
  std::shared_ptr<BlockPool> pool_;
};

}  // namespace needle
