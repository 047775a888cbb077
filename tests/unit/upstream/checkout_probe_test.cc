// The checkout's skipped probe (docs/decisions/0004-checkout-probe-from-the-reactor.md) against
// the order in which Asio's epoll reactor does things within one epoll_wait batch, on real
// loopback sockets. The test plays the upstream and the session; the batch is built exactly:
// both events are in the sockets before the io_context runs, so one epoll_wait harvests both,
// and Linux reports ready descriptors in the order their events arrived (the epoll ready list
// is FIFO).
#include <sys/socket.h>

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/write.hpp>

#include "net/receive_queue_hint.h"
#include "net/socket_io.h"
#include "upstream/connection_pool.h"
#include "unit/upstream/io_stepping.h"

namespace needle::upstream {
namespace {

using namespace std::chrono_literals;
using asio::ip::tcp;

constexpr std::string_view kResponse = "HTTP/1.1 204 No Content\r\n\r\n";
constexpr std::string_view kPost = "POST /orders HTTP/1.1\r\nContent-Length: 0\r\n\r\n";

ReleaseInfo clean() {
  ReleaseInfo info;
  info.response_complete = true;
  info.upstream_keep_alive = true;
  return info;
}

// Whether a FIN (or bytes) waits in the socket's receive queue, without consuming it.
bool fin_queued(int fd) {
  char byte;
  return ::recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
}

class CheckoutProbeTest : public ::testing::Test {
 protected:
  CheckoutProbeTest() : acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {
    settings.idle.learn = false;
    // A known idle timeout, so a non-replayable request (a POST) may reuse a connection at all
    // (IdleTimeoutEstimator::non_replayable_limit).
    settings.idle.configured = 60s;
    settings.connect_timeout = 2s;
    settings.idle_watch_delay = 10s;  // no idle watch unless a test wants one
  }

  std::shared_ptr<HostPool>& pool() {
    if (!pool_) {
      pool_ = HostPool::create(io.get_executor(),
                               config::HostPort{"127.0.0.1", acceptor.local_endpoint().port()},
                               settings, SteadyClock::instance());
    }
    return pool_;
  }

  bool run_until(const std::function<bool()>& done, Duration timeout = 2s) {
    return io_stepping::run_until(io, done, timeout);
  }
  void run_for(Duration d) { io_stepping::run_for(io, d); }

  // A connection through the pool plus the upstream's end of it.
  struct Pair {
    ConnectionLease lease;
    net::Socket upstream;
  };
  Pair connect_pair() {
    std::optional<ConnectResult> result;
    asio::co_spawn(io, pool()->connect(),
                   [&](std::exception_ptr, ConnectResult r) { result = std::move(r); });
    EXPECT_TRUE(run_until([&] { return result.has_value(); }, 10s));
    EXPECT_TRUE(result && result->cause == Cause::none);
    return {result ? std::move(result->lease) : ConnectionLease(), acceptor.accept()};
  }

  // One exchange as the proxy reads it: the draining response read is queued first, the
  // upstream answers, the reactor performs the read on the answer's edge. The read leaves the
  // reactor's flag off (nothing behind the response), and the connection goes back idle.
  // Returns its socket, which lives on in the pool while the connection stays idle.
  net::Socket* exchange_and_release(Pair& p) {
    std::optional<net::IoResult> read;
    asio::co_spawn(
        io,
        [&]() -> net::Task<void> {
          read = net::to_result(
              co_await net::read_some_draining(p.lease->socket(), asio::buffer(buf_)));
        },
        asio::detached);
    run_for(2ms);
    asio::write(p.upstream, asio::buffer(kResponse));
    std::this_thread::sleep_for(2ms);
    EXPECT_TRUE(run_until([&] { return read.has_value(); }));
    EXPECT_TRUE(read && !read->error && read->bytes == kResponse.size());
    net::Socket* socket = &p.lease->socket();
    p.lease.release(clean());
    EXPECT_EQ(pool()->idle_count(), 1u);
    return socket;
  }

  // Queues A's response read (nothing to read yet), whose handler is the session's next step:
  // it runs `then`, as a session checks out a connection for its next request.
  void on_response_of(Pair& a, std::function<void()> then) {
    a.lease->socket().async_read_some(net::DrainingBuffer(asio::buffer(a_buffer_)),
                                      [then = std::move(then)](std::error_code ec, size_t) {
                                        EXPECT_FALSE(ec) << ec.message();
                                        then();
                                      });
  }

