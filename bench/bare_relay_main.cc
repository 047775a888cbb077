// needle-bare-relay: the least a proxy on needle's fixed stack can do per request, as a
// yardstick for bench/throughput.sh. Standalone Asio, C++20 coroutines, one io_context with
// concurrency hint 1 on one thread: each accepted client gets its own upstream connection and two
// coroutines that copy bytes each way (async_read_some, then async_write of what was read). No
// HTTP parsing, no header rewriting, no pool, no timers, no logging: whatever needle spends above
// this relay's CPU per request is needle's own work, and this relay's requests per second are the
// ceiling of the event loop and the kernel's loopback path on this machine.
//
//   needle-bare-relay <upstream_port> [read|wait]
//
// read (default): each read is Asio's async_read_some (a speculative recv first, then epoll).
// wait: each read first waits for readiness (async_wait(wait_read)), then one non-blocking
// read_some, which skips the speculative recv that fails on an empty socket but re-arms the
// descriptor with epoll_ctl in Asio 1.22.
// Listens on 127.0.0.1, port 0; prints the port on stdout (one line). Runs until killed.
#include <array>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string_view>
#include <tuple>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/io_context.hpp>
#include <asio/this_coro.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>

namespace {

using asio::ip::tcp;
constexpr auto use_tuple = asio::experimental::as_tuple(asio::use_awaitable);
bool wait_first = false;

// Copies from -> to until either side fails; then closes both, which ends the other direction.
asio::awaitable<void> pump(std::shared_ptr<tcp::socket> from, std::shared_ptr<tcp::socket> to) {
  std::array<char, 16384> buffer;
  for (;;) {
    size_t n = 0;
    std::error_code ec;
    if (wait_first) {
      std::tie(ec) = co_await from->async_wait(tcp::socket::wait_read, use_tuple);
      if (!ec) n = from->read_some(asio::buffer(buffer), ec);
      if (ec == asio::error::would_block) continue;
    } else {
      std::tie(ec, n) = co_await from->async_read_some(asio::buffer(buffer), use_tuple);
    }
    if (ec) break;
    std::tie(ec, n) = co_await asio::async_write(*to, asio::buffer(buffer.data(), n), use_tuple);
    if (ec) break;
  }
  std::error_code ignored;
  from->close(ignored);
  to->close(ignored);
}

asio::awaitable<void> serve(tcp::socket client_socket, tcp::endpoint upstream) {
  auto executor = co_await asio::this_coro::executor;
  auto client = std::make_shared<tcp::socket>(std::move(client_socket));
  auto server = std::make_shared<tcp::socket>(executor);
  auto [ec] = co_await server->async_connect(upstream, use_tuple);
  if (ec) co_return;
  client->set_option(tcp::no_delay(true));
  server->set_option(tcp::no_delay(true));
  if (wait_first) {
    client->non_blocking(true);
    server->non_blocking(true);
  }
  asio::co_spawn(executor, pump(client, server), asio::detached);
  asio::co_spawn(executor, pump(server, client), asio::detached);
}

asio::awaitable<void> accept_loop(tcp::acceptor& acceptor, tcp::endpoint upstream) {
  for (;;) {
    auto [ec, socket] = co_await acceptor.async_accept(use_tuple);
    if (ec) continue;
    asio::co_spawn(acceptor.get_executor(), serve(std::move(socket), upstream), asio::detached);
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || argc > 3 ||
      (argc == 3 && std::string_view(argv[2]) != "read" && std::string_view(argv[2]) != "wait")) {
    std::fprintf(stderr, "usage: %s <upstream_port> [read|wait]\n", argv[0]);
    return 2;
  }
  wait_first = argc == 3 && std::string_view(argv[2]) == "wait";
  asio::io_context io(1);
  const auto loopback = asio::ip::make_address("127.0.0.1");
  tcp::acceptor acceptor(io, tcp::endpoint(loopback, 0));
  const tcp::endpoint upstream(loopback, static_cast<unsigned short>(std::atoi(argv[1])));
  std::printf("%u\n", acceptor.local_endpoint().port());
  std::fflush(stdout);
  asio::co_spawn(io, accept_loop(acceptor, upstream), asio::detached);
  io.run();
}
