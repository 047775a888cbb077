#pragma once
// Stepping an io_context one handler at a time from a test, for the pool tests on real sockets
// (host_pool_test.cc, checkout_probe_test.cc): a step runs at most one handler, so a test can
// act between two completions of the same reactor batch.
#include <chrono>
#include <functional>

#include <asio/io_context.hpp>

namespace needle::upstream::io_stepping {

// Runs `io` until `done` or `timeout`; true if done.
inline bool run_until(asio::io_context& io, const std::function<bool()>& done,
                      std::chrono::steady_clock::duration timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    io.run_one_for(std::chrono::milliseconds(1));
  }
  return true;
}

inline void run_for(asio::io_context& io, std::chrono::steady_clock::duration d) {
  const auto deadline = std::chrono::steady_clock::now() + d;
  while (std::chrono::steady_clock::now() < deadline) {
    io.run_one_for(std::chrono::milliseconds(1));
  }
}

}  // namespace needle::upstream::io_stepping