  // What the session does with the connection the checkout handed out for a POST: writes the
  // request (net::write_now, as the exchange's first write) and reads the response. `sent` gets
  // the bytes the kernel accepted, `answer` the response read's outcome.
  void post_on(ConnectionLease& lease, net::IoResult& sent, std::optional<net::IoResult>& answer) {
    std::vector<asio::const_buffer> out{asio::buffer(kPost)};
    net::write_now(lease->socket(), out, sent);
    asio::co_spawn(
        io,
        [&]() -> net::Task<void> {
          answer =
              net::to_result(co_await net::read_some_draining(lease->socket(), asio::buffer(buf_)));
        },
        asio::detached);
  }

  uint64_t probe_evictions() {
    return pool()->counters().evicted_for(EvictReason::checkout_probe_failed);
  }

  asio::io_context io{1};
  asio::executor_work_guard<asio::io_context::executor_type> work{io.get_executor()};
  net::Acceptor acceptor;
  PoolSettings settings;
  std::shared_ptr<HostPool> pool_;
  char buf_[1024];
  char a_buffer_[256];
};

// The batch of issue 17: epoll_wait returns [A's response bytes, B's FIN]. A's read completes
// in the first descriptor's step and its handler (the session: response done, next request, a
// POST) checks out B before the reactor has performed B's event, so B's flag is still off with
// the FIN queued. The flag alone said "quiet" here and handed B out (then the POST met EOF after
// its bytes were sent: FinAfterTheLastEpollWait... below); the checkout must probe.
TEST_F(CheckoutProbeTest, FinHarvestedBehindTheCheckingOutHandlerIsProbed) {
  Pair a = connect_pair();
  Pair b = connect_pair();
  net::Socket* b_socket = exchange_and_release(b);
  const int b_fd = b_socket->native_handle();
  run_for(2ms);  // nothing left in the scheduler's queue

  bool handler_ran = false;
  bool fin_queued_at_checkout = false;
  bool flag_off_at_checkout = false;
  ConnectionLease handed_out;
  on_response_of(a, [&] {
    handler_ran = true;
    fin_queued_at_checkout = fin_queued(b_fd);
    flag_off_at_checkout = !net::next_read_is_speculative(*b_socket);
    handed_out = pool()->checkout_idle(/*request_replayable=*/false);
  });
  // Both events before the reactor looks: A's bytes first, then B's FIN (the upstream closing
  // B, as at a restart).
  asio::write(a.upstream, asio::buffer(kResponse));
  b.upstream.close();
  std::this_thread::sleep_for(5ms);
  ASSERT_TRUE(run_until([&] { return handler_ran; }));

  // The batch really was the dangerous one: FIN queued, reactor's flag not yet on.
  EXPECT_TRUE(fin_queued_at_checkout);
  if (net::kReactorSeam) {
    EXPECT_TRUE(flag_off_at_checkout) << "B's event ran before A's: not the batch meant";
  }
  EXPECT_FALSE(handed_out) << "a connection with a FIN queued was handed out for a POST";
  EXPECT_EQ(pool()->counters().probes_skipped, 0u);
  EXPECT_EQ(probe_evictions(), 1u);
}

// The other order, [B's FIN, A's response bytes]: the reactor performs B's event first and
// turns its flag on before A's handler checks out.
TEST_F(CheckoutProbeTest, FinHarvestedAheadOfTheCheckingOutHandlerIsProbed) {
  Pair a = connect_pair();
  Pair b = connect_pair();
  net::Socket* b_socket = exchange_and_release(b);
  run_for(2ms);

  bool handler_ran = false;
  bool flag_on_at_checkout = false;
  ConnectionLease handed_out;
  on_response_of(a, [&] {
    handler_ran = true;
    flag_on_at_checkout = net::next_read_is_speculative(*b_socket);
    handed_out = pool()->checkout_idle(/*request_replayable=*/false);
  });
  b.upstream.close();
  asio::write(a.upstream, asio::buffer(kResponse));
  std::this_thread::sleep_for(5ms);
  ASSERT_TRUE(run_until([&] { return handler_ran; }));

  EXPECT_TRUE(flag_on_at_checkout);
  EXPECT_FALSE(handed_out);
  EXPECT_EQ(probe_evictions(), 1u);
}

// The idle watch's first receive (at arming, speculative) that meets a FIN completes at once,
// its handler posted; until it runs the connection is still idle. Asio's stock receive turned
// the flag off at that end of stream ("exhausted"), so a checkout in between skipped the probe
// and handed the closed connection out. The watch's draining receive leaves the flag on.
TEST_F(CheckoutProbeTest, IdleWatchThatMeetsAFinLeavesTheCheckoutProbing) {
  settings.idle_watch_delay = 5ms;
  Pair b = connect_pair();
  exchange_and_release(b);
  b.upstream.close();  // harvested while nothing reads B (flag on), before the watch is armed
  // Step handler by handler until the window timer has armed the watch; its completion is
  // posted, not yet run.
  ASSERT_TRUE(run_until([&] { return pool()->watched_count() == 1; }, 1s));
  ConnectionLease handed_out = pool()->checkout_idle(/*request_replayable=*/false);
  EXPECT_FALSE(handed_out) << "a connection with a FIN queued was handed out for a POST";
  EXPECT_EQ(pool()->counters().probes_skipped, 0u);
  EXPECT_EQ(probe_evictions(), 1u);
}

// What the skip still cannot see, and what it costs: a FIN that arrives after the last
// epoll_wait (here: while the handler that checks out runs). The reactor vouches for B. For a
// replayable request B is handed out, and the safety net of a failed first write does not catch
// it: a socket that only received a FIN still takes the request (all of it), and the response
// read meets end of stream (or the RST the upstream answers the request with) before any
// response byte. The exchange classifies that as reset_before_response_on_reused with request
// bytes sent, which RetryPolicy retries for a replayable request on a fresh connection. A
// non-replayable request would get a 502 there (tests/unit/proxy/retry_policy_test.cc,
// "reused_post_no_key"), so its checkout never skips the probe (decision 0004, "Same batch"):
// the probe sees the FIN and evicts B.
class FinAfterTheLastEpollWait : public CheckoutProbeTest {
 protected:
  // Checks B out from inside A's response handler, right after B's peer closed.
  ConnectionLease checkout_while_b_closes(bool request_replayable, Pair& a, Pair& b) {
    bool handler_ran = false;
    ConnectionLease handed_out;
    on_response_of(a, [&] {
      handler_ran = true;
      b.upstream.close();  // on loopback the FIN is in B's queue when close() returns
      handed_out = pool()->checkout_idle(request_replayable);
      if (handed_out) post_on(handed_out, sent_, answer_);
    });
    asio::write(a.upstream, asio::buffer(kResponse));
    EXPECT_TRUE(run_until([&] { return handler_ran; }));
    return handed_out;
  }
  net::IoResult sent_;
  std::optional<net::IoResult> answer_;
};

TEST_F(FinAfterTheLastEpollWait, ReplayableRequestIsHandedOutAndMeetsTheFinAfterItsBytes) {
  if (!net::kReactorSeam) GTEST_SKIP() << "seam off: every checkout probes";
  Pair a = connect_pair();
  Pair b = connect_pair();
  exchange_and_release(b);
  run_for(2ms);
  ConnectionLease handed_out = checkout_while_b_closes(/*request_replayable=*/true, a, b);
  ASSERT_TRUE(handed_out);
  EXPECT_EQ(pool()->counters().probes_skipped, 1u);
  EXPECT_FALSE(sent_.error) << sent_.error.message();
  EXPECT_EQ(sent_.bytes, kPost.size()) << "the first write does not fail on a FIN alone";
  ASSERT_TRUE(run_until([&] { return answer_.has_value(); }));
  EXPECT_TRUE(answer_->error == asio::error::eof ||
              answer_->error == asio::error::connection_reset)
      << answer_->error.message();
  EXPECT_EQ(answer_->bytes, 0u);
}

TEST_F(FinAfterTheLastEpollWait, NonReplayableRequestIsProbedAndNeverHandedOut) {
  Pair a = connect_pair();
  Pair b = connect_pair();
  exchange_and_release(b);
  run_for(2ms);
  ConnectionLease handed_out = checkout_while_b_closes(/*request_replayable=*/false, a, b);
  EXPECT_FALSE(handed_out) << "a connection with a FIN queued was handed out for a POST";
  EXPECT_EQ(pool()->counters().probes_skipped, 0u);
  EXPECT_EQ(probe_evictions(), 1u);
}

}  // namespace
}  // namespace needle::upstream
