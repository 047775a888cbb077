// The tunnel over real loopback sockets: bytes both ways (the ones read behind the heads
// first), a FIN relayed as a FIN with the other direction still flowing, backpressure, the idle
// limit, a drain deadline and a reset. The test plays the client and the upstream with blocking
// sockets on its own thread; the tunnel runs on an io_context thread.
#include "proxy/tunnel.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <chrono>
#include <future>
#include <optional>
#include <string>
#include <thread>

#include <asio/co_spawn.hpp>
#include <asio/read.hpp>
#include <asio/write.hpp>

#include "net/listener.h"

namespace needle::proxy {
namespace {

using namespace std::chrono_literals;

using ClientTunnelUnderTest = Tunnel<net::Socket, net::Socket>;

// Two connected pairs on one io_context: client_peer <-> client (the tunnel's client side) and
// upstream (the tunnel's upstream side) <-> upstream_peer.
struct TunnelFixture : ::testing::Test {
  asio::io_context io;
  net::Socket client{io}, client_peer{io}, upstream{io}, upstream_peer{io};
  BufferPool buffers{16 * 1024, 8};
  std::thread runner;
  std::promise<TunnelStats> done;

  TunnelFixture() {
    connect_pair(client_peer, client);
    connect_pair(upstream, upstream_peer);
  }
  ~TunnelFixture() override {
    io.stop();
    if (runner.joinable()) runner.join();
  }
  void connect_pair(net::Socket& from, net::Socket& accepted) {
    net::Acceptor acceptor(io);
    ASSERT_FALSE(net::open_listener(
        acceptor, asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0), false));
    from.connect(acceptor.local_endpoint());
    acceptor.accept(accepted);
  }

  // Starts tunnel.run() on the io thread; the result arrives in `done`.
  void start(ClientTunnelUnderTest& tunnel, std::string_view client_pending = {},
             std::string_view upstream_pending = {});

