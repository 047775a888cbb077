#pragma once
// A stream-socket read that tells Asio's epoll reactor when it emptied the receive queue, so the
// next read on that socket is queued for the next EPOLLIN edge without first trying a recv() that
// would only return EAGAIN.
//
// Asio 1.22 starts every async read with a speculative recv() unless the descriptor's
// try_speculative_ flag for reads is off, and its stock receive operation turns the flag off only
// at end of stream. On a proxy's request/response traffic that speculative recv fails for almost
// every read of a client's next request: it is never there yet when the read starts
// (bench/cost.sh). nginx saves the same syscall in ngx_unix_recv: with edge-triggered epoll a
// recv that returns less than the buffer clears rev->ready unless the event said the peer shut
// down (EPOLLRDHUP, pending_eof).
//
// "Fewer bytes than asked" alone does not prove the queue empty: a FIN or a RST queued behind the
// bytes stays there, and its edge was already consumed. So the read is a recvmsg() on a socket
// with TCP_INQ set (net::open_listener sets it; accepted sockets inherit it), whose TCP_CM_INQ
// control message gives the bytes left after the read, and 1 when only a FIN is left (Linux
// tcp_inq_hint). The read reports the queue drained only when inq is 0, and does so inside its own
// perform step (run by the reactor on the socket's thread, in the same step as the recv), so no
// event can be processed between the recv and the flag. Every byte, FIN or RST that arrives
// afterwards raises a new edge (Asio registers sockets with EPOLLET), on which the reactor turns
// speculative reads back on and performs the queued read.
//
// What inq cannot see is a RST queued right behind the bytes read (TCP_CM_INQ ignores sk_err).
// The next read then waits for the next event or its deadline instead of failing at once. So
// request-head reads use this as it is (a client that sends part of a head and resets waits out
// header_timeout at worst, and after a whole head the response write reports the reset); body
// reads keep Asio's stock read and first switch speculation back on
// (net::note_receive_queue_unknown), since the flag belongs to the socket, not to the read that
// cleared it; and upstream response reads use this for a response's first read only in effect:
// every later read of the response switches speculation back on first, so a reset mid-response
// ends the exchange now, while the read that ends a response leaves the flag saying whether the
// connection went quiet (the pool's checkout relies on it: upstream/host_pool.cc).
//
// The hook is an explicit specialization of Asio's receive operation base for the buffer type
// below: the stock operation with recvmsg() and the status of a short read changed. It is the
// read half of the reactor seam and exists only while the seam is on (net/reactor_seam.h); with
// it off, a DrainingBuffer is an ordinary mutable buffer and its read is Asio's stock read.
// docs/decisions/0001-draining-reads.md.
//
// One more property the pool's idle watch relies on: a draining read never reports exhaustion at
// end of stream. Asio's stock receive does (a recv() that returns 0 turns speculation off, as
// nothing more will ever arrive), which would leave the flag off with a FIN queued: the state in
// which the checkout skips its probe (receive_queue_hint.h, reactor_vouches_quiet).
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cstring>

#include <asio/buffer.hpp>

#include "net/reactor_seam.h"

namespace needle::net {

// One contiguous read target; reading into it reports a read that emptied the socket.
struct DrainingBuffer : asio::mutable_buffer {
  explicit DrainingBuffer(asio::mutable_buffer buffer) : asio::mutable_buffer(buffer) {}
};

// The TCP_CM_INQ value of a recvmsg() result, or -1 when the kernel sent none (TCP_INQ off).
inline int received_inq(msghdr& message) {
  for (cmsghdr* c = CMSG_FIRSTHDR(&message); c != nullptr; c = CMSG_NXTHDR(&message, c)) {
    if (c->cmsg_level == SOL_TCP && c->cmsg_type == TCP_CM_INQ) {
      int inq;
      std::memcpy(&inq, CMSG_DATA(c), sizeof inq);
      return inq;
    }
  }
  return -1;
}

}  // namespace needle::net

#if NEEDLE_REACTOR_SEAM

#include <cerrno>
#include <cstddef>
#include <type_traits>

#include <asio/socket_base.hpp>  // before the detail header, which uses it without including it
#include <asio/detail/reactive_socket_recv_op.hpp>
#include <asio/detail/reactor.hpp>
#include <asio/error.hpp>

static_assert(ASIO_VERSION == 102201, "the reactor seam was read against Asio 1.22.1");

namespace asio::detail {

static_assert(std::is_same_v<reactor, epoll_reactor>,
              "draining reads rely on the edge-triggered epoll reactor");

template <>
class reactive_socket_recv_op_base<needle::net::DrainingBuffer> : public reactor_op {
 public:
  reactive_socket_recv_op_base(const asio::error_code& success_ec, socket_type socket,
                               socket_ops::state_type /*state: always a stream socket here*/,
                               const needle::net::DrainingBuffer& buffer,
                               socket_base::message_flags flags, func_type complete_func)
      : reactor_op(success_ec, &reactive_socket_recv_op_base::do_perform, complete_func),
        socket_(socket),
        buffer_(buffer),
        flags_(flags) {}

  static status do_perform(reactor_op* base) {
    auto* op = static_cast<reactive_socket_recv_op_base*>(base);
    iovec iov{op->buffer_.data(), op->buffer_.size()};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
    msghdr message{};
    message.msg_iov = &iov;
    message.msg_iovlen = 1;
    message.msg_control = control;
    message.msg_controllen = sizeof control;
    ssize_t n;
    do {
      n = ::recvmsg(op->socket_, &message, op->flags_ | MSG_DONTWAIT);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return not_done;  // queued for the next edge
      op->ec_ = asio::error_code(errno, asio::error::get_system_category());
      op->bytes_transferred_ = 0;
      return done;
    }
    op->bytes_transferred_ = static_cast<size_t>(n);
    if (n == 0 && op->buffer_.size() != 0) {
      op->ec_ = asio::error::eof;
      return done;
    }
    // The one decision the stock operation does not make: nothing (not even a FIN) is left.
    if (op->bytes_transferred_ < op->buffer_.size() && needle::net::received_inq(message) == 0) {
      return done_and_exhausted;
    }
    return done;
  }

 private:
  socket_type socket_;
  needle::net::DrainingBuffer buffer_;
  socket_base::message_flags flags_;
};

}  // namespace asio::detail

#endif  // NEEDLE_REACTOR_SEAM
