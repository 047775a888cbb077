// HostPool with real loopback sockets: the test plays the upstream with an acceptor on
// 127.0.0.1:0 and runs the io_context itself.
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <optional>
#include <thread>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/read.hpp>
#include <asio/write.hpp>
#include <gtest/gtest.h>

#include "net/receive_queue_hint.h"
#include "net/socket_io.h"
#include "support/time_scale.h"
#include "upstream/connection_pool.h"
#include "unit/upstream/io_stepping.h"

namespace needle::upstream {
namespace {

using namespace std::chrono_literals;
using asio::ip::tcp;

ReleaseInfo outcome(bool response_complete, bool upstream_keep_alive) {
  ReleaseInfo info;
  info.response_complete = response_complete;
  info.upstream_keep_alive = upstream_keep_alive;
  return info;
}
ReleaseInfo clean() { return outcome(true, true); }

class HostPoolTest : public ::testing::Test {
 protected:
  HostPoolTest() : acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {
    settings.idle.learn = false;
    settings.connect_timeout = 2s;
  }

  std::shared_ptr<HostPool>& pool() {
    if (!pool_) pool_ = make_pool(acceptor.local_endpoint().port());
    return pool_;
  }
  std::shared_ptr<HostPool> make_pool(uint16_t port, std::string host = "127.0.0.1") {
    return HostPool::create(io.get_executor(), config::HostPort{std::move(host), port}, settings,
                            SteadyClock::instance());
  }

  // Runs the io_context until `done` or `timeout`; true if done.
  bool run_until(const std::function<bool()>& done, Duration timeout = 2s) {
    return io_stepping::run_until(io, done, timeout);
  }
  void run_for(Duration d) { io_stepping::run_for(io, d); }

  ConnectResult connect(HostPool& p) {
    std::optional<ConnectResult> result;
    asio::co_spawn(io, p.connect(),
                   [&](std::exception_ptr, ConnectResult r) { result = std::move(r); });
    EXPECT_TRUE(run_until([&] { return result.has_value(); }, 10s));
    return result ? std::move(*result) : ConnectResult{};
  }

  // A connection through the pool plus the upstream's end of it.
  struct Pair {
    ConnectionLease lease;
    net::Socket upstream;
  };
  Pair connect_pair() {
    ConnectResult r = connect(*pool());
    EXPECT_EQ(r.cause, Cause::none) << r.error.message();
    net::Socket upstream = acceptor.accept();  // already in the accept queue
    return {std::move(r.lease), std::move(upstream)};
  }
  // Connected, one clean exchange "done", back in the pool as idle.
  net::Socket idle_connection(uint64_t* id = nullptr) {
    Pair p = connect_pair();
    if (id) *id = p.lease->id();
    p.lease.release(clean());
    return std::move(p.upstream);
  }

  // The pool side reads as an exchange does: its draining read is queued first (nothing to
  // read yet), then the upstream does `answer` (all of it delivered before the reactor looks),
  // and the reactor performs the read on the answer's edge. Returns the bytes read (0 on error).
  size_t read_answer(Pair& p, const std::function<void()>& answer) {
    std::optional<net::IoResult> read;
    asio::co_spawn(
        io,
        [&]() -> net::Task<void> {
          read = net::to_result(
              co_await net::read_some_draining(p.lease->socket(), asio::buffer(buf_)));
        },
        asio::detached);
    run_for(2ms);
    EXPECT_FALSE(read.has_value()) << "the read should wait for the answer";
    answer();
    std::this_thread::sleep_for(2ms);
    EXPECT_TRUE(run_until([&] { return read.has_value(); }));
    return read && !read->error ? read->bytes : 0;
  }
  size_t answer_and_read(Pair& p) {
    return read_answer(p, [&] { asio::write(p.upstream, asio::buffer(kResponse)); });
  }
  // The one idle connection is looked at (not skipped), found closed and evicted.
  void expect_checkout_probes_and_evicts() {
    EXPECT_FALSE(pool()->checkout_idle(true));
    EXPECT_EQ(evicted(EvictReason::checkout_probe_failed), 1u);
    EXPECT_EQ(pool()->counters().probes_skipped, 0u);
  }
  static constexpr std::string_view kResponse = "HTTP/1.1 204 No Content\r\n\r\n";
  char buf_[1024];

