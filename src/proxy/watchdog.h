#pragma once
// A deadline for whatever phase a session is in (reading a head, waiting for a response, ...).
// Moving the deadline is a field write, not a timer re-arm: the single pending timer wait wakes
// at the old expiry, sees the deadline moved later and sleeps again. This keeps per-request timer
// cost at zero syscalls in the common case (the deadline only moves forward between phases).
// On expiry it runs the on_expire action once (typically socket.cancel()) and remembers which
// phase expired, so the cancelled operation can be told apart from a peer error.
#include <functional>
#include <memory>

#include "base/clock.h"
#include "net/io_types.h"

namespace needle::proxy {

class Watchdog {
 public:
  Watchdog(net::Executor executor, std::function<void()> on_expire);
  ~Watchdog();
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

  // Arms (or re-arms) for `timeout` from now; `phase` is remembered for expired_phase().
  void arm(Millis timeout, int phase);
  void disarm();
  // The armed deadline; TimePoint::max() when disarmed.
  TimePoint deadline() const { return deadline_; }
  bool expired() const { return expired_; }
  int expired_phase() const { return expired_phase_; }
  void clear_expired() { expired_ = false; }

 private:
  void wait();
  void on_timer(std::error_code ec);

  net::Timer timer_;
  std::function<void()> on_expire_;
  TimePoint deadline_ = TimePoint::max();
  TimePoint timer_at_ = TimePoint::max();  // expiry of the pending wait, max() if none pending
  int phase_ = 0;
  int expired_phase_ = 0;
  bool expired_ = false;
  // Shared with the pending timer handler: tells it the Watchdog is gone.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace needle::proxy
