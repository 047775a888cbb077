#include "net/socket_io.h"

#include <asio/experimental/as_tuple.hpp>
#include <asio/read.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>

namespace needle::net {

namespace {
constexpr auto use_tuple = asio::experimental::as_tuple(asio::use_awaitable);
}

asio::awaitable<IoResult> read_when_ready(asio::ip::tcp::socket& socket, asio::mutable_buffer into,
                                          ReadMode mode) {
  if (!socket.non_blocking()) {
    std::error_code ec;
    socket.non_blocking(true, ec);
    if (ec) co_return IoResult{ec, 0};
  }
  if (mode == ReadMode::wait_first) {
    auto [wait_ec] = co_await socket.async_wait(asio::socket_base::wait_read, use_tuple);
    if (wait_ec) co_return IoResult{wait_ec, 0};
  }
  for (;;) {
    std::error_code ec;
    const size_t n = socket.read_some(into, ec);
    if (ec != asio::error::would_block && ec != asio::error::try_again) {
      co_return IoResult{ec, n};
    }
    auto [wait_ec] = co_await socket.async_wait(asio::socket_base::wait_read, use_tuple);
    if (wait_ec) co_return IoResult{wait_ec, 0};
  }
}

asio::awaitable<IoResult> write_all(asio::ip::tcp::socket& socket,
                                    std::span<const asio::const_buffer> buffers) {
  auto [ec, n] = co_await asio::async_write(socket, buffers, use_tuple);
  co_return IoResult{ec, n};
}

asio::awaitable<IoResult> write_all(asio::ip::tcp::socket& socket, asio::const_buffer buffer) {
  auto [ec, n] = co_await asio::async_write(socket, buffer, use_tuple);
  co_return IoResult{ec, n};
}

}  // namespace needle::net
