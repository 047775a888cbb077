#include "proxy/keepalive_park.h"

#include <sys/socket.h>

#include <cerrno>

#include <asio/bind_allocator.hpp>
#include <asio/post.hpp>

namespace needle::proxy {

// A list node (the entry and two links) takes one block.
static_assert(sizeof(ParkedClient) + sizeof(bool) + 2 * sizeof(void*) <= BlockPool::kBlockSize);

KeepAlivePark::KeepAlivePark(net::Executor executor, const Clock& clock, WakeHandler on_wake,
                             CloseHandler on_closed)
    : clock_(clock),
      timer_(std::move(executor)),
      on_wake_(std::move(on_wake)),
      on_closed_(std::move(on_closed)) {}

KeepAlivePark::~KeepAlivePark() {
  // The worker destroys the pending waits first (their handlers never run); the sockets close
  // here with the entries, without on_closed: the worker is going away.
  for (Entry& entry : entries_) {
    std::error_code ignored;
    entry.client.socket.close(ignored);
  }
}

void KeepAlivePark::park(ParkedClient client) {
  auto at = entries_.end();
  while (at != entries_.begin() && std::prev(at)->client.deadline > client.deadline) --at;
  const auto entry = entries_.insert(at, Entry{std::move(client)});
  ++waiting_;
  // Bytes (or a FIN) that arrived after the session's idle read was cancelled raised their edge
  // while no read was queued: the wait below would sleep through them. So look first, in this
  // turn, where no edge can be consumed between the look and the wait.
  char byte;
  const ssize_t peeked =
      ::recv(entry->client.socket.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  if (peeked >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
    const std::error_code ec =
        peeked >= 0 ? std::error_code() : std::error_code(errno, std::system_category());
    asio::post(timer_.get_executor(), [this, entry, ec] { on_ready(entry, ec); });
  } else {
    entry->client.socket.async_wait(
        asio::socket_base::wait_read,
        asio::bind_allocator(BlockAllocator<void>(blocks_),
                             [this, entry](std::error_code ec) { on_ready(entry, ec); }));
  }
  arm_timer();
}

void KeepAlivePark::arm_timer() {
  TimePoint earliest = TimePoint::max();
  for (const Entry& entry : entries_) {
    if (entry.closed) continue;
    earliest = entry.client.deadline;
    break;
  }
  if (earliest == timer_at_) return;
  timer_at_ = earliest;
  if (earliest == TimePoint::max()) {
    timer_.cancel();
    return;
  }
  timer_.expires_at(earliest);  // cancels a pending wait, whose handler then sees a stale `at`
  timer_.async_wait([this, at = earliest](std::error_code ec) { on_timer(ec, at); });
}

void KeepAlivePark::on_timer(std::error_code ec, TimePoint at) {
  if (ec || at != timer_at_) return;  // superseded by a re-arm, or cancelled
  timer_at_ = TimePoint::max();
  expire(clock_.now());
  arm_timer();
}

void KeepAlivePark::on_ready(Entries::iterator entry, std::error_code ec) {
  if (entry->closed) {
    entries_.erase(entry);
    return;
  }
  --waiting_;
  if (ec) {
    // Not a cancellation by the park (those are closed entries): the socket itself failed.
    std::error_code ignored;
    entry->client.socket.close(ignored);
    entries_.erase(entry);
    on_closed_();
    return;
  }
  ParkedClient client = std::move(entry->client);
  entries_.erase(entry);
  on_wake_(std::move(client));
}

void KeepAlivePark::close(Entry& entry) {
  entry.closed = true;
  --waiting_;
  std::error_code ignored;
  entry.client.socket.shutdown(asio::socket_base::shutdown_both, ignored);
  entry.client.socket.close(ignored);  // aborts the wait: its handler frees the entry
  on_closed_();
}

void KeepAlivePark::hand_over_idle(Entry& entry) {
  entry.closed = true;
  --waiting_;
  std::error_code ignored;
  entry.client.socket.cancel(ignored);  // its wait handler runs aborted and frees the entry
  on_idle_close_(std::move(entry.client));
}

size_t KeepAlivePark::expire(TimePoint now) {
  size_t closed = 0;
  for (Entry& entry : entries_) {
    if (entry.closed) continue;
    if (entry.client.deadline > now) break;
    if (on_idle_close_ && entry.client.requests_served > 0) {
      hand_over_idle(entry);
    } else {
      close(entry);
    }
    ++closed;
  }
  if (closed != 0) arm_timer();
  return closed;
}

size_t KeepAlivePark::close_all() {
  size_t closed = 0;
  for (Entry& entry : entries_) {
    if (entry.closed) continue;
    close(entry);
    ++closed;
  }
  arm_timer();
  return closed;
}

}  // namespace needle::proxy
