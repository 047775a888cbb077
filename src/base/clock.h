#pragma once
// Injectable monotonic time. Pool expiry, timeouts and idle-timeout learning read time only
// through a Clock so tests can drive it (ManualClock) without sleeping.
#include <chrono>

namespace needle {

using Duration = std::chrono::steady_clock::duration;
using TimePoint = std::chrono::steady_clock::time_point;
using Millis = std::chrono::milliseconds;

class Clock {
 public:
  virtual ~Clock() = default;
  virtual TimePoint now() const = 0;
};

class SteadyClock final : public Clock {
 public:
  TimePoint now() const override { return std::chrono::steady_clock::now(); }
  // Process-wide instance; steady_clock has no state, so sharing it between workers is free.
  static SteadyClock& instance();
};

// Test clock: time moves only when advance() is called.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(TimePoint start = TimePoint{} + std::chrono::hours(1)) : now_(start) {}
  TimePoint now() const override { return now_; }
  void advance(Duration d) { now_ += d; }

 private:
  TimePoint now_;
};

inline double to_seconds(Duration d) { return std::chrono::duration<double>(d).count(); }
inline long long to_millis(Duration d) {
  return std::chrono::duration_cast<Millis>(d).count();
}

}  // namespace needle
