#pragma once
// The two I/O primitives of the data path, as coroutines returning error codes (no exceptions).
//
// Reads are async_read_some. A read that is known to start on an empty socket should cost no
// syscall before its data arrives; Asio 1.22 tries a speculative recv() first, so the two ways to
// skip it are read_some_draining (draining_read.h) and net::note_receive_queue_empty
// (receive_queue_hint.h). async_wait(wait_read) is not one: it re-arms the descriptor with
// epoll_ctl(EPOLL_CTL_MOD) on every call (strace: 3 epoll_ctl per proxied request).
#include <cstddef>
#include <span>
#include <system_error>
#include <tuple>
#include <vector>

#include <asio/awaitable.hpp>
#include <asio/buffer.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>

#include "net/draining_read.h"
#include "net/io_types.h"
#include "net/stream.h"

namespace needle::net {

struct IoResult {
  std::error_code error;
  size_t bytes = 0;

  IoResult& operator+=(const IoResult& more) {  // a write continued: more bytes, its outcome
    error = more.error;
    bytes += more.bytes;
    return *this;
  }
};

inline IoResult to_result(const std::tuple<std::error_code, size_t>& completion) {
  return IoResult{std::get<0>(completion), std::get<1>(completion)};
}

// Completion token of the data path: error codes as values, no exceptions.
inline constexpr auto use_tuple = asio::experimental::as_tuple(asio::use_awaitable_t<Executor>{});

// The primitives are the Asio operations themselves, not coroutines around them: a wrapper
// coroutine would cost a frame allocation and a resumption per I/O (four per proxied request).
// co_await yields std::tuple<std::error_code, size_t>.

// Reads at least one byte (or reports EOF as asio::error::eof).
inline auto read_some(Socket& socket, asio::mutable_buffer into) {
  return socket.async_read_some(into, use_tuple);
}

// read_some that, when it leaves the socket empty (no byte and no FIN behind what it read; needs
// TCP_INQ on the socket, see open_listener and open_upstream_socket), lets the next read skip the
// speculative recv. A RST right behind the bytes read is then noticed by the next event or
// deadline, not by the next read: use it only where that is harmless, or switch the next read's
// attempt back on first with note_receive_queue_unknown (draining_read.h says why).
inline auto read_some_draining(Socket& socket, asio::mutable_buffer into) {
  return socket.async_read_some(DrainingBuffer(into), use_tuple);
}

// Writes every byte of every buffer (gathered: one writev/sendmsg in the common case).
inline auto write_all(Socket& socket, std::span<const asio::const_buffer> buffers) {
  return asio::async_write(socket, buffers, use_tuple);
}
inline auto write_all(Socket& socket, asio::const_buffer buffer) {
  return asio::async_write(socket, buffer, use_tuple);
}

// Writes what the socket takes at once, without waiting: one sendmsg, on a socket in
// non-blocking mode (tune_accepted_socket, open_upstream_socket). Adds what it wrote (or the
// error) to `written`, drops those bytes from `buffers`, and returns whether bytes are left to
// write (no error, a full send buffer): then await write_all(socket, buffers) for them.
// The data path writes this way first, as nginx does: a write that completes at once costs no
// operation, posted completion or coroutine resumption (two of each per proxied request).
bool write_now(Socket& socket, std::vector<asio::const_buffer>& buffers, IoResult& written);

// The same primitives on a Stream (net/stream.h), plain or TLS. On a plain stream each is the
// socket's operation above (a branch, no coroutine frame of its own); on a TLS stream a
// coroutine around SSL_read_ex / SSL_write_ex that waits for readiness on the socket
// (docs/decisions/0008-tls-stream.md). All of them co_await to the same
// std::tuple<std::error_code, size_t>. A TLS read never drains (the reactor's speculative flag
// belongs to the raw reads only), and a peer's close_notify or bare FIN both read as
// asio::error::eof.
using IoCompletion = std::tuple<std::error_code, size_t>;
Task<IoCompletion> tls_read_some(Stream& stream, asio::mutable_buffer into);
Task<IoCompletion> tls_write_all(Stream& stream, std::span<const asio::const_buffer> buffers);
Task<IoCompletion> tls_write_one(Stream& stream, asio::const_buffer buffer);
bool tls_write_now(Stream& stream, std::vector<asio::const_buffer>& buffers, IoResult& written);

inline Task<IoCompletion> read_some(Stream& stream, asio::mutable_buffer into) {
  if (!stream.is_tls()) return read_some(stream.socket(), into);
  return tls_read_some(stream, into);
}
inline Task<IoCompletion> read_some_draining(Stream& stream, asio::mutable_buffer into) {
  if (!stream.is_tls()) return read_some_draining(stream.socket(), into);
  return tls_read_some(stream, into);
}
inline Task<IoCompletion> write_all(Stream& stream, std::span<const asio::const_buffer> buffers) {
  if (!stream.is_tls()) return write_all(stream.socket(), buffers);
  return tls_write_all(stream, buffers);
}
inline Task<IoCompletion> write_all(Stream& stream, asio::const_buffer buffer) {
  if (!stream.is_tls()) return write_all(stream.socket(), buffer);
  return tls_write_one(stream, buffer);
}
inline bool write_now(Stream& stream, std::vector<asio::const_buffer>& buffers,
                      IoResult& written) {
  if (!stream.is_tls()) return write_now(stream.socket(), buffers, written);
  return tls_write_now(stream, buffers, written);
}

// The TLS handshake of a stream whose SSL is in accept or connect state. On failure the
// OpenSSL error queue is left for the caller to classify (tls::classify_handshake_failure),
// which it must do before its next OpenSSL call; the error is std::errc::protocol_error then,
// or the socket's error (operation_aborted when a watchdog cancelled it, eof, a reset).
Task<std::error_code> tls_handshake(Stream& stream);

}  // namespace needle::net
