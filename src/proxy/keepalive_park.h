#pragma once
// Where a client connection waits once it has idled in keep-alive for a while: the socket and the
// few facts a session needs to go on (ParkedClient), a pending readiness wait, and its keep-alive
// deadline. The session itself (parser, watchdogs, scratch strings, coroutine frames: several KiB)
// is gone, so 10k idle clients cost 10k small records (two 96-byte blocks each, packed in their
// own chunks: base/block_pool.h), the way nginx frees a keep-alive connection's request and
// buffers and keeps only its ngx_connection_t.
//
// Parking is for connections idle longer than a sweep period (the worker's park sweep asks such
// sessions to park, DownstreamSession::park_if_idle_before); a client that sends its next request
// sooner never leaves its session, so request-per-request traffic pays nothing for this.
//
// Invariants: every parked client has exactly one pending handler (its async_wait, or a posted
// wake when bytes were already there), which runs exactly once (ready, or aborted when the park
// closed the socket), and only that handler frees the record: no handler sees a freed record.
// `on_closed` runs once per client the park closes (deadline, drain), `on_wake` once per client
// that became readable (bytes or FIN: the resumed session reads them, or the end of stream).
// Single-threaded: the worker's thread only.
#include <cstdint>
#include <functional>
#include <list>
#include <memory>

#include "base/block_pool.h"
#include "base/clock.h"
#include "net/io_types.h"

namespace needle::proxy {

// What survives of a session while its client is parked (the resumed session reads the peer's
// address again: one getpeername per wake instead of two strings per parked client).
struct ParkedClient {
  net::Socket socket;
  uint32_t requests_served = 0;
  TimePoint deadline{};  // keep-alive (or first-request header) deadline set by the session
  TimePoint idle_since{};  // when the keep-alive wait began (the idle age of a close)
};

class KeepAlivePark {
 public:
  using WakeHandler = std::function<void(ParkedClient&&)>;
  using CloseHandler = std::function<void()>;

  KeepAlivePark(net::Executor executor, const Clock& clock, WakeHandler on_wake,
                CloseHandler on_closed);
  ~KeepAlivePark();
  KeepAlivePark(const KeepAlivePark&) = delete;
  KeepAlivePark& operator=(const KeepAlivePark&) = delete;

  // Takes the client until it becomes readable or its deadline passes. Bytes already queued
  // (they may have come after the session's idle read was cancelled) wake it on the next turn.
  void park(ParkedClient client);
  // Closes the parked clients whose deadline is at or before `now` (RFC 9112 9.6: a quiet close
  // of an idle connection). Returns how many. The park's timer calls it at the earliest deadline.
  size_t expire(TimePoint now);
  // Drain: closes every parked client.
  size_t close_all();
  // Where expire() sends a client whose keep-alive deadline passed after at least one request,
  // instead of closing it (the worker's CloseRaceWatch): the handler owns the connection from
  // then on, and on_closed does not run for it. Unset: such clients are closed here.
  void set_idle_close_handler(WakeHandler handler) { on_idle_close_ = std::move(handler); }
  size_t size() const { return waiting_; }

 private:
  struct Entry {
    ParkedClient client;
    bool closed = false;  // closed by the park; its wait handler only frees the entry
  };
  using Entries = std::list<Entry, BlockAllocator<Entry>>;

  void on_ready(Entries::iterator entry, std::error_code ec);
  void close(Entry& entry);
  // Ends the entry's wait and gives its client to on_idle_close_.
  void hand_over_idle(Entry& entry);
  // Keeps one timer wait pending for the earliest open deadline (re-armed only when it changes).
  void arm_timer();
  void on_timer(std::error_code ec, TimePoint at);

  const Clock& clock_;
  net::Timer timer_;
  TimePoint timer_at_ = TimePoint::max();  // expiry of the pending timer wait, max() if none
  WakeHandler on_wake_;
  CloseHandler on_closed_;
  WakeHandler on_idle_close_;
  // The entries' list nodes and their wait operations (one block each). Shared with their
  // allocators: the waits that closing the sockets at destruction aborts are destroyed later, by
  // the io_context, and give their blocks back then.
  std::shared_ptr<BlockPool> blocks_ = std::make_shared<BlockPool>();
  // Ordered by deadline (sessions share a timeout, so appending keeps the order; a reload that
  // shortens it inserts further forward). Closed entries stay until their wait handler runs.
  Entries entries_{BlockAllocator<Entry>(blocks_)};
  size_t waiting_ = 0;  // entries not closed
};

}  // namespace needle::proxy
