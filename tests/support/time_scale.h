#pragma once
// Time budgets of tests on slow builds. NEEDLE_TEST_TIME_SCALE (a number >= 1; 1 when unset or
// invalid) multiplies the budgets tests pass through scaled(): how long to wait for something
// that should happen, and the upper bound of "this took at most X". scripts/test.sh sets it for
// the sanitizer passes, whose binaries run several times slower than a release build.
// Never scaled: lower bounds ("not before X": a slow build only makes them easier), the timeline
// of a scenario (sleeps, scripted delays), and needle's own configured timeouts.
#include <chrono>
#include <cstdlib>

namespace needle::test {

inline double time_scale() {
  static const double scale = [] {
    const char* text = std::getenv("NEEDLE_TEST_TIME_SCALE");
    if (text == nullptr) return 1.0;
    char* end = nullptr;
    const double v = std::strtod(text, &end);
    return end != text && v >= 1.0 && v <= 100.0 ? v : 1.0;
  }();
  return scale;
}

// `budget` times the scale.
template <typename Rep, typename Period>
std::chrono::milliseconds scaled(std::chrono::duration<Rep, Period> budget) {
  return std::chrono::milliseconds(static_cast<long long>(
      std::chrono::duration<double, std::milli>(budget).count() * time_scale() + 0.5));
}

// For bounds written as plain millisecond counts: EXPECT_LT(took_ms, scaled_ms(1500)).
inline long long scaled_ms(long long budget_ms) {
  return static_cast<long long>(static_cast<double>(budget_ms) * time_scale() + 0.5);
}

}  // namespace needle::test
