// The keep-alive park with real loopback sockets: a parked client comes back when it sends (or
// closes), goes at its deadline, goes on drain, and is handed over or closed exactly once.
#include "proxy/keepalive_park.h"

#include <gtest/gtest.h>
#include <poll.h>

#include <chrono>
#include <memory>
#include <optional>
#include <vector>

#include "unit/net/loopback_pair.h"

namespace needle::proxy {
namespace {

using namespace std::chrono_literals;

struct ParkFixture : ::testing::Test {
  asio::io_context io{1};
  std::vector<std::unique_ptr<net::LoopbackPair>> pairs;
  std::vector<ParkedClient> woken;
  int closed = 0;
  KeepAlivePark park{io.get_executor(), SteadyClock::instance(),
                     [this](ParkedClient&& c) { woken.push_back(std::move(c)); },
                     [this] { ++closed; }};

  // A parked client whose socket lives on this fixture's io_context; returns its peer.
  net::Socket& park_one(TimePoint deadline, uint32_t served = 1,
                        std::string_view sent_before = {}) {
    auto& pair = *pairs.emplace_back(std::make_unique<net::LoopbackPair>());
    if (!sent_before.empty()) {
      asio::write(pair.peer, asio::buffer(sent_before));
      pollfd readable{pair.accepted.native_handle(), POLLIN, 0};
      EXPECT_EQ(::poll(&readable, 1, 1000), 1);
    }
    // The pair's sockets belong to the pair's own io_context: move the accepted fd over.
    net::Socket socket(io);
    socket.assign(asio::ip::tcp::v4(), pair.accepted.release());
    park.park(
        ParkedClient{.socket = std::move(socket), .requests_served = served, .deadline = deadline});
    return pair.peer;
  }

  // Runs the io_context until `done` or 2 s pass.
  template <typename Done>
  void run_until(Done done) {
    const auto give_up = std::chrono::steady_clock::now() + 2s;
    while (!done() && std::chrono::steady_clock::now() < give_up) {
      io.run_for(10ms);
      io.restart();
    }
  }

  // Runs what is ready now (aborted waits, closes) for a moment.
  void settle() {
    io.run_for(50ms);
    io.restart();
  }

  static bool peer_sees_eof(net::Socket& peer) {
    peer.non_blocking(false);
    char byte;
    std::error_code ec;
    peer.read_some(asio::buffer(&byte, 1), ec);
    return ec == asio::error::eof || ec == asio::error::connection_reset;
  }
};

TEST_F(ParkFixture, ClientThatSendsIsHandedBackWithItsFactsAndBytes) {
  net::Socket& peer = park_one(std::chrono::steady_clock::now() + 10s, 7);
  EXPECT_EQ(park.size(), 1u);
  asio::write(peer, asio::buffer(std::string_view("GET / HTTP/1.1\r\n")));
  run_until([&] { return !woken.empty(); });
  ASSERT_EQ(woken.size(), 1u);
  EXPECT_EQ(park.size(), 0u);
  EXPECT_EQ(closed, 0);
  EXPECT_EQ(woken[0].requests_served, 7u);
  // The bytes are still in the socket, for the session that resumes it.
  char got[32];
  const size_t n = woken[0].socket.read_some(asio::buffer(got));
  EXPECT_EQ(std::string_view(got, n), "GET / HTTP/1.1\r\n");
}

TEST_F(ParkFixture, BytesAlreadyQueuedWhenParkedWakeTheClient) {
  // They arrived after the session's idle read was cancelled: their edge is gone, no wait would
  // see them.
  park_one(std::chrono::steady_clock::now() + 10s, 1, "GET");
  run_until([&] { return !woken.empty(); });
  ASSERT_EQ(woken.size(), 1u);
  EXPECT_EQ(closed, 0);
  char got[8];
  EXPECT_EQ(woken[0].socket.read_some(asio::buffer(got)), 3u);
}

TEST_F(ParkFixture, ClientThatClosesIsHandedBackToReadTheEnd) {
  net::Socket& peer = park_one(std::chrono::steady_clock::now() + 10s);
  peer.shutdown(asio::socket_base::shutdown_send);
  run_until([&] { return !woken.empty(); });
  ASSERT_EQ(woken.size(), 1u);
  EXPECT_EQ(closed, 0);
  char byte;
  std::error_code ec;
  woken[0].socket.read_some(asio::buffer(&byte, 1), ec);
  EXPECT_EQ(ec, asio::error::eof);
}

TEST_F(ParkFixture, DeadlineClosesTheClientOnItsOwnTimer) {
  const auto parked_at = std::chrono::steady_clock::now();
  net::Socket& peer = park_one(parked_at + 100ms);
  run_until([&] { return closed != 0; });
  const auto waited = std::chrono::steady_clock::now() - parked_at;
  EXPECT_EQ(closed, 1);
  EXPECT_GE(waited, 100ms);
  EXPECT_EQ(park.size(), 0u);
  EXPECT_TRUE(woken.empty());
  EXPECT_TRUE(peer_sees_eof(peer));
}

TEST_F(ParkFixture, ShorterDeadlineParkedLaterExpiresFirst) {
  // A reload that shortened the timeout: the later client's deadline is earlier.
  const auto now = std::chrono::steady_clock::now();
  park_one(now + 60s);
  net::Socket& short_peer = park_one(now + 30s);
  EXPECT_EQ(park.expire(now + 40s), 1u);
  EXPECT_EQ(closed, 1);
  EXPECT_EQ(park.size(), 1u);
  EXPECT_TRUE(peer_sees_eof(short_peer));
  EXPECT_EQ(park.expire(now + 70s), 1u);
  EXPECT_EQ(park.size(), 0u);
}

TEST_F(ParkFixture, CloseAllClosesEveryClientOnce) {
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  park_one(deadline);
  park_one(deadline);
  park_one(deadline);
  EXPECT_EQ(park.close_all(), 3u);
  EXPECT_EQ(park.close_all(), 0u);
  settle();  // lets the aborted waits run: they only free
  EXPECT_EQ(closed, 3);
  EXPECT_TRUE(woken.empty());
  for (auto& pair : pairs) EXPECT_TRUE(peer_sees_eof(pair->peer));
}

TEST_F(ParkFixture, ClientReadyAndExpiredInOneTurnIsClosedNotWoken) {
  const auto now = std::chrono::steady_clock::now();
  net::Socket& peer = park_one(now + 60s);
  asio::write(peer, asio::buffer(std::string_view("GET")));
  // Readiness may already be queued; the deadline wins, and the client is closed exactly once.
  EXPECT_EQ(park.expire(now + 61s), 1u);
  settle();
  EXPECT_EQ(closed, 1);
  EXPECT_TRUE(woken.empty());
}

}  // namespace
}  // namespace needle::proxy
