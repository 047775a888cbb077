#include "net/socket_io.h"

#include <asio/experimental/as_tuple.hpp>
#include <asio/read.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>

namespace needle::net {

namespace {
constexpr auto use_tuple = asio::experimental::as_tuple(asio::use_awaitable);
}

asio::awaitable<IoResult> read_some(asio::ip::tcp::socket& socket, asio::mutable_buffer into) {
  auto [ec, n] = co_await socket.async_read_some(into, use_tuple);
  co_return IoResult{ec, n};
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
