#pragma once
// Per-worker free list of fixed-size I/O buffers. A session holds a buffer only while it is
// reading or proxying, never while it idles in keep-alive, so 10k idle clients cost no buffers.
// Single-threaded (one pool per worker); no locks.
#include <cstddef>
#include <memory>

#include "base/spare_list.h"

namespace needle {

class BufferPool;

// A buffer on loan; returns itself to its pool on destruction.
class PooledBuffer {
 public:
  PooledBuffer() = default;
  PooledBuffer(BufferPool* pool, std::unique_ptr<char[]> data, size_t size)
      : pool_(pool), data_(std::move(data)), size_(size) {}
  PooledBuffer(PooledBuffer&& other) noexcept = default;
  PooledBuffer& operator=(PooledBuffer&& other) noexcept;
  ~PooledBuffer();

  explicit operator bool() const { return data_ != nullptr; }
  char* data() const { return data_.get(); }
  size_t size() const { return size_; }
  void reset();

 private:
  BufferPool* pool_ = nullptr;
  std::unique_ptr<char[]> data_;
  size_t size_ = 0;
};

class BufferPool {
 public:
  BufferPool(size_t buffer_size, size_t max_free) : buffer_size_(buffer_size), free_(max_free) {}
  PooledBuffer acquire();
  size_t buffer_size() const { return buffer_size_; }
  size_t free_count() const { return free_.size(); }
  // Frees the buffers no request needed for a whole period (SpareList::release_unused).
  size_t release_unused() { return free_.release_unused(); }

 private:
  friend class PooledBuffer;
  void give_back(std::unique_ptr<char[]> data);
  size_t buffer_size_;
  SpareList<std::unique_ptr<char[]>> free_;
};

inline PooledBuffer& PooledBuffer::operator=(PooledBuffer&& other) noexcept {
  if (this != &other) {
    reset();
    pool_ = other.pool_;
    data_ = std::move(other.data_);
    size_ = other.size_;
  }
  return *this;
}

inline PooledBuffer::~PooledBuffer() { reset(); }

inline void PooledBuffer::reset() {
  if (data_ && pool_) pool_->give_back(std::move(data_));
  data_.reset();
}

inline PooledBuffer BufferPool::acquire() {
  if (auto data = free_.take()) return PooledBuffer(this, std::move(*data), buffer_size_);
  return PooledBuffer(this, std::unique_ptr<char[]>(new char[buffer_size_]), buffer_size_);
}

inline void BufferPool::give_back(std::unique_ptr<char[]> data) {
  free_.put(std::move(data));
}

}  // namespace needle
