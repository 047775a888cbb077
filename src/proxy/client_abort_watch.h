#pragma once
// Notices a client that goes away while its request waits for the upstream's response, so the
// upstream attempt is cancelled and the request logged 499 `client_closed` (nginx's "client
// prematurely closed connection"), not 504 `response_timeout` once the upstream gives up.
//
// Cost: nothing per request. arm() and disarm() are field writes; a request that is answered
// within one worker sweep period is never looked at. Only a watch still armed at the second
// park sweep (250-500 ms later, docs/architecture.md "Life of a request") starts looking: one
// 1-byte recv(MSG_PEEK) queued on the client socket. It is a read, not async_wait(wait_read), so
// it costs no epoll_ctl; Asio's speculative attempt catches a FIN or RST that arrived before the
// look (its edge already consumed), and the attempt is skipped only when the reactor has seen
// nothing arrive since the last head read emptied the queue (net/draining_read.h).
//
// What the look finds:
//  - bytes: a pipelined next request. Not an abort: peeked, so they stay in the socket for the
//    session's next head read; the watch ends (a close behind them is found by that read).
//  - EOF: the client closed, or shut down its sending side. Both look the same from here (only a
//    write would tell them apart), so a FIN is an abort, as in nginx.
//  - an error (RST): an abort.
//  - cancellation: disarm() (the response started or the exchange ended), or someone cancelled
//    every operation on the socket. The watch ends.
//
// States (one transition per event):
//   off --arm--> armed --look_if_armed_before--> looking --EOF/RST--> aborted
//   armed|looking --disarm--> off          looking --bytes/cancelled--> done
// aborted stays readable until the next arm(), so the exchange can classify its cancelled read.
#include <cstdint>
#include <functional>
#include <memory>

#include <asio/cancellation_signal.hpp>

#include "net/io_types.h"

namespace needle::proxy {

class ClientAbortWatch {
 public:
  enum class State { off, armed, looking, aborted, done };

  // `on_abort` runs once per abort, on the socket's thread: cancel the upstream attempt.
  ClientAbortWatch(net::Socket& client, std::function<void()> on_abort);
  ~ClientAbortWatch();
  ClientAbortWatch(const ClientAbortWatch&) = delete;
  ClientAbortWatch& operator=(const ClientAbortWatch&) = delete;

  // The request waits for the upstream from now on; `epoch` is WorkerContext::idle_epoch.
  void arm(uint64_t epoch);
  // The response started, or the exchange is over: stop looking (a queued look is cancelled;
  // an abort already seen stays visible through aborted()).
  void disarm();
  // Sweep `epoch` (the count before this sweep): a watch armed before the previous sweep has
  // waited a whole period and starts its look. The caller guarantees that nothing else reads the
  // client socket meanwhile (the request body has been read completely).
  void look_if_armed_before(uint64_t epoch);

  State state() const { return state_; }
  bool aborted() const { return state_ == State::aborted; }

 private:
  // Shared with a queued look's handler, which may run after the watch is gone (alive false).
  struct Look {
    bool alive = true;
    char byte = 0;
    asio::cancellation_signal cancel;
  };

  void start_look();
  void on_look(uint64_t look_id, const std::error_code& ec, size_t bytes);

  net::Socket& client_;
  std::function<void()> on_abort_;
  std::shared_ptr<Look> look_;  // made at the first look: most sessions never need one
  uint64_t armed_epoch_ = 0;
  uint64_t look_id_ = 0;  // which look a handler belongs to (a cancelled one may complete late)
  State state_ = State::off;
};

}  // namespace needle::proxy
