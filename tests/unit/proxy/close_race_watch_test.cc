// The close-race watch with real loopback sockets: after needle's FIN, a client that closes is
// the normal end, a client that sends is a race, a reset is a race of its own kind, a silent one
// is closed at the watch time, and above the cap closes are not watched. Each socket is closed
// and reported exactly once.
#include "proxy/close_race_watch.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>

#include <chrono>
#include <memory>
#include <vector>

#include "proxy/keepalive_park.h"
#include "unit/net/loopback_pair.h"

namespace needle::proxy {
namespace {

using namespace std::chrono_literals;
using observe::IdleCloseOutcome;

struct CloseRaceWatchTest : ::testing::Test {
  asio::io_context io{1};
  std::vector<std::unique_ptr<net::LoopbackPair>> pairs;
  std::vector<CloseRaceReport> reports;
  std::vector<std::string> report_labels;  // the reports' listener views end with the handler
  int closed = 0;
  std::vector<config::ListenerConfig> listeners{{config::HostPort{"0.0.0.0", 0}}};
  CloseRaceSettings settings{.watch_time = 300ms, .max_watches = 2};
  std::unique_ptr<CloseRaceWatch> watch = make_watch();

  std::unique_ptr<CloseRaceWatch> make_watch() {
    return std::make_unique<CloseRaceWatch>(
        io.get_executor(), SteadyClock::instance(), settings,
        [this](const CloseRaceReport& r) {
          reports.push_back(r);
          report_labels.emplace_back(r.listener);
        },
        [this] { ++closed; });
  }

  // A connection moved onto this fixture's io_context; returns its peer (the client).
  net::Socket& accept_one() {
    auto& pair = *pairs.emplace_back(std::make_unique<net::LoopbackPair>());
    listeners[0].address.port = pair.accepted.local_endpoint().port();
    return pair.peer;
  }
  net::Socket take_accepted() {
    net::Socket socket(io);
    socket.assign(asio::ip::tcp::v4(), pairs.back()->accepted.release());
    return socket;
  }
  void watch_one(Duration idle_for = 5s) {
    watch->close_and_watch(take_accepted(), std::chrono::steady_clock::now() - idle_for, listeners);
  }

  template <typename Done>
  void run_until(Done done) {
    const auto give_up = std::chrono::steady_clock::now() + 2s;
    while (!done() && std::chrono::steady_clock::now() < give_up) {
      io.run_for(10ms);
      io.restart();
    }
  }

  // Runs what is ready now (aborted reads) for a moment.
  void settle() {
    io.run_for(100ms);
    io.restart();
  }

