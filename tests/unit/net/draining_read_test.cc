// Draining reads (net/draining_read.h) and the receive-queue hint (net/receive_queue_hint.h):
// after a read or probe that saw the socket empty, the next read is queued without a speculative
// recv. What must never happen is a lost wakeup: bytes or a FIN that arrive later, or a FIN that
// was already queued behind the bytes read, have to complete the next read whenever it starts.
#include <sys/socket.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <string>
#include <string_view>
#include <thread>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/read.hpp>
#include <asio/steady_timer.hpp>
#include <asio/write.hpp>
#include <gtest/gtest.h>

#include "loopback_pair.h"
#include "net/listener.h"
#include "net/receive_queue_hint.h"
#include "net/socket_io.h"

namespace needle::net {
namespace {

using namespace std::chrono_literals;

// A connected loopback pair: `reader` is read through net::read_some, `peer` writes blocking.
struct SocketPair : LoopbackPair {
  Socket& reader = accepted;

  void send(std::string_view bytes) { asio::write(peer, asio::buffer(bytes)); }

  // Runs the reactor (epoll_wait) for a moment with no read queued on `reader`: an edge that is
  // pending for it is consumed with nothing to perform. (poll() alone would not reach epoll_wait
  // when no operation is outstanding.)
  void let_reactor_consume_edges() {
    Timer tick(io, 30ms);
    tick.async_wait([](std::error_code) {});
    io.restart();
    io.run();
  }

  // Runs one net::read_some to completion (or until `limit`), returning what it read.
  IoResult read(std::string& into, size_t buffer_size, std::chrono::milliseconds limit = 5s) {
    std::string buffer(buffer_size, '\0');
    IoResult result{asio::error::timed_out, 0};
    bool done = false;
    asio::co_spawn(
        io,
        [&]() -> Task<void> {
          result = to_result(co_await read_some_draining(reader, asio::buffer(buffer)));
          done = true;
        },
        asio::detached);
    io.restart();
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!done && std::chrono::steady_clock::now() < deadline) io.run_for(10ms);
    if (!done) {
      reader.cancel();
      io.restart();
      io.run_for(100ms);
      return IoResult{asio::error::timed_out, 0};
    }
    into.assign(buffer.data(), result.bytes);
    return result;
  }

