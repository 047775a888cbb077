// The client watch with real loopback sockets: a close or reset while it looks is an abort
// (whether it came before or after the look started), bytes are not and stay in the socket,
// disarm cancels only the look, and a stale look's completion never touches a newer one.
#include "proxy/client_abort_watch.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>

#include <chrono>
#include <string>
#include <string_view>
#include <thread>

#include <asio/read.hpp>
#include <asio/write.hpp>

#include "net/draining_read.h"
#include "net/receive_queue_hint.h"
#include "unit/net/loopback_pair.h"

namespace needle::proxy {
namespace {

using namespace std::chrono_literals;
using State = ClientAbortWatch::State;

struct WatchFixture : ::testing::Test {
  net::LoopbackPair pair;
  int aborts = 0;
  ClientAbortWatch watch{pair.accepted, [this] { ++aborts; }};

  template <typename Done>
  void run_until(Done done) {
    const auto give_up = std::chrono::steady_clock::now() + 2s;
    while (!done() && std::chrono::steady_clock::now() < give_up) {
      pair.io.run_for(10ms);
      pair.io.restart();
    }
  }
  void settle() {
    pair.io.run_for(50ms);
    pair.io.restart();
  }
  // Armed in sweep 0 and looked at by sweep 1, as the worker's second sweep does.
  void start_looking() {
    watch.arm(0);
    watch.look_if_armed_before(1);
    ASSERT_EQ(watch.state(), State::looking);
  }
  void wait_readable() {
    pollfd readable{pair.accepted.native_handle(), POLLIN, 0};
    ASSERT_EQ(::poll(&readable, 1, 1000), 1);
  }
  void peer_resets() {
    const linger abort_on_close{1, 0};
    ::setsockopt(pair.peer.native_handle(), SOL_SOCKET, SO_LINGER, &abort_on_close,
                 sizeof abort_on_close);
    pair.peer.close();
  }
};

TEST_F(WatchFixture, LooksOnlyOnceASweepPeriodHasPassedSinceArming) {
  watch.arm(5);
  watch.look_if_armed_before(5);  // the first sweep after arming: too early
  EXPECT_EQ(watch.state(), State::armed);
  watch.look_if_armed_before(6);
  EXPECT_EQ(watch.state(), State::looking);
}

TEST_F(WatchFixture, ClientCloseWhileLookingIsAnAbort) {
  start_looking();
  settle();
  EXPECT_EQ(aborts, 0);
  pair.peer.close();
  run_until([&] { return aborts > 0; });
  EXPECT_EQ(aborts, 1);
  EXPECT_TRUE(watch.aborted());
  watch.disarm();  // the exchange ends: the abort stays visible until the next arm
  EXPECT_TRUE(watch.aborted());
  watch.arm(1);
  EXPECT_EQ(watch.state(), State::armed);
}

TEST_F(WatchFixture, ResetWhileLookingIsAnAbort) {
  start_looking();
  peer_resets();
  run_until([&] { return aborts > 0; });
  EXPECT_EQ(aborts, 1);
  EXPECT_TRUE(watch.aborted());
}

// The head read emptied the queue (the reactor's speculative flag is off), then the FIN came
// while nothing read the socket: its edge was harvested with no operation queued. The look must
// still see it (the reactor turned speculation back on at that edge).
TEST_F(WatchFixture, CloseThatCameBeforeTheLookIsCaught) {
  asio::write(pair.peer, asio::buffer(std::string_view("GET / HTTP/1.1\r\nHost: x\r\n\r\n")));
  wait_readable();
  char head[256];
  std::error_code read_error;
  size_t read_bytes = 0;
  pair.accepted.async_read_some(net::DrainingBuffer(asio::buffer(head)),
                                [&](std::error_code ec, size_t n) {
                                  read_error = ec;
                                  read_bytes = n;
                                });
  run_until([&] { return read_bytes > 0 || read_error; });
  ASSERT_FALSE(read_error);
  EXPECT_FALSE(net::next_read_is_speculative(pair.accepted));
  pair.peer.shutdown(asio::socket_base::shutdown_send);
  wait_readable();
  settle();  // the reactor harvests the FIN's edge; nothing is queued on the socket
  start_looking();
  run_until([&] { return aborts > 0; });
  EXPECT_EQ(aborts, 1);
}

TEST_F(WatchFixture, PipelinedBytesAreNotAnAbortAndStayInTheSocket) {
  start_looking();
  const std::string next = "GET /next HTTP/1.1\r\nHost: x\r\n\r\n";
  asio::write(pair.peer, asio::buffer(next));
  run_until([&] { return watch.state() != State::looking; });
  EXPECT_EQ(watch.state(), State::done);
  EXPECT_EQ(aborts, 0);
  // Nothing was consumed: the session's next head read gets the whole request.
  std::string got(next.size(), '\0');
  pair.accepted.non_blocking(false);
  EXPECT_EQ(asio::read(pair.accepted, asio::buffer(got)), next.size());
  EXPECT_EQ(got, next);
  // Done means done: a close after the bytes is for the next head read to find.
  pair.peer.close();
  settle();
  EXPECT_EQ(aborts, 0);
}

TEST_F(WatchFixture, BytesAlreadyThereWhenTheLookStartsAreNotAnAbort) {
  asio::write(pair.peer, asio::buffer(std::string_view("GET /next HTTP/1.1\r\n")));
  wait_readable();
  start_looking();
  run_until([&] { return watch.state() != State::looking; });
  EXPECT_EQ(watch.state(), State::done);
  EXPECT_EQ(aborts, 0);
}

// A write to the client (the response) may be under way when the watch stops: disarm cancels
// the look only.
TEST_F(WatchFixture, DisarmCancelsTheLookButNotAWriteInProgress) {
  start_looking();
  const std::string big(8 << 20, 'r');  // more than the socket buffers: the write must wait
  std::error_code write_error = asio::error::would_block;
  size_t written = 0;
  asio::async_write(pair.accepted, asio::buffer(big), [&](std::error_code ec, size_t n) {
    write_error = ec;
    written = n;
  });
  settle();
  ASSERT_EQ(write_error, asio::error::would_block) << "the write did not wait";
  watch.disarm();
  EXPECT_EQ(watch.state(), State::off);
  settle();
  EXPECT_EQ(write_error, asio::error::would_block) << write_error.message();
  // The peer reads everything: the write completes whole.
  std::thread reader([&] {
    std::string sink(big.size(), '\0');
    std::error_code ec;
    asio::read(pair.peer, asio::buffer(sink), ec);
  });
  run_until([&] { return write_error != asio::error::would_block; });
  reader.join();
  EXPECT_FALSE(write_error) << write_error.message();
  EXPECT_EQ(written, big.size());
  // And no look is left: a close now is not an abort.
  pair.peer.close();
  settle();
  EXPECT_EQ(aborts, 0);
  EXPECT_EQ(watch.state(), State::off);
}

// The cancelled look of the previous exchange completes after the next one's look started: it
// must neither end nor abort the new look.
TEST_F(WatchFixture, StaleCancelledLookDoesNotDisturbTheNextOne) {
  start_looking();
  watch.disarm();  // its completion (operation_aborted) is posted, not run yet
  start_looking();
  settle();
  EXPECT_EQ(watch.state(), State::looking);
  EXPECT_EQ(aborts, 0);
  pair.peer.close();
  run_until([&] { return aborts > 0; });
  EXPECT_EQ(aborts, 1);
}

// Someone else cancelled every operation on the socket (e.g. the exchange stopping a body read):
// the watch ends without an abort.
TEST_F(WatchFixture, SocketWideCancelEndsTheWatchWithoutAnAbort) {
  start_looking();
  pair.accepted.cancel();
  run_until([&] { return watch.state() != State::looking; });
  EXPECT_EQ(watch.state(), State::done);
  EXPECT_EQ(aborts, 0);
}

TEST(ClientAbortWatch, LookQueuedWhenTheWatchIsDestroyedCompletesHarmlessly) {
  net::LoopbackPair pair;
  int aborts = 0;
  {
    ClientAbortWatch watch(pair.accepted, [&] { ++aborts; });
    watch.arm(0);
    watch.look_if_armed_before(1);
  }
  pair.peer.close();
  pair.io.run_for(50ms);
  EXPECT_EQ(aborts, 0);
  pair.accepted.close();  // completes the queued look with operation_aborted, watch gone
  pair.io.restart();
  pair.io.run_for(50ms);
  EXPECT_EQ(aborts, 0);
}

}  // namespace
}  // namespace needle::proxy
