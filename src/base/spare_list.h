#pragma once
// The free list of a per-worker pool (I/O buffers, response parsers): objects handed back for
// reuse, up to a bound, and given up once a whole period went by without their being needed.
// Single-threaded (one per worker); no locks.
#include <cstddef>
#include <optional>
#include <vector>

namespace needle {

template <typename T>
class SpareList {
 public:
  explicit SpareList(size_t max_spare) : max_spare_(max_spare) {}

  // The most recently handed back object (the warmest), or nullopt when there is none.
  std::optional<T> take() {
    if (spare_.empty()) return std::nullopt;
    T item = std::move(spare_.back());
    spare_.pop_back();
    if (spare_.size() < low_water_) low_water_ = spare_.size();
    return item;
  }
  // Keeps `item` for reuse, or drops it when max_spare are kept already.
  void put(T item) {
    if (spare_.size() < max_spare_) spare_.push_back(std::move(item));
  }
  // Frees the objects that stayed spare since the last call (the list never dropped below that
  // many): called periodically, it gives a burst's objects back once the burst is over and
  // leaves a steady load's working set alone. Returns how many.
  size_t release_unused() {
    // The front is the coldest (take and put work at the back).
    const size_t unused = low_water_;
    spare_.erase(spare_.begin(), spare_.begin() + static_cast<std::ptrdiff_t>(unused));
    low_water_ = spare_.size();
    return unused;
  }
  size_t size() const { return spare_.size(); }

 private:
  size_t max_spare_;
  std::vector<T> spare_;
  size_t low_water_ = 0;  // fewest spare objects since the last release_unused()
};

}  // namespace needle
