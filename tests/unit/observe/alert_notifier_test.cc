#include "observe/alert_notifier.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "record_builders.h"
#include "support/time_scale.h"

namespace needle::observe {
namespace {

using namespace std::chrono_literals;
using test_records::attempt;
using test_records::request;
using Clock = std::chrono::steady_clock;

// A blocking loopback HTTP/1.1 receiver on port 0. Each request is answered with the next
// scripted status (200 once the script runs out); status 0 means "hang": read the request and
// never answer until the receiver stops.
class WebhookReceiver {
 public:
  explicit WebhookReceiver(std::deque<int> script = {}) : script_(std::move(script)) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    EXPECT_EQ(::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    EXPECT_EQ(::listen(listen_fd_, 16), 0);
    socklen_t len = sizeof addr;
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~WebhookReceiver() { stop(); }

  void stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    if (listen_fd_ >= 0) ::close(listen_fd_);
    listen_fd_ = -1;
  }

  std::string url(std::string_view path = "/hook") const {
    return "http://127.0.0.1:" + std::to_string(port_) + std::string(path);
  }

  // Waits until `n` requests arrived; returns every request body so far.
  std::vector<std::string> wait_for(size_t n, std::chrono::milliseconds timeout = 5s) {
    std::unique_lock lock(mutex_);
    cv_.wait_for(lock, timeout, [&] { return bodies_.size() >= n; });
    return bodies_;
  }
  std::vector<std::string> heads() {
    std::lock_guard lock(mutex_);
    return heads_;
  }
  size_t requests() {
    std::lock_guard lock(mutex_);
    return bodies_.size();
  }

