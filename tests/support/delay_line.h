#pragma once
// A TCP delay line standing in for a real network path (tc netem is not available): it
// listens on 127.0.0.1 (port 0) and forwards each accepted connection to 127.0.0.1:target.
// Bytes in each direction are delivered `delay` after they were read; a FIN is passed on after
// the same delay, behind the bytes before it; an RST (a reset read or a failed write on one
// side) resets the other side (SO_LINGER {1, 0}) after the delay. A refused connect to the
// target resets the client after the delay. A round trip through it takes at least 2 x delay.
// Memory is bounded: past max_buffered bytes queued in a direction it stops reading that side.
// One thread, on a PeerLoop; accessors are thread-safe.
#include <atomic>
#include <chrono>
#include <cstddef>
#include <thread>

#include "support/peer_loop.h"

namespace needle::test {

class DelayLine {
 public:
  struct Options {
    std::chrono::milliseconds delay{50};  // one way, each direction
    size_t max_buffered = 1 << 20;        // per direction per connection
  };

  // Throws std::runtime_error if the listener cannot be set up.
  DelayLine(int target_port, Options options);
  DelayLine(int target_port, std::chrono::milliseconds delay)
      : DelayLine(target_port, Options{delay}) {}
  ~DelayLine();
  DelayLine(const DelayLine&) = delete;
  DelayLine& operator=(const DelayLine&) = delete;

  int port() const { return loop_.port(); }
  std::chrono::milliseconds delay() const { return options_.delay; }
  size_t connections_accepted() const { return accepted_.load(); }
  size_t resets_passed() const { return resets_.load(); }  // RSTs forwarded, either way

 private:
  struct Pair;
  void run();

  int target_port_;
  Options options_;
  PeerLoop loop_;
  std::atomic<bool> stopping_{false};
  std::atomic<size_t> accepted_{0};
  std::atomic<size_t> resets_{0};
  std::thread thread_;
};

}  // namespace needle::test