  // Blocking read on the client: what needle's side sent.
  static std::error_code client_read(net::Socket& client) {
    client.non_blocking(false);
    char byte;
    std::error_code ec;
    client.read_some(asio::buffer(&byte, 1), ec);
    return ec;
  }
};

TEST_F(CloseRaceWatchTest, ClientThatAnswersTheFinIsTheNormalEnd) {
  net::Socket& client = accept_one();
  watch_one(5s);
  EXPECT_EQ(watch->size(), 1u);
  EXPECT_EQ(client_read(client), asio::error::eof);  // the FIN went out at once
  client.close();
  run_until([&] { return !reports.empty(); });
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_EQ(reports[0].outcome, IdleCloseOutcome::client_closed);
  EXPECT_EQ(report_labels[0], listeners[0].address.to_string());
  EXPECT_GE(reports[0].idle_age, 5s);
  EXPECT_LT(reports[0].after_close, 1s);
  EXPECT_EQ(closed, 1);
  EXPECT_EQ(watch->size(), 0u);
}

TEST_F(CloseRaceWatchTest, RequestAfterTheFinIsARace) {
  net::Socket& client = accept_one();
  watch_one();
  asio::write(client, asio::buffer(std::string_view("GET / HTTP/1.1\r\nHost: a\r\n\r\n")));
  run_until([&] { return !reports.empty(); });
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_EQ(reports[0].outcome, IdleCloseOutcome::race_request);
  EXPECT_EQ(reports[0].peer, client.local_endpoint());
  EXPECT_EQ(closed, 1);
  // The request was never read: the client's read fails (EOF, then the reset of the close).
  const auto ec = client_read(client);
  EXPECT_TRUE(ec == asio::error::eof || ec == asio::error::connection_reset) << ec.message();
}

TEST_F(CloseRaceWatchTest, RequestAlreadyQueuedWhenTheWatchStartsIsARace) {
  net::Socket& client = accept_one();
  asio::write(client, asio::buffer(std::string_view("GET / HTTP/1.1\r\n\r\n")));
  pollfd readable{pairs.back()->accepted.native_handle(), POLLIN, 0};
  ASSERT_EQ(::poll(&readable, 1, 1000), 1);
  watch_one();
  run_until([&] { return !reports.empty(); });
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_EQ(reports[0].outcome, IdleCloseOutcome::race_request);
}

TEST_F(CloseRaceWatchTest, ResetAfterTheFinIsARaceOfItsOwnKind) {
  net::Socket& client = accept_one();
  watch_one();
  ::linger abort_on_close{1, 0};
  ASSERT_EQ(::setsockopt(client.native_handle(), SOL_SOCKET, SO_LINGER, &abort_on_close,
                         sizeof(abort_on_close)),
            0);
  client.close();  // RST
  run_until([&] { return !reports.empty(); });
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_EQ(reports[0].outcome, IdleCloseOutcome::race_reset);
}

TEST_F(CloseRaceWatchTest, SilentClientIsClosedAtTheWatchTime) {
  net::Socket& client = accept_one();
  const auto start = std::chrono::steady_clock::now();
  watch_one();
  run_until([&] { return !reports.empty(); });
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_EQ(reports[0].outcome, IdleCloseOutcome::quiet);
  EXPECT_GE(std::chrono::steady_clock::now() - start, settings.watch_time);
  EXPECT_EQ(closed, 1);
  (void)client;
}

TEST_F(CloseRaceWatchTest, ClosesAboveTheCapAreNotWatched) {
  for (int i = 0; i < 3; ++i) {
    accept_one();
    watch_one();
  }
  // The third went out at once, reported as unwatched; two are still watched.
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_EQ(reports[0].outcome, IdleCloseOutcome::unwatched);
  EXPECT_EQ(watch->size(), 2u);
  EXPECT_EQ(closed, 1);
  EXPECT_EQ(client_read(pairs[2]->peer), asio::error::eof);
}

TEST_F(CloseRaceWatchTest, CloseAllClosesEveryWatchOnceWithoutReports) {
  net::Socket& first = accept_one();
  watch_one();
  accept_one();
  watch_one();
  EXPECT_EQ(watch->close_all(), 2u);
  EXPECT_EQ(closed, 2);
  // Closes handed over during the drain are not watched either.
  net::Socket& late = accept_one();
  watch_one();
  EXPECT_EQ(closed, 3);
  EXPECT_EQ(watch->size(), 0u);
  EXPECT_EQ(client_read(late), asio::error::eof);
  first.close();  // the aborted reads run; nothing is reported or closed twice
  settle();
  EXPECT_TRUE(reports.empty());
  EXPECT_EQ(closed, 3);
  EXPECT_EQ(watch->size(), 0u);
}

TEST(ListenerLabel, NamesTheConfiguredListenerOfTheLocalAddress) {
  const std::vector<config::ListenerConfig> listeners{{config::HostPort{"10.0.0.1", 80}},
                                                      {config::HostPort{"0.0.0.0", 8080}},
                                                      {config::HostPort{"localhost", 9000}}};
  const auto at = [](const char* ip, uint16_t port) {
    return asio::ip::tcp::endpoint(asio::ip::make_address(ip), port);
  };
  EXPECT_EQ(listener_label(at("10.0.0.1", 80), listeners), "10.0.0.1:80");
  EXPECT_EQ(listener_label(at("10.0.0.2", 80), listeners), "10.0.0.2:80");  // not configured
  EXPECT_EQ(listener_label(at("192.168.1.5", 8080), listeners), "0.0.0.0:8080");
  EXPECT_EQ(listener_label(at("127.0.0.1", 9000), listeners), "localhost:9000");
  EXPECT_EQ(listener_label(at("::ffff:10.0.0.1", 80), listeners), "10.0.0.1:80");
}

TEST(CloseRaceMessage, NamesTheClientTheAgesAndTheFix) {
  const CloseRaceReport report{
      .listener = "0.0.0.0:8080",
      .peer = asio::ip::tcp::endpoint(asio::ip::make_address("10.1.2.3"), 41234),
      .idle_age = 5000ms,
      .after_close = 3ms,
      .outcome = IdleCloseOutcome::race_request};
  const std::string text = close_race_message(report);
  EXPECT_NE(text.find("10.1.2.3:41234"), std::string::npos) << text;
  EXPECT_NE(text.find("0.0.0.0:8080"), std::string::npos);
  EXPECT_NE(text.find("sent a request 3 ms after"), std::string::npos);
  EXPECT_NE(text.find("idling 5000 ms"), std::string::npos);
  EXPECT_NE(text.find("client_idle_timeout above"), std::string::npos);
  EXPECT_NE(text.find("AWS ALB 60 s"), std::string::npos);
}

// The park hands a client whose keep-alive deadline passed to its idle-close handler (the
// worker's watch) instead of closing it, once it has served a request.
TEST_F(CloseRaceWatchTest, ParkHandsExpiredKeepAliveClientsToTheWatch) {
  KeepAlivePark park(
      io.get_executor(), SteadyClock::instance(), [](ParkedClient&&) { FAIL(); },
      [this] { ++closed; });
  park.set_idle_close_handler([this](ParkedClient&& c) {
    watch->close_and_watch(std::move(c.socket), c.idle_since, listeners);
  });
  const auto now = std::chrono::steady_clock::now();
  net::Socket& kept_alive = accept_one();
  park.park(ParkedClient{.socket = take_accepted(),
                         .requests_served = 1,
                         .deadline = now + 50ms,
                         .idle_since = now - 1s});
  net::Socket& never_used = accept_one();
  park.park(ParkedClient{.socket = take_accepted(), .requests_served = 0, .deadline = now + 50ms});
  run_until([&] { return park.size() == 0; });
  EXPECT_EQ(closed, 1);  // the unused connection, by the park
  EXPECT_EQ(watch->size(), 1u);
  asio::write(kept_alive, asio::buffer(std::string_view("GET / HTTP/1.1\r\n\r\n")));
  run_until([&] { return !reports.empty(); });
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_EQ(reports[0].outcome, IdleCloseOutcome::race_request);
  EXPECT_GE(reports[0].idle_age, 1s);
  EXPECT_EQ(closed, 2);
  (void)never_used;
}

}  // namespace
}  // namespace needle::proxy
