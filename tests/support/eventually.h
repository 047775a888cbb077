#pragma once
// Bounded polling for tests that wait on another process: `done` is checked every 10 ms until it
// holds or `timeout` passes.
#include <chrono>
#include <thread>

namespace needle::test {

template <typename Predicate>
bool eventually(std::chrono::milliseconds timeout, Predicate done) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (done()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

}  // namespace needle::test