  // read(), with `bytes` sent 50 ms after the read was started: the read is queued (and
  // performed by the reactor on their edge), not satisfied by a speculative recv.
  IoResult read_then_receive(std::string& into, std::string_view bytes) {
    std::thread late_writer([this, bytes] {
      std::this_thread::sleep_for(50ms);
      send(bytes);
    });
    const auto result = read(into, 64);
    late_writer.join();
    return result;
  }
};

TEST(DrainingRead, BytesSentAfterAShortReadCompleteTheNextRead) {
  SocketPair pair;
  std::string got;
  pair.send("abc");
  ASSERT_FALSE(pair.read(got, 64).error);
  EXPECT_EQ(got, "abc");

  // The next read is started first (queued, no speculative recv), the bytes come later.
  const auto second = pair.read_then_receive(got, "def");
  ASSERT_FALSE(second.error) << second.error.message();
  EXPECT_EQ(got, "def");
}

TEST(DrainingRead, BytesThatArriveBeforeTheNextReadStartsAreNotLost) {
  SocketPair pair;
  std::string got;
  pair.send("first");
  ASSERT_FALSE(pair.read(got, 64).error);

  // The edge for these bytes fires while no read is queued and the reactor believes the socket
  // empty; the next read must still see them, whether or not the reactor ran in between.
  pair.send("second");
  std::this_thread::sleep_for(20ms);
  const auto without_poll = pair.read(got, 64);
  ASSERT_FALSE(without_poll.error) << without_poll.error.message();
  EXPECT_EQ(got, "second");

  pair.send("third");
  pair.let_reactor_consume_edges();
  const auto after_poll = pair.read(got, 64);
  ASSERT_FALSE(after_poll.error) << after_poll.error.message();
  EXPECT_EQ(got, "third");
}

TEST(DrainingRead, AFullReadLeavesTheRestToTheNextRead) {
  SocketPair pair;
  std::string got;
  pair.send(std::string(100, 'x'));
  std::this_thread::sleep_for(20ms);
  ASSERT_FALSE(pair.read(got, 64).error);
  EXPECT_EQ(got.size(), 64u);
  const auto rest = pair.read(got, 64);
  ASSERT_FALSE(rest.error);
  EXPECT_EQ(got, std::string(36, 'x'));
}

TEST(DrainingRead, EndOfStreamAfterAShortReadIsReported) {
  SocketPair pair;
  std::string got;
  pair.send("last");
  ASSERT_FALSE(pair.read(got, 64).error);
  std::thread closer([&] {
    std::this_thread::sleep_for(50ms);
    pair.peer.shutdown(asio::socket_base::shutdown_send);
  });
  const auto end = pair.read(got, 64);
  closer.join();
  EXPECT_EQ(end.error, asio::error::eof);
}

TEST(DrainingRead, AShortReadThatEmptiedTheSocketSkipsTheNextSpeculativeRecv) {
  if (!kReactorSeam) GTEST_SKIP() << "reactor seam off (net/reactor_seam.h)";
  SocketPair pair;
  std::string got;
  // The read is queued before the bytes come, so the reactor performs it on their edge and no
  // edge is left over afterwards (a leftover one would rightly turn speculation back on).
  const auto read = pair.read_then_receive(got, "GET / HTTP/1.1\r\n\r\n");
  ASSERT_FALSE(read.error);
  // The point of the draining read; if Asio stops honouring it this fails, not just the bench.
  EXPECT_FALSE(next_read_is_speculative(pair.reader));
}

TEST(DrainingRead, AFinQueuedBehindTheBytesIsReadAtOnce) {
  SocketPair pair;
  std::string got;
  pair.send("tail");
  pair.peer.shutdown(asio::socket_base::shutdown_send);  // the FIN lands before the read below
  std::this_thread::sleep_for(20ms);
  ASSERT_FALSE(pair.read(got, 64).error);
  EXPECT_EQ(got, "tail");
  EXPECT_TRUE(next_read_is_speculative(pair.reader)) << "TCP_CM_INQ said a FIN is left";
  // No further event will come for that FIN; the next read must still end the stream now.
  const auto end = pair.read(got, 64, 1s);
  EXPECT_EQ(end.error, asio::error::eof) << end.error.message();
}

TEST(ReceiveQueueHint, ABodyReadAfterADrainingReadSeesAResetQueuedBehindTheHead) {
  SocketPair pair;
  std::string got;
  pair.send("POST / HTTP/1.1\r\nContent-Length: 9\r\n\r\npart");
  pair.peer.set_option(asio::socket_base::linger(true, 0));
  pair.peer.close();  // RST, queued behind the bytes before the read below
  std::this_thread::sleep_for(20ms);
  pair.let_reactor_consume_edges();
  ASSERT_FALSE(pair.read(got, 256).error);
  // TCP_CM_INQ does not count the reset, so the draining read concluded "empty"; a stock read
  // after it must try its recv() again, or the reset waits for an edge that already went by.
  note_receive_queue_unknown(pair.reader);
  std::string buffer(64, '\0');
  std::error_code ec;
  bool done = false;
  pair.reader.async_read_some(asio::buffer(buffer), [&](std::error_code e, size_t) {
    ec = e;
    done = true;
  });
  pair.io.restart();
  for (int i = 0; i < 100 && !done; ++i) pair.io.run_for(10ms);
  ASSERT_TRUE(done) << "the reset was not seen";
  EXPECT_EQ(ec, asio::error::connection_reset) << ec.message();
}

TEST(ReceiveQueueHint, AQuietProbeLetsTheNextReadWaitForData) {
  if (!kReactorSeam) GTEST_SKIP() << "reactor seam off (net/reactor_seam.h)";
  SocketPair pair;
  std::string got;
  char byte;  // the pool's checkout probe
  ASSERT_EQ(::recv(pair.reader.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT), -1);
  ASSERT_EQ(errno, EAGAIN);
  note_receive_queue_empty(pair.reader);
  EXPECT_FALSE(next_read_is_speculative(pair.reader));
  const auto read = pair.read_then_receive(got, "HTTP/1.1 200 OK\r\n");
  ASSERT_FALSE(read.error) << read.error.message();
  EXPECT_EQ(got, "HTTP/1.1 200 OK\r\n");
}

TEST(ReceiveQueueHint, BytesWhoseEdgeTheReactorSawBeforeTheReadAreNotLost) {
  SocketPair pair;
  std::string got;
  note_receive_queue_empty(pair.reader);
  pair.send("early");
  pair.let_reactor_consume_edges();
  EXPECT_TRUE(next_read_is_speculative(pair.reader));
  const auto read = pair.read(got, 64, 1s);
  ASSERT_FALSE(read.error) << read.error.message();
  EXPECT_EQ(got, "early");
}

// Request/response ping-pong in one io_context, both directions through draining reads, as on
// the data path: each side's read is queued right after a short read. A lost edge stalls it.
TEST(DrainingRead, PingPongNeverStalls) {
  SocketPair pair;
  constexpr int kRounds = 2000;
  int pongs = 0;
  bool stalled = false;
  asio::co_spawn(
      pair.io,
      [&]() -> Task<void> {  // echo side
        std::array<char, 256> buffer{};
        for (;;) {
          auto got = to_result(co_await read_some_draining(pair.reader, asio::buffer(buffer)));
          if (got.error) co_return;
          auto sent =
              to_result(co_await write_all(pair.reader, asio::buffer(buffer.data(), got.bytes)));
          if (sent.error) co_return;
        }
      },
      asio::detached);
  asio::co_spawn(
      pair.io,
      [&]() -> Task<void> {  // client side
        std::array<char, 256> buffer{};
        const std::string ping = "ping";
        for (int i = 0; i < kRounds; ++i) {
          auto sent = to_result(co_await write_all(pair.peer, asio::buffer(ping)));
          if (sent.error) break;
          auto got = to_result(co_await read_some_draining(pair.peer, asio::buffer(buffer)));
          if (got.error || got.bytes != ping.size()) break;
          ++pongs;
        }
        pair.peer.shutdown(asio::socket_base::shutdown_send);
      },
      asio::detached);
  Timer guard(pair.io, 20s);
  guard.async_wait([&](std::error_code ec) {
    if (ec) return;
    stalled = true;
    pair.io.stop();
  });
  for (int i = 0; i < 2000 && pongs < kRounds && !stalled; ++i) pair.io.run_for(10ms);
  guard.cancel();
  EXPECT_FALSE(stalled);
  EXPECT_EQ(pongs, kRounds);
}

}  // namespace
}  // namespace needle::net
