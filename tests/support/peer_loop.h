#pragma once
// What the in-process peers (ScriptedUpstream, DelayLine) are built on: a non-blocking listener
// on 127.0.0.1 (port 0), an eventfd that wakes the peer's thread from any other thread, and one
// ppoll over both and the peer's own descriptors until the nearest deadline, so timers fire
// within the kernel's timer slop. The peer keeps its thread and its connection state; this holds
// only the two descriptors. Everything but wake() is for the peer's own thread.
#include <poll.h>

#include <chrono>
#include <cstddef>
#include <optional>
#include <string_view>
#include <vector>

namespace needle::test {

class PeerLoop {
 public:
  using Clock = std::chrono::steady_clock;
  // wait() puts the wake fd and the listener in front; the peer's own pollfds start here.
  static constexpr size_t kFirstPeerFd = 2;

  // Throws std::system_error naming `what` if the listener or the eventfd cannot be set up.
  explicit PeerLoop(std::string_view what);
  ~PeerLoop();  // closes both; the peer's thread must be done with them
  PeerLoop(const PeerLoop&) = delete;
  PeerLoop& operator=(const PeerLoop&) = delete;

  int port() const { return port_; }

  // Any thread: the wait() in progress (or the next one) returns at once.
  void wake();
  // ppoll over `fds` (its first kFirstPeerFd entries are filled here) until something is ready
  // or `deadline` passed (no deadline: until something is ready). False on a poll error.
  bool wait(std::vector<pollfd>& fds, std::optional<Clock::time_point> deadline);
  // After wait(): whether connections are waiting to be accepted.
  static bool listener_ready(const std::vector<pollfd>& fds) { return fds[1].revents & POLLIN; }
  // The next waiting connection (non-blocking, close-on-exec, TCP_NODELAY), -1 when none is left.
  int accept();

 private:
  int listen_fd_ = -1;
  int wake_fd_ = -1;
  int port_ = 0;
};

}  // namespace needle::test
