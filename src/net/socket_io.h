#pragma once
// The two I/O primitives of the data path, as coroutines returning error codes (no exceptions).
//
// Reads are plain async_read_some: Asio 1.22's epoll reactor skips the speculative read after a
// read that drained the socket, so queueing the next read costs no syscall, and the data costs
// one recv when it arrives. async_wait(wait_read) looks cheaper but re-arms the descriptor with
// epoll_ctl(EPOLL_CTL_MOD) on every call (strace: 3 epoll_ctl per proxied request), so it is not
// used on the data path.
#include <cstddef>
#include <span>
#include <system_error>

#include <asio/awaitable.hpp>
#include <asio/buffer.hpp>
#include <asio/ip/tcp.hpp>

namespace needle::net {

struct IoResult {
  std::error_code error;
  size_t bytes = 0;
};

// Reads at least one byte (or reports EOF as asio::error::eof).
asio::awaitable<IoResult> read_some(asio::ip::tcp::socket& socket, asio::mutable_buffer into);

// Writes every byte of every buffer (gathered: one writev/sendmsg in the common case).
asio::awaitable<IoResult> write_all(asio::ip::tcp::socket& socket,
                                    std::span<const asio::const_buffer> buffers);
asio::awaitable<IoResult> write_all(asio::ip::tcp::socket& socket, asio::const_buffer buffer);

}  // namespace needle::net