  std::string read_exactly(net::Socket& s, size_t n) {
    std::string out(n, '\0');
    asio::read(s, asio::buffer(out));
    return out;
  }
  // Reads until EOF; what arrived.
  std::string read_to_eof(net::Socket& s) {
    std::string out;
    char chunk[4096];
    std::error_code ec;
    for (;;) {
      const size_t n = s.read_some(asio::buffer(chunk), ec);
      if (ec) break;
      out.append(chunk, n);
    }
    EXPECT_EQ(ec, asio::error::eof);
    return out;
  }
  std::optional<TunnelStats> result(std::chrono::milliseconds within) {
    auto future = done.get_future();
    if (future.wait_for(within) != std::future_status::ready) return std::nullopt;
    return future.get();
  }
};

void TunnelFixture::start(ClientTunnelUnderTest& tunnel, std::string_view client_pending,
                          std::string_view upstream_pending) {
  asio::co_spawn(io, tunnel.run(client_pending, upstream_pending),
                 [this](std::exception_ptr, TunnelStats stats) { done.set_value(stats); });
  runner = std::thread([this] {
    auto guard = asio::make_work_guard(io);
    io.run();
  });
}

TEST_F(TunnelFixture, RelaysBothWaysPendingBytesFirst) {
  ClientTunnelUnderTest tunnel(client, upstream, io.get_executor(), buffers, 10s);
  start(tunnel, "early-client ", "early-upstream ");
  asio::write(client_peer, asio::buffer(std::string_view("hello")));
  EXPECT_EQ(read_exactly(upstream_peer, 18), "early-client hello");
  asio::write(upstream_peer, asio::buffer(std::string_view("world")));
  EXPECT_EQ(read_exactly(client_peer, 20), "early-upstream world");
  client_peer.shutdown(asio::socket_base::shutdown_send);
  EXPECT_EQ(read_to_eof(upstream_peer), "");
  upstream_peer.shutdown(asio::socket_base::shutdown_send);
  EXPECT_EQ(read_to_eof(client_peer), "");
  auto stats = result(5s);
  ASSERT_TRUE(stats);
  EXPECT_EQ(stats->bytes_from_client, 18u);
  EXPECT_EQ(stats->bytes_to_client, 20u);
  EXPECT_EQ(stats->closed_by, TunnelCloser::client);
  EXPECT_TRUE(stats->detail.empty());
}

TEST_F(TunnelFixture, AFinKeepsTheOtherDirectionOpen) {
  ClientTunnelUnderTest tunnel(client, upstream, io.get_executor(), buffers, 10s);
  start(tunnel);
  upstream_peer.shutdown(asio::socket_base::shutdown_send);  // the upstream is done sending
  EXPECT_EQ(read_to_eof(client_peer), "");                  // ... and the client sees its FIN
  // The client -> upstream direction still carries bytes, in bulk (a pooled buffer).
  const std::string big(200 * 1024, 'x');
  std::thread writer([&] {
    asio::write(client_peer, asio::buffer(big));
    client_peer.shutdown(asio::socket_base::shutdown_send);
  });
  EXPECT_EQ(read_to_eof(upstream_peer).size(), big.size());
  writer.join();
  auto stats = result(5s);
  ASSERT_TRUE(stats);
  EXPECT_EQ(stats->closed_by, TunnelCloser::upstream);
  EXPECT_EQ(stats->bytes_from_client, big.size());
}

TEST_F(TunnelFixture, AReceiverThatDoesNotReadHoldsTheSenderBack) {
  ClientTunnelUnderTest tunnel(client, upstream, io.get_executor(), buffers, 10s);
  start(tunnel);
  // The upstream reads nothing: once the kernel buffers on both hops are full, the tunnel's
  // write waits, its next read does not happen, and the client's writes stop being accepted.
  ::fcntl(client_peer.native_handle(), F_SETFL, O_NONBLOCK);
  const std::string chunk(64 * 1024, 'y');
  size_t accepted = 0;
  const auto give_up = std::chrono::steady_clock::now() + 1s;
  while (std::chrono::steady_clock::now() < give_up) {
    const ssize_t n = ::send(client_peer.native_handle(), chunk.data(), chunk.size(), 0);
    if (n > 0) {
      accepted += static_cast<size_t>(n);
    } else {
      std::this_thread::sleep_for(20ms);
    }
    ASSERT_LT(accepted, 64u * 1024 * 1024) << "the tunnel kept reading with nowhere to write";
  }
  // Bounded by the two sockets' buffers plus one tunnel buffer, not by what was offered.
  EXPECT_GT(accepted, 0u);
  asio::post(io, [&] { tunnel.close(TunnelCloser::drain); });
  auto stats = result(5s);
  ASSERT_TRUE(stats);
  EXPECT_EQ(stats->closed_by, TunnelCloser::drain);
}

TEST_F(TunnelFixture, IdleTunnelClosesAtItsLimit) {
  ClientTunnelUnderTest tunnel(client, upstream, io.get_executor(), buffers, 150ms);
  const auto began = std::chrono::steady_clock::now();
  start(tunnel);
  auto stats = result(5s);
  ASSERT_TRUE(stats);
  EXPECT_EQ(stats->closed_by, TunnelCloser::idle_timeout);
  EXPECT_GE(std::chrono::steady_clock::now() - began, 150ms);
}

TEST_F(TunnelFixture, TrafficKeepsTheIdleLimitAway) {
  ClientTunnelUnderTest tunnel(client, upstream, io.get_executor(), buffers, 300ms);
  start(tunnel);
  for (int i = 0; i < 8; ++i) {  // 800 ms of traffic, a byte every 100 ms
    asio::write(client_peer, asio::buffer(std::string_view("z")));
    EXPECT_EQ(read_exactly(upstream_peer, 1), "z");
    std::this_thread::sleep_for(100ms);
  }
  auto future = done.get_future();
  EXPECT_NE(future.wait_for(0ms), std::future_status::ready);
  EXPECT_EQ(future.get().closed_by, TunnelCloser::idle_timeout);  // once the traffic stops
}

TEST_F(TunnelFixture, ADrainDeadlineEndsABusyTunnel) {
  ClientTunnelUnderTest tunnel(client, upstream, io.get_executor(), buffers, 10s);
  start(tunnel);
  asio::post(io, [&] { tunnel.close_at(std::chrono::steady_clock::now() + 200ms); });
  auto stats = result(5s);
  ASSERT_TRUE(stats);
  EXPECT_EQ(stats->closed_by, TunnelCloser::drain);
}

TEST_F(TunnelFixture, AResetEndsBothDirections) {
  ClientTunnelUnderTest tunnel(client, upstream, io.get_executor(), buffers, 10s);
  start(tunnel);
  const linger abort_on_close{1, 0};
  ::setsockopt(upstream_peer.native_handle(), SOL_SOCKET, SO_LINGER, &abort_on_close,
               sizeof abort_on_close);
  upstream_peer.close();
  auto stats = result(5s);
  ASSERT_TRUE(stats);
  EXPECT_EQ(stats->closed_by, TunnelCloser::upstream);
  EXPECT_EQ(stats->detail, "read failed");
  EXPECT_EQ(stats->error, asio::error::connection_reset);
}

}  // namespace
}  // namespace needle::proxy