 private:
  void serve() {
    std::vector<int> hung;
    while (!stop_) {
      pollfd p{listen_fd_, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      std::string head, body;
      if (!read_request(fd, head, body)) {
        ::close(fd);
        continue;
      }
      int status = 200;
      {
        std::lock_guard lock(mutex_);
        if (!script_.empty()) {
          status = script_.front();
          script_.pop_front();
        }
        heads_.push_back(head);
        bodies_.push_back(body);
      }
      cv_.notify_all();
      if (status == 0) {
        hung.push_back(fd);
        continue;
      }
      const std::string response = "HTTP/1.1 " + std::to_string(status) +
                                   " X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
      (void)!::write(fd, response.data(), response.size());
      ::close(fd);
    }
    for (int fd : hung) ::close(fd);
  }

  bool read_request(int fd, std::string& head, std::string& body) {
    std::string data;
    char buffer[4096];
    size_t head_end = std::string::npos;
    size_t length = 0;
    const auto deadline = Clock::now() + 2s;
    while (Clock::now() < deadline && !stop_) {
      if (head_end != std::string::npos && data.size() >= head_end + 4 + length) break;
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      const ssize_t n = ::read(fd, buffer, sizeof buffer);
      if (n <= 0) return false;
      data.append(buffer, static_cast<size_t>(n));
      if (head_end == std::string::npos &&
          (head_end = data.find("\r\n\r\n")) != std::string::npos) {
        const size_t at = data.find("Content-Length: ");
        if (at == std::string::npos || at > head_end) return false;
        length = std::stoul(data.substr(at + 16));
      }
    }
    if (head_end == std::string::npos || data.size() < head_end + 4 + length) return false;
    head = data.substr(0, head_end);
    body = data.substr(head_end + 4, length);
    return true;
  }

  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<int> script_;
  std::vector<std::string> heads_, bodies_;
};

config::AlertsConfig alerts_config(std::string url, Millis window) {
  config::AlertsConfig c;
  c.webhook = std::move(url);
  c.window = window;
  return c;
}

AlertNotifierOptions fast_options() {
  AlertNotifierOptions o;
  o.first_backoff = 20ms;
  o.connect_timeout = 500ms;
  o.request_timeout = 500ms;
  o.instance = "test-host";
  return o;
}

size_t occurrences(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

template <typename Predicate>
bool eventually(Predicate predicate, std::chrono::milliseconds timeout = 5s) {
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    if (predicate()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return predicate();
}

TEST(AlertWebhookUrl, ParsesHttpUrlsOnly) {
  auto u = parse_webhook_url("http://hooks.example:8080/services/T/B?x=1");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->host, "hooks.example");
  EXPECT_EQ(u->port, 8080);
  EXPECT_EQ(u->path, "/services/T/B?x=1");
  EXPECT_EQ(u->authority, "hooks.example:8080");
  u = parse_webhook_url("HTTP://alerts");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->port, 80);
  EXPECT_EQ(u->path, "/");
  u = parse_webhook_url("http://[::1]:9000/x");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->host, "::1");
  EXPECT_EQ(u->port, 9000);
  EXPECT_FALSE(parse_webhook_url("https://hooks.slack.com/x"));
  EXPECT_FALSE(parse_webhook_url("http://"));
  EXPECT_FALSE(parse_webhook_url("http://:80/"));
  EXPECT_FALSE(parse_webhook_url("http://h:0/"));
  EXPECT_FALSE(parse_webhook_url("http://h:65536/"));
  EXPECT_FALSE(parse_webhook_url("http://h:x/"));
  EXPECT_FALSE(parse_webhook_url("http://user:pw@h/"));
  EXPECT_FALSE(parse_webhook_url("http://[::1/"));
  EXPECT_FALSE(parse_webhook_url("hooks.example/x"));
  EXPECT_FALSE(parse_webhook_url("http://h/x HTTP/1.1\r\nX-Injected: 1"));
  EXPECT_FALSE(parse_webhook_url("http://h/a b"));
}

TEST(AlertNotifierMatch, FiltersByStatusAndCause) {
  config::AlertsConfig c;  // defaults: 500, 502, 503, 504; any cause
  EXPECT_TRUE(AlertNotifier::matches(c, request(502, Cause::connect_refused)));
  EXPECT_TRUE(AlertNotifier::matches(c, request(500)));
  EXPECT_FALSE(AlertNotifier::matches(c, request(501)));
  EXPECT_FALSE(AlertNotifier::matches(c, request(200)));
  c.causes = {"connect_refused", "reset_before_response_on_reused"};
  EXPECT_TRUE(AlertNotifier::matches(c, request(502, Cause::connect_refused)));
  EXPECT_FALSE(AlertNotifier::matches(c, request(502, Cause::connect_timeout)));
  EXPECT_FALSE(AlertNotifier::matches(c, request(503, Cause::none)));
  AlertNotifier notifier(c);
  EXPECT_TRUE(notifier.matches(request(502, Cause::reset_before_response_on_reused)));
  EXPECT_FALSE(notifier.notify(request(502, Cause::connect_refused)));  // not started
}

TEST(AlertBatchFormat, CountsSamplesAndSlackText) {
  AlertBatch batch;
  batch.window_start = std::chrono::system_clock::time_point(1714566896789ms);
  for (int i = 0; i < 7; ++i) {
    RequestRecord r = request(502, Cause::connect_refused);
    r.request_id = "r" + std::to_string(i);
    r.attempts = {attempt("10.0.0.2:3000", 0, Cause::connect_refused)};
    r.detail = "connect: Connection refused";
    batch.add(r);
  }
  batch.add(request(503, Cause::no_healthy_host, "/x", "billing"));
  RequestRecord hostile = request(504, Cause::response_timeout);
  hostile.path = "/<script>&\"";
  batch.samples.clear();  // make the hostile one the first sample
  batch.add(hostile);
  EXPECT_EQ(batch.total, 9u);
  ASSERT_EQ(batch.samples.size(), 1u);

  const std::string plain = format_alert_batch(batch, 10s, false, "host-a");
  EXPECT_EQ(
      plain.rfind(
          R"({"source":"needle","instance":"host-a","window_start":"2024-05-01T12:34:56.789Z",)"
          R"("window_seconds":10,"total":9,"by_status":{"502":7,"503":1,"504":1},)"
          R"("by_cause":{"connect_refused":7,"no_healthy_host":1,"response_timeout":1},)"
          R"("by_cluster":{"app":8,"billing":1},"samples":[)",
          0),
      0u)
      << plain;
  EXPECT_EQ(plain.find("\"text\""), std::string::npos);
  EXPECT_NE(plain.find(R"("path":"/<script>&\"")"), std::string::npos);

  const std::string slack = format_alert_batch(batch, 10s, true, "host-a");
  EXPECT_NE(slack.find(R"("text":"needle on host-a: 9 5xx in 10s (502 x7, 503 x1, 504 x1); )"
                       R"(causes: connect_refused x7, no_healthy_host x1, response_timeout x1; )"
                       R"(clusters: app x8, billing x1. e.g. GET /&lt;script&gt;&amp;\" -> 504 )"
                       R"x(response_timeout (request req-1)"})x"),
            std::string::npos)
      << slack;
}

TEST(AlertBatchFormat, SamplesAreCapped) {
  AlertBatch batch;
  for (int i = 0; i < 50; ++i) batch.add(request(502, Cause::connect_refused));
  EXPECT_EQ(batch.samples.size(), AlertBatch::kMaxSamples);
  EXPECT_EQ(occurrences(format_alert_batch(batch, 1s, false, "h"), "\"request_id\""), 5u);
}

TEST(AlertNotifier, StartRejectsMissingOrNonHttpWebhooks) {
  config::AlertsConfig off;
  EXPECT_TRUE(AlertNotifier(off).start());
  EXPECT_TRUE(AlertNotifier(alerts_config("https://example/x", 1s)).start());
}

TEST(AlertNotifier, BatchesOneWindowIntoOnePost) {
  WebhookReceiver receiver;
  AlertNotifier notifier(alerts_config(receiver.url(), 300ms), fast_options());
  ASSERT_FALSE(notifier.start());
  RequestRecord refused = request(502, Cause::connect_refused);
  refused.attempts = {attempt("10.0.0.2:3000", 0, Cause::connect_refused)};
  EXPECT_TRUE(notifier.notify(refused));
  EXPECT_TRUE(notifier.notify(refused));
  EXPECT_TRUE(notifier.notify(request(503, Cause::no_healthy_host, "/b", "billing")));
  EXPECT_FALSE(notifier.notify(request(200)));  // does not match: not counted

  const auto bodies = receiver.wait_for(1);
  ASSERT_EQ(bodies.size(), 1u);
  const std::string& body = bodies[0];
  EXPECT_NE(body.find(R"("total":3,"by_status":{"502":2,"503":1})"), std::string::npos) << body;
  EXPECT_NE(body.find(R"("by_cause":{"connect_refused":2,"no_healthy_host":1})"),
            std::string::npos);
  EXPECT_NE(body.find(R"("by_cluster":{"app":2,"billing":1})"), std::string::npos);
  EXPECT_NE(body.find(R"("upstream":"10.0.0.2:3000")"), std::string::npos);
  EXPECT_NE(body.find(R"("window_seconds":0.3)"), std::string::npos);
  EXPECT_EQ(body.find("\"text\""), std::string::npos);
  const std::string head = receiver.heads()[0];
  EXPECT_EQ(head.rfind("POST /hook HTTP/1.1\r\n", 0), 0u) << head;
  EXPECT_NE(head.find("Content-Type: application/json"), std::string::npos);
  EXPECT_NE(head.find("Host: 127.0.0.1:"), std::string::npos);

  // Quiet windows send nothing.
  std::this_thread::sleep_for(700ms);
  EXPECT_EQ(receiver.requests(), 1u);
  EXPECT_TRUE(eventually([&] { return notifier.stats().batches_sent == 1; }));
  const AlertStats stats = notifier.stats();
  EXPECT_EQ(stats.events, 3u);
  EXPECT_EQ(stats.events_sent, 3u);
  EXPECT_EQ(stats.events_dropped, 0u);
  EXPECT_EQ(stats.post_errors, 0u);
}

TEST(AlertNotifier, SlackTextWhenConfigured) {
  WebhookReceiver receiver;
  auto config = alerts_config(receiver.url(), 100ms);
  config.slack_text = true;
  AlertNotifier notifier(config, fast_options());
  ASSERT_FALSE(notifier.start());
  notifier.notify(request(502, Cause::reset_before_response_on_reused));
  const auto bodies = receiver.wait_for(1);
  ASSERT_EQ(bodies.size(), 1u);
  EXPECT_NE(bodies[0].find(R"("text":"needle on test-host: 1 5xx in 0.1s (502 x1))"),
            std::string::npos)
      << bodies[0];
}

TEST(AlertNotifier, SamplesCappedInAStorm) {
  WebhookReceiver receiver;
  AlertNotifier notifier(alerts_config(receiver.url(), 300ms), fast_options());
  ASSERT_FALSE(notifier.start());
  for (int i = 0; i < 200; ++i) notifier.notify(request(502, Cause::connect_timeout));
  const auto bodies = receiver.wait_for(1);
  ASSERT_GE(bodies.size(), 1u);
  // The storm may straddle two windows; every POST holds at most 5 samples, the totals add up.
  notifier.stop();
  const auto all = receiver.wait_for(2, 200ms);
  uint64_t total = 0;
  for (const auto& body : all) {
    EXPECT_LE(occurrences(body, "\"request_id\""), 5u);
    const size_t at = body.find("\"total\":");
    total += std::stoull(body.substr(at + 8));
  }
  EXPECT_EQ(total, 200u);
}

TEST(AlertNotifier, RetriesAfterAServerError) {
  WebhookReceiver receiver({500, 200});
  AlertNotifier notifier(alerts_config(receiver.url(), 100ms), fast_options());
  ASSERT_FALSE(notifier.start());
  notifier.notify(request(502, Cause::connect_refused));
  const auto bodies = receiver.wait_for(2);
  ASSERT_EQ(bodies.size(), 2u);
  EXPECT_EQ(bodies[0], bodies[1]);  // the same batch, tried again
  EXPECT_TRUE(eventually([&] { return notifier.stats().batches_sent == 1; }));
  const AlertStats stats = notifier.stats();
  EXPECT_EQ(stats.post_errors, 1u);
  EXPECT_EQ(stats.batches_failed, 0u);
  EXPECT_EQ(stats.events_sent, 1u);
}

TEST(AlertNotifier, BacksOffExponentiallyThenDrops) {
  WebhookReceiver receiver({503, 503, 503, 503});
  auto options = fast_options();
  options.first_backoff = 100ms;
  AlertNotifier notifier(alerts_config(receiver.url(), 50ms), options);
  ASSERT_FALSE(notifier.start());
  const auto start = Clock::now();
  notifier.notify(request(502, Cause::connect_refused));
  notifier.notify(request(502, Cause::connect_refused));
  ASSERT_TRUE(eventually([&] { return notifier.stats().batches_failed == 1; }));
  const auto elapsed = Clock::now() - start;
  EXPECT_EQ(receiver.requests(), 3u);        // max 3 tries
  EXPECT_GE(elapsed, 50ms + 100ms + 200ms);  // window, then 100 ms and 200 ms backoff
  const AlertStats stats = notifier.stats();
  EXPECT_EQ(stats.post_errors, 3u);
  EXPECT_EQ(stats.events_dropped, 2u);
  EXPECT_EQ(stats.batches_sent, 0u);
}

TEST(AlertNotifier, CountsDropsWhenTheReceiverIsDown) {
  uint16_t dead_port;
  {
    WebhookReceiver gone;  // take a free port, then close it: connects are refused
    dead_port = static_cast<uint16_t>(std::stoi(gone.url().substr(17)));
  }
  AlertNotifier notifier(
      alerts_config("http://127.0.0.1:" + std::to_string(dead_port) + "/x", 50ms), fast_options());
  ASSERT_FALSE(notifier.start());
  for (int i = 0; i < 4; ++i) notifier.notify(request(504, Cause::response_timeout));
  ASSERT_TRUE(eventually([&] { return notifier.stats().batches_failed >= 1; }));
  notifier.stop();
  const AlertStats stats = notifier.stats();
  EXPECT_EQ(stats.events, 4u);
  EXPECT_EQ(stats.events_dropped, 4u);
  EXPECT_EQ(stats.events_sent, 0u);
  EXPECT_GE(stats.post_errors, 3u);  // the first batch got all its tries
}

TEST(AlertNotifier, NotifyNeverBlocksOnAHangingReceiverAndTheQueueIsBounded) {
  WebhookReceiver receiver({0, 500, 500, 500, 500, 500, 500, 500});  // first POST hangs
  auto config = alerts_config(receiver.url(), 20ms);
  config.max_queue = 2;
  auto options = fast_options();
  options.request_timeout = 1500ms;
  options.max_tries = 1;
  AlertNotifier notifier(config, options);
  ASSERT_FALSE(notifier.start());

  notifier.notify(request(502, Cause::connect_refused));
  ASSERT_EQ(receiver.wait_for(1).size(), 1u);  // the sender is now stuck on the first POST
  auto slowest = Clock::duration::zero();
  const auto storm_end = Clock::now() + 300ms;  // ~15 windows while the sender hangs
  uint64_t notified = 1;
  while (Clock::now() < storm_end) {
    const auto t0 = Clock::now();
    notifier.notify(request(502, Cause::connect_refused));
    slowest = std::max(slowest, Clock::now() - t0);
    ++notified;
    std::this_thread::sleep_for(100us);
  }
  EXPECT_LT(slowest, test::scaled(20ms)) << "notify() waited for the webhook";
  // Windows closed while the first POST hangs: at most max_queue batches are kept.
  EXPECT_TRUE(eventually([&] { return notifier.stats().events_dropped > 0; }, 1s));
  const auto stop_start = Clock::now();
  notifier.stop();
  EXPECT_LT(Clock::now() - stop_start, 6s);  // bounded by the request timeout per pending batch
  const AlertStats stats = notifier.stats();
  EXPECT_EQ(stats.events, notified);
  EXPECT_EQ(stats.events_sent, 0u);
  EXPECT_EQ(stats.events_dropped, notified);  // every event: hung, failed or pushed out
  EXPECT_LE(stats.batches_failed, 1u + config.max_queue + 1u);
}

TEST(AlertNotifier, StopFlushesTheOpenWindow) {
  WebhookReceiver receiver;
  AlertNotifier notifier(alerts_config(receiver.url(), 60s), fast_options());
  ASSERT_FALSE(notifier.start());
  notifier.notify(request(502, Cause::closed_mid_response));
  notifier.notify(request(502, Cause::closed_mid_response));
  EXPECT_EQ(receiver.requests(), 0u);
  notifier.stop();
  const auto bodies = receiver.wait_for(1, 100ms);
  ASSERT_EQ(bodies.size(), 1u);
  EXPECT_NE(bodies[0].find(R"("total":2)"), std::string::npos);
  EXPECT_EQ(notifier.stats().batches_sent, 1u);
  EXPECT_FALSE(notifier.notify(request(502, Cause::closed_mid_response)));  // stopped
  notifier.stop();                                                          // idempotent
}

}  // namespace
}  // namespace needle::observe
