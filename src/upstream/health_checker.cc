#include "upstream/health_checker.h"

#include <fmt/format.h>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>

#include "http/parser.h"
#include "upstream/idle_socket_probe.h"
#include "upstream/upstream_connector.h"

namespace needle::upstream {
namespace {

constexpr auto use_tuple = asio::experimental::as_tuple(asio::use_awaitable_t<net::Executor>{});

bool expected(const config::HealthCheckConfig& config, int status) {
  for (int s : config.expected_statuses) {
    if (s == status) return true;
  }
  return false;
}

}  // namespace

HealthChecker::HealthChecker(net::Executor executor, config::HostPort address,
                             std::function<std::optional<config::HealthCheckConfig>()> settings,
                             CheckerSink sink, const Clock& clock)
    : executor_(std::move(executor)),
      address_(std::move(address)),
      settings_(std::move(settings)),
      sink_(std::move(sink)),
      clock_(clock) {}

void HealthChecker::start() {
  asio::co_spawn(
      executor_, [self = shared_from_this()]() { return self->run(); }, asio::detached);
}

void HealthChecker::stop() {
  stopped_ = true;
  close_connection();
  if (wait_timer_) wait_timer_->cancel();
}

void HealthChecker::close_connection() {
  if (!socket_) return;
  std::error_code ignored;
  socket_->close(ignored);
  socket_.reset();
}

net::Task<void> HealthChecker::run() {
  auto self = shared_from_this();  // alive while the loop runs
  while (!stopped_) {
    const auto config = settings_();
    if (!config) break;
    CheckResult result = co_await check_with_deadline(*config);
    if (stopped_) break;
    sink_.on_result(result);
    co_await idle(config->interval);
  }
  close_connection();
}

net::Task<CheckResult> HealthChecker::check_with_deadline(const config::HealthCheckConfig& config) {
  using namespace asio::experimental::awaitable_operators;
  net::Timer deadline(executor_);
  deadline.expires_after(config.timeout);
  auto outcome = co_await (check(config) || deadline.async_wait(use_tuple));
  if (outcome.index() == 0) co_return std::get<0>(std::move(outcome));
  close_connection();  // a response may still be on its way: the connection is out of sync
  co_return CheckResult{false, fmt::format("no answer within {} ms", config.timeout.count())};
}

net::Task<CheckResult> HealthChecker::check(const config::HealthCheckConfig& config) {
  if (config.type == config::HealthCheckType::http) co_return co_await check_http(config);
  // tcp: a connection that opens passes; it is not kept (an idle connection without a request
  // is closed by a header timeout, which says nothing about the keep-alive idle timeout).
  close_connection();
  ConnectOutcome connected = co_await open_upstream_socket(address_, config.timeout);
  if (connected.cause != Cause::none) {
    co_return CheckResult{false, fmt::format("connect: {}", connected.error.message())};
  }
  std::error_code ignored;
  connected.socket->close(ignored);
  co_return CheckResult{true, {}};
}

net::Task<CheckResult> HealthChecker::check_http(const config::HealthCheckConfig& config) {
  const bool reusing = socket_.has_value();
  CheckResult result = co_await exchange(config);
  // The kept connection may have been closed by the host between the idle watch's last look
  // and the write (the keep-alive race, DESIGN.md rule 5): one more try on a fresh connection.
  if (!result.passed && reusing && !socket_ && !stopped_) result = co_await exchange(config);
  co_return result;
}

// One GET on the kept connection (opened first if there is none). On any failure the
// connection is closed (socket_ reset).
net::Task<CheckResult> HealthChecker::exchange(const config::HealthCheckConfig& config) {
  if (!socket_) {
    ConnectOutcome connected = co_await open_upstream_socket(address_, config.timeout);
    if (connected.cause != Cause::none) {
      co_return CheckResult{false, fmt::format("connect: {}", connected.error.message())};
    }
    socket_.emplace(std::move(*connected.socket));
    requests_done_ = 0;
  }
  const std::string host = config.host ? *config.host : address_.to_string();
  const std::string request = fmt::format(
      "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: needle-health-check\r\nAccept: */*\r\n\r\n",
      config.path, host);
  auto [write_error, written] =
      co_await asio::async_write(*socket_, asio::buffer(request), use_tuple);
  if (write_error) {
    close_connection();
    co_return CheckResult{false, fmt::format("write: {}", write_error.message())};
  }
  http::ResponseParser parser(http::ParserLimits{.max_request_line = 8 * 1024,
                                                 .max_header_bytes = 64 * 1024,
                                                 .max_header_count = 200,
                                                 .max_body_bytes = 1 << 20});
  std::vector<std::string_view> body;
  char buffer[4096];
  for (;;) {
    auto [read_error, n] = co_await socket_->async_read_some(asio::buffer(buffer), use_tuple);
    http::FeedResult fed;
    if (read_error) {
      fed = parser.finish();
    } else {
      std::string_view data(buffer, n);
      fed = parser.feed(data, body);
      while (fed.stop == http::ParseStop::head_complete ||
             (fed.stop == http::ParseStop::message_complete && parser.head().status < 200)) {
        data.remove_prefix(fed.consumed);
        if (fed.stop == http::ParseStop::message_complete) parser.reset();  // 1xx
        fed = parser.feed(data, body);
      }
      body.clear();
      // Bytes past the response: the connection is out of sync; closed after this check.
      if (fed.stop == http::ParseStop::message_complete && fed.consumed != data.size()) {
        close_connection();
      }
    }
    if (fed.stop == http::ParseStop::error) {
      close_connection();
      co_return CheckResult{false, read_error
                                       ? fmt::format("read: {}", read_error.message())
                                       : fmt::format("invalid response: {}", parser.error().cause)};
    }
    if (fed.stop == http::ParseStop::message_complete) break;
    if (read_error) {
      close_connection();
      co_return CheckResult{false, fmt::format("read: {}", read_error.message())};
    }
  }
  ++requests_done_;
  idle_since_ = clock_.now();
  if (!parser.head().keep_alive) close_connection();
  const int status = parser.head().status;
  if (!expected(config, status)) co_return CheckResult{false, fmt::format("status {}", status)};
  co_return CheckResult{true, {}};
}

net::Task<void> HealthChecker::idle(Millis interval) {
  using namespace asio::experimental::awaitable_operators;
  wait_timer_.emplace(executor_);
  wait_timer_->expires_after(interval);
  if (!socket_) {
    co_await wait_timer_->async_wait(use_tuple);
    co_return;
  }
  char byte = 0;
  auto outcome = co_await (
      wait_timer_->async_wait(use_tuple) ||
      socket_->async_receive(asio::buffer(&byte, 1), asio::socket_base::message_peek, use_tuple));
  if (outcome.index() == 0 || stopped_ || !socket_) co_return;
  // Readable while idle: FIN, RST or stray bytes. Only a close is idle-timeout evidence.
  const IdleSocketState state = peek_idle_socket(socket_->native_handle());
  const Millis age = std::chrono::duration_cast<Millis>(clock_.now() - idle_since_);
  close_connection();
  if (state == IdleSocketState::closed && requests_done_ > 0) {
    sink_.on_idle_close(IdleClose{clock_.now(), age, requests_done_});
  }
  // The rest of the interval, then the next check on a fresh connection.
  wait_timer_->expires_at(wait_timer_->expiry());
  co_await wait_timer_->async_wait(use_tuple);
}

}  // namespace needle::upstream
