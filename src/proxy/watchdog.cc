#include "proxy/watchdog.h"

namespace needle::proxy {

Watchdog::Watchdog(net::Executor executor, std::function<void()> on_expire)
    : timer_(std::move(executor)), on_expire_(std::move(on_expire)) {}

Watchdog::~Watchdog() {
  *alive_ = false;
  timer_.cancel();
}

void Watchdog::arm(Millis timeout, int phase) {
  deadline_ = std::chrono::steady_clock::now() + timeout;
  phase_ = phase;
  expired_ = false;
  if (timer_at_ == TimePoint::max() || deadline_ < timer_at_) {
    // No pending wait, or the new deadline is earlier than the pending one: (re)arm the timer.
    timer_at_ = deadline_;
    timer_.expires_at(deadline_);
    wait();
  }
  // Otherwise the pending wait fires early, finds the later deadline and sleeps again.
}

void Watchdog::disarm() { deadline_ = TimePoint::max(); }

void Watchdog::wait() {
  timer_.async_wait([this, alive = alive_, at = timer_at_](std::error_code ec) {
    if (!*alive) return;
    if (at != timer_at_) return;  // superseded by an earlier re-arm
    on_timer(ec);
  });
}

void Watchdog::on_timer(std::error_code ec) {
  timer_at_ = TimePoint::max();
  if (ec && ec != asio::error::operation_aborted) return;
  if (deadline_ == TimePoint::max()) return;  // disarmed: no wait pending until the next arm()
  const auto now = std::chrono::steady_clock::now();
  if (now < deadline_) {
    timer_at_ = deadline_;
    timer_.expires_at(deadline_);
    wait();
    return;
  }
  deadline_ = TimePoint::max();
  expired_ = true;
  expired_phase_ = phase_;
  if (on_expire_) on_expire_();
}

}  // namespace needle::proxy