  static bool sees_eof(net::Socket& s) {
    char byte;
    std::error_code ec;
    s.non_blocking(false);
    s.read_some(asio::buffer(&byte, 1), ec);
    return ec == asio::error::eof || ec == asio::error::connection_reset;
  }

  uint64_t evicted(EvictReason r) { return pool()->counters().evicted_for(r); }

  asio::io_context io;
  // As in a worker: the io_context never runs out of work, so a handler posted after an idle
  // stretch (the pool's deferred idle watch) still runs.
  asio::executor_work_guard<asio::io_context::executor_type> work{io.get_executor()};
  net::Acceptor acceptor;
  PoolSettings settings;
  std::shared_ptr<HostPool> pool_;
};

TEST_F(HostPoolTest, ConnectGivesAFreshLease) {
  Pair p = connect_pair();
  ASSERT_TRUE(p.lease);
  EXPECT_FALSE(p.lease->reused());
  EXPECT_EQ(pool()->busy_count(), 1u);
  EXPECT_EQ(pool()->active_requests(), 1u);
  EXPECT_EQ(pool()->counters().opened, 1u);
  tcp::no_delay nodelay;
  p.lease->socket().get_option(nodelay);
  EXPECT_TRUE(nodelay.value());
}

TEST_F(HostPoolTest, ConnectsInFlightCountAsActive) {
  std::optional<ConnectResult> result;
  asio::co_spawn(io, pool()->connect(),
                 [&](std::exception_ptr, ConnectResult r) { result = std::move(r); });
  io.poll();  // started, not finished: the handshake completes in a later reactor round
  if (!result) {
    EXPECT_EQ(pool()->active_requests(), 1u);
  }
  ASSERT_TRUE(run_until([&] { return result.has_value(); }));
  EXPECT_EQ(pool()->active_requests(), 1u);  // now as a lease
  result.reset();
  EXPECT_EQ(pool()->active_requests(), 0u);
}

TEST_F(HostPoolTest, ReleasedConnectionIsReusedLifo) {
  Pair a = connect_pair();
  Pair b = connect_pair();
  uint64_t a_id = a.lease->id(), b_id = b.lease->id();
  a.lease.release(clean());
  b.lease.release(clean());
  EXPECT_EQ(pool()->idle_count(), 2u);
  ConnectionLease first = pool()->checkout_idle(true);
  ASSERT_TRUE(first);
  EXPECT_EQ(first->id(), b_id);
  EXPECT_TRUE(first->reused());
  EXPECT_EQ(first->requests_done(), 1u);
  ConnectionLease second = pool()->checkout_idle(true);
  ASSERT_TRUE(second);
  EXPECT_EQ(second->id(), a_id);
  EXPECT_FALSE(pool()->checkout_idle(true));
  EXPECT_EQ(pool()->counters().reused, 2u);
}

TEST_F(HostPoolTest, ReusedConnectionCarriesTraffic) {
  Pair p = connect_pair();
  p.lease.release(clean());
  ConnectionLease lease = pool()->checkout_idle(true);
  ASSERT_TRUE(lease);
  run_for(5ms);  // the cancelled watch completes with operation_aborted, touching nothing
  asio::write(p.upstream, asio::buffer("pong", 4));
  char buf[4];
  std::error_code ec;
  asio::read(lease->socket(), asio::buffer(buf), ec);
  EXPECT_FALSE(ec);
  EXPECT_EQ(std::string_view(buf, 4), "pong");
  EXPECT_EQ(pool()->busy_count(), 1u);
}

TEST_F(HostPoolTest, IdleFinEvictsWithinMilliseconds) {
  net::Socket upstream = idle_connection();
  run_for(60ms);
  auto closed_at = std::chrono::steady_clock::now();
  upstream.close();
  ASSERT_TRUE(run_until([&] { return pool()->idle_count() == 0; }));
  auto latency = std::chrono::steady_clock::now() - closed_at;
  EXPECT_LT(latency, test::scaled(10ms));
  EXPECT_EQ(evicted(EvictReason::upstream_closed_idle), 1u);
  ASSERT_TRUE(pool()->estimator().learned());
  EXPECT_GE(*pool()->estimator().learned(), 60ms);
  EXPECT_LT(*pool()->estimator().learned(), 60ms + test::scaled(30ms));
}

TEST_F(HostPoolTest, IdleRstEvicts) {
  net::Socket upstream = idle_connection();
  upstream.set_option(asio::socket_base::linger(true, 0));
  upstream.close();  // SO_LINGER 0: RST instead of FIN
  ASSERT_TRUE(run_until([&] { return pool()->idle_count() == 0; }));
  EXPECT_EQ(evicted(EvictReason::upstream_closed_idle), 1u);
}

TEST_F(HostPoolTest, IdleStrayBytesEvict) {
  net::Socket upstream = idle_connection();
  asio::write(upstream, asio::buffer("HTTP/1.1 408 Request Timeout\r\n\r\n"));
  ASSERT_TRUE(run_until([&] { return pool()->idle_count() == 0; }));
  EXPECT_EQ(evicted(EvictReason::stray_bytes_idle), 1u);
  EXPECT_TRUE(sees_eof(upstream));
}

TEST_F(HostPoolTest, CheckoutProbeCatchesACloseTheWatchHasNotSeen) {
  net::Socket upstream = idle_connection();
  run_for(20ms);
  upstream.close();
  std::this_thread::sleep_for(5ms);  // FIN delivered; the io_context does not run
  EXPECT_FALSE(pool()->checkout_idle(true));
  EXPECT_EQ(evicted(EvictReason::checkout_probe_failed), 1u);
  EXPECT_EQ(pool()->idle_count(), 0u);
  run_for(5ms);  // the aborted watch must not count a second eviction
  EXPECT_EQ(evicted(EvictReason::upstream_closed_idle), 0u);
}

TEST_F(HostPoolTest, WatchCompletionAfterCheckoutTouchesNothing) {
  uint64_t id = 0;
  net::Socket upstream = idle_connection(&id);
  // Several idle periods without letting any watch run: each arm supersedes the last.
  for (int i = 0; i < 3; ++i) {
    ConnectionLease lease = pool()->checkout_idle(true);
    ASSERT_TRUE(lease);
    lease.release(clean());
  }
  ConnectionLease lease = pool()->checkout_idle(true);
  ASSERT_TRUE(lease);
  asio::write(upstream, asio::buffer("x", 1));  // a response byte, now that it is busy
  run_for(10ms);
  EXPECT_EQ(pool()->busy_count(), 1u);
  for (auto& n : pool()->counters().evicted) EXPECT_EQ(n, 0u);
  lease.release(clean());  // a byte is pending: the fresh watch sees stray bytes at once
  ASSERT_TRUE(run_until([&] { return pool()->idle_count() == 0; }));
  EXPECT_EQ(evicted(EvictReason::stray_bytes_idle), 1u);
}

// The epoll reactor is edge-triggered: a FIN whose edge passed while the connection was busy
// never wakes a wait armed later. Release must look before it watches: the watch's receive is
// tried at once, and its completion (posted) evicts the connection.
TEST_F(HostPoolTest, FinThatArrivedWhileBusyEvictsAtRelease) {
  Pair p = connect_pair();
  p.upstream.close();
  run_for(10ms);  // the reactor sees (and consumes) the edge with no operation pending
  p.lease.release(clean());
  ASSERT_TRUE(run_until([&] { return pool()->idle_count() == 0; }));
  EXPECT_EQ(evicted(EvictReason::upstream_closed_idle), 1u);
}

// Connections released in one turn share one deferred arming: every one of them is watched,
// also one released again after a checkout in the same turn, and one released after the
// handler was posted.
TEST_F(HostPoolTest, ConnectionsReleasedInOneTurnAreAllWatched) {
  Pair a = connect_pair();
  Pair b = connect_pair();
  Pair c = connect_pair();
  a.lease.release(clean());
  b.lease.release(clean());
  ConnectionLease again = pool()->checkout_idle(true);  // LIFO: b, busy again before any watch
  ASSERT_TRUE(again);
  again.release(clean());
  c.lease.release(clean());
  ASSERT_EQ(pool()->idle_count(), 3u);
  run_for(10ms);
  a.upstream.close();
  b.upstream.close();
  c.upstream.close();
  ASSERT_TRUE(run_until([&] { return pool()->idle_count() == 0; }));
  EXPECT_EQ(evicted(EvictReason::upstream_closed_idle), 3u);
}

// A connection that is busy again within a window is never watched (no receive, no cancel);
// one left idle is watched after a whole window at least, never before.
TEST_F(HostPoolTest, ConnectionReusedWithinAWindowIsNeverWatched) {
  settings.idle_watch_delay = 200ms;
  Pair p = connect_pair();
  p.lease.release(clean());
  auto released = std::chrono::steady_clock::now();
  for (int i = 0; i < 10; ++i) {
    ConnectionLease lease = pool()->checkout_idle(true);
    ASSERT_TRUE(lease);
    run_for(1ms);
    lease.release(clean());
    released = std::chrono::steady_clock::now();
    run_for(1ms);
    EXPECT_EQ(pool()->watched_count(), 0u) << "round " << i;
  }
  ASSERT_TRUE(run_until([&] { return pool()->watched_count() == 1; }, 5s));
  EXPECT_GE(std::chrono::steady_clock::now() - released, 200ms);
  p.upstream.close();
  ASSERT_TRUE(run_until([&] { return pool()->idle_count() == 0; }));
  EXPECT_EQ(evicted(EvictReason::upstream_closed_idle), 1u);
}

// Until that completion runs the connection is still listed idle; a checkout in between must not
// hand it out (DESIGN.md rule 2: the checkout peek catches the FIN).
TEST_F(HostPoolTest, FinSeenAtReleaseIsNeverCheckedOut) {
  Pair p = connect_pair();
  p.upstream.close();
  run_for(10ms);
  p.lease.release(clean());
  EXPECT_FALSE(pool()->checkout_idle(true));  // no run() between release and checkout
  EXPECT_EQ(pool()->idle_count(), 0u);
  EXPECT_EQ(evicted(EvictReason::checkout_probe_failed), 1u);
}


// A response read that leaves the receive queue empty (TCP_CM_INQ 0) turns the reactor's
// speculative flag off; while no event arrives it stays off, and a young connection is handed
// out again without the recv(MSG_PEEK) probe.
TEST_F(HostPoolTest, DrainedResponseLetsTheNextCheckoutSkipTheProbe) {
  if (!net::kReactorSeam) GTEST_SKIP() << "reactor seam off: every checkout probes";
  Pair p = connect_pair();
  ASSERT_EQ(answer_and_read(p), kResponse.size());
  EXPECT_FALSE(net::next_read_is_speculative(p.lease->socket()));
  p.lease.release(clean());
  run_for(2ms);
  ConnectionLease lease = pool()->checkout_idle(true);
  ASSERT_TRUE(lease);
  EXPECT_EQ(pool()->counters().probes_skipped, 1u);
  // The connection really is good: the next exchange goes through.
  asio::write(lease->socket(), asio::buffer("GET / HTTP/1.1\r\n\r\n", 18));
  char request[18];
  asio::read(p.upstream, asio::buffer(request));
  EXPECT_EQ(std::string_view(request, 4), "GET ");
}

// Any event after the drain point (here a FIN, harvested by the reactor while nothing reads the
// socket and the idle watch is not armed yet) turns the flag back on: the checkout probes.
TEST_F(HostPoolTest, EventAfterTheDrainedResponseMakesTheCheckoutProbe) {
  settings.idle_watch_delay = 10s;  // no idle watch: only the reactor's flag can tell
  Pair p = connect_pair();
  ASSERT_EQ(answer_and_read(p), kResponse.size());
  p.lease.release(clean());
  p.upstream.close();
  run_for(5ms);
  expect_checkout_probes_and_evicts();
}

// Bytes left behind by the last read (here, a FIN queued behind the response, which TCP_CM_INQ
// counts) keep the flag on: the checkout probes and evicts, with no event needed.
TEST_F(HostPoolTest, FinQueuedBehindTheResponseIsProbed) {
  settings.idle_watch_delay = 10s;
  Pair p = connect_pair();
  ASSERT_EQ(read_answer(p,
                        [&] {
                          asio::write(p.upstream, asio::buffer(kResponse));
                          p.upstream.shutdown(asio::socket_base::shutdown_send);
                        }),
            kResponse.size());
  EXPECT_TRUE(net::next_read_is_speculative(p.lease->socket()));
  p.lease.release(clean());
  expect_checkout_probes_and_evicts();  // no run() in between
}

// What the flag cannot see: a RST that arrived with the response's last bytes (TCP_CM_INQ does
// not count sk_err). Then the request's first write fails before any byte leaves, which is what
// lets RetryPolicy send any method again (request_bytes_sent false).
TEST_F(HostPoolTest, RstBehindTheResponseFailsTheFirstWriteWithNothingSent) {
  if (!net::kReactorSeam) GTEST_SKIP() << "reactor seam off: every checkout probes";
  settings.idle_watch_delay = 10s;
  Pair p = connect_pair();
  ASSERT_EQ(read_answer(p,
                        [&] {
                          asio::write(p.upstream, asio::buffer(kResponse));
                          p.upstream.set_option(asio::socket_base::linger(true, 0));
                          p.upstream.close();  // RST right behind the response
                        }),
            kResponse.size());
  p.lease.release(clean());
  // Handed out unprobed (this is the case the flag cannot see; a kernel whose TCP_CM_INQ
  // counted the RST would make the checkout probe and evict instead).
  ConnectionLease lease = pool()->checkout_idle(true);
  ASSERT_TRUE(lease);
  EXPECT_EQ(pool()->counters().probes_skipped, 1u);
  std::string request = "POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n";
  std::vector<asio::const_buffer> out{asio::buffer(request)};
  net::IoResult written;
  net::write_now(lease->socket(), out, written);
  EXPECT_TRUE(written.error);
  EXPECT_EQ(written.bytes, 0u);
}

TEST_F(HostPoolTest, ExpiryTimerClosesAtTheLimit) {
  settings.idle.configured = 150ms;  // limit 150 - 100 = 50 ms
  auto start = std::chrono::steady_clock::now();
  net::Socket upstream = idle_connection();
  ASSERT_TRUE(run_until([&] { return pool()->idle_count() == 0; }));
  auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_GE(elapsed, 50ms);
  EXPECT_LT(elapsed, 50ms + test::scaled(40ms));
  EXPECT_EQ(evicted(EvictReason::idle_limit), 1u);
  EXPECT_TRUE(sees_eof(upstream));
}

TEST_F(HostPoolTest, HintShortensTheLimit) {
  Pair p = connect_pair();
  ReleaseInfo info = clean();
  info.keep_alive_hint = 1s;
  p.lease.release(info);
  EXPECT_EQ(pool()->estimator().hint(), 1s);
  EXPECT_EQ(pool()->estimator().effective_limit(), 900ms);
  EXPECT_EQ(pool()->estimator().source(), IdleLimitSource::hint);
}

TEST_F(HostPoolTest, LeaseDestroyedWithoutReleaseCloses) {
  Pair p = connect_pair();
  p.lease = ConnectionLease();  // move-assign drops the held connection
  EXPECT_EQ(pool()->busy_count(), 0u);
  EXPECT_EQ(pool()->idle_count(), 0u);
  EXPECT_EQ(evicted(EvictReason::not_reusable), 1u);
  EXPECT_TRUE(sees_eof(p.upstream));
  {
    Pair q = connect_pair();
    net::Socket upstream = std::move(q.upstream);
    q.lease.connection();  // (in use)
  }
  EXPECT_EQ(evicted(EvictReason::not_reusable), 2u);
}

TEST_F(HostPoolTest, NotReusableResponseCloses) {
  Pair p = connect_pair();
  p.lease.release(outcome(true, false));
  EXPECT_EQ(pool()->idle_count(), 0u);
  EXPECT_TRUE(sees_eof(p.upstream));
}

TEST_F(HostPoolTest, DrainClosesIdleAndLaterReleases) {
  net::Socket idle_upstream = idle_connection();
  Pair busy = connect_pair();
  pool()->drain();
  EXPECT_EQ(pool()->idle_count(), 0u);
  EXPECT_TRUE(sees_eof(idle_upstream));
  busy.lease.release(clean());
  EXPECT_EQ(pool()->idle_count(), 0u);
  EXPECT_EQ(evicted(EvictReason::draining), 2u);
}

TEST_F(HostPoolTest, DestroyingThePoolClosesIdleSockets) {
  settings.idle.configured = 10s;
  net::Socket upstream = idle_connection();
  pool_.reset();
  run_for(10ms);  // aborted watch and timer handlers find the pool gone
  EXPECT_TRUE(sees_eof(upstream));
}

TEST_F(HostPoolTest, LeaseKeepsThePoolAlive) {
  Pair p = connect_pair();
  std::weak_ptr<HostPool> weak = pool_;
  pool_.reset();
  EXPECT_FALSE(weak.expired());
  p.lease.release(clean());  // the last owner: the pool goes, closing the connection
  EXPECT_TRUE(weak.expired());
  run_for(5ms);
  EXPECT_TRUE(sees_eof(p.upstream));
}

TEST_F(HostPoolTest, ConnectRefused) {
  uint16_t port;
  {
    net::Acceptor closed(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    port = closed.local_endpoint().port();
  }
  auto p = make_pool(port);
  ConnectResult r = connect(*p);
  EXPECT_FALSE(r.lease);
  EXPECT_EQ(r.cause, Cause::connect_refused);
  EXPECT_EQ(r.error, asio::error::connection_refused);
  EXPECT_EQ(p->counters().connect_failures, 1u);
  EXPECT_EQ(p->active_requests(), 0u);
}

TEST_F(HostPoolTest, ConsecutiveConnectFailuresEject) {
  settings.eject_after_connect_failures = 2;
  uint16_t port;
  {
    net::Acceptor closed(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    port = closed.local_endpoint().port();
  }
  auto p = make_pool(port);
  connect(*p);
  EXPECT_FALSE(p->ejected());
  connect(*p);
  EXPECT_TRUE(p->ejected());
}

// Loopback never drops a SYN on its own, but a listener with backlog 0 whose accept queue is
// full does (tcp_abort_on_overflow = 0, the default): the connect stays in SYN retransmission.
TEST_F(HostPoolTest, ConnectTimeout) {
  net::Acceptor full(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  full.listen(0);
  const uint16_t port = full.local_endpoint().port();
  std::vector<int> fillers;
  for (int i = 0; i < 2; ++i) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    fillers.push_back(fd);
  }
  std::this_thread::sleep_for(5ms);
  settings.connect_timeout = 100ms;
  auto p = make_pool(port);
  auto start = std::chrono::steady_clock::now();
  ConnectResult r = connect(*p);
  auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(r.cause, Cause::connect_timeout);
  EXPECT_EQ(r.error, asio::error::timed_out);
  EXPECT_GE(elapsed, 100ms);
  EXPECT_LT(elapsed, 100ms + test::scaled(200ms));
  EXPECT_EQ(p->active_requests(), 0u);
  for (int fd : fillers) ::close(fd);
}

TEST_F(HostPoolTest, ConnectByNameResolves) {
  auto p = make_pool(acceptor.local_endpoint().port(), "localhost");
  ConnectResult r = connect(*p);
  // localhost may resolve to ::1 first; the acceptor is IPv4 only, so the range connect must
  // fall through to 127.0.0.1.
  EXPECT_EQ(r.cause, Cause::none) << r.error.message();
  EXPECT_TRUE(r.lease);
}

TEST_F(HostPoolTest, UnresolvableNameIsResolveFailed) {
  settings.connect_timeout = 2s;
  auto p = make_pool(80, "no-such-host.invalid");
  ConnectResult r = connect(*p);
  EXPECT_EQ(r.cause, Cause::resolve_failed);
  EXPECT_FALSE(r.lease);
}

TEST_F(HostPoolTest, NonReplayableRequestsDoNotReuseOnAGuess) {
  net::Socket upstream = idle_connection();
  run_for(20ms);
  EXPECT_FALSE(pool()->checkout_idle(false));  // nothing proven yet
  EXPECT_EQ(pool()->idle_count(), 1u);         // kept for replayable requests
  ConnectionLease lease = pool()->checkout_idle(true);
  ASSERT_TRUE(lease);
}

}  // namespace
}  // namespace needle::upstream
