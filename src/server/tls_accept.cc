#include "server/tls_accept.h"

#include <array>
#include <string_view>

#include <openssl/err.h>

#include "base/log.h"
#include "net/socket_io.h"
#include "tls/handshake_failure.h"

namespace needle::server {
namespace {

// What nginx answers with its 497, as a 400 (RFC 9110 15.5.1): the client spoke plain HTTP to a
// port that speaks HTTPS only, and this is the one answer it can read.
constexpr std::string_view kPlainHttpBody =
    "400 Bad Request: this port speaks HTTPS only; the plain HTTP request was sent to an HTTPS "
    "port. Use https://.\n";

std::string plain_http_response() {
  return "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: " +
         std::to_string(kPlainHttpBody.size()) + "\r\nConnection: close\r\n\r\n" +
         std::string(kPlainHttpBody);
}

constexpr auto kUseTuple = asio::experimental::as_tuple(asio::use_awaitable_t<net::Executor>{});

// Answers the plain request and closes after a short lingering read (RFC 9112 9.6), so the
// reply is not destroyed by a RST for the unread request bytes. The timer bounds it all.
net::Task<void> answer_plain_http(net::Socket& socket) {
  const std::string response = plain_http_response();
  auto [ec, n] = co_await net::write_all(socket, asio::buffer(response));
  std::error_code ignored;
  if (!ec) {
    socket.shutdown(asio::socket_base::shutdown_send, ignored);
    std::array<char, 4096> sink;
    for (;;) {
      auto [read_ec, bytes] = co_await net::read_some(socket, asio::buffer(sink));
      if (read_ec) break;
    }
  }
}

}  // namespace

std::shared_ptr<tls::TicketKeyRing> listener_ticket_keys() {
  // A day's key seals; the two before it still open (tickets live up to three days).
  static const auto ring = std::make_shared<tls::TicketKeyRing>(SteadyClock::instance(),
                                                                std::chrono::hours(24), size_t{2});
  return ring;
}

net::Task<std::optional<net::Stream>> accept_tls(net::Socket socket,
                                                 const tls::ServerTlsContext& context,
                                                 Millis handshake_timeout,
                                                 proxy::RequestObserver* observer) {
  auto report = [observer](std::string_view failure, bool resumed) {
    if (observer != nullptr) observer->on_tls_handshake(failure, resumed);
  };
  // The deadline cancels whatever socket `guard->target` points to; the handler may run after
  // this coroutine is gone (a completion already queued when it cancels), so it shares `guard`.
  struct Guard {
    net::Socket* target = nullptr;
    bool timed_out = false;
  };
  auto guard = std::make_shared<Guard>(Guard{&socket});
  net::Timer deadline(socket.get_executor());
  deadline.expires_after(handshake_timeout);
  deadline.async_wait([guard](std::error_code ec) {
    if (ec || guard->target == nullptr) return;
    guard->timed_out = true;
    std::error_code ignored;
    guard->target->cancel(ignored);
  });
  struct Disarm {
    Guard& guard;
    ~Disarm() { guard.target = nullptr; }
  } disarm{*guard};

  // The first bytes: a TLS record starts with 22 (handshake), an HTTP request with a method.
  std::array<char, 16> first{};
  auto [peek_ec, peeked] = co_await socket.async_receive(
      asio::buffer(first), asio::socket_base::message_peek, kUseTuple);
  const std::string_view first_bytes(first.data(), peek_ec ? 0 : peeked);
  if (!peek_ec && tls::looks_like_plain_http(first_bytes)) {
    co_await answer_plain_http(socket);
    report(tls::handshake_failure_name(tls::HandshakeFailure::plain_http_on_tls_port), false);
    std::error_code ignored;
    socket.close(ignored);
    co_return std::nullopt;
  }
  if (peek_ec) {
    // A client that connects and leaves (a port scan, a health check) is no handshake failure,
    // but one that sends nothing until the deadline is.
    if (guard->timed_out) report("timeout", false);
    std::error_code ignored;
    socket.close(ignored);
    co_return std::nullopt;
  }

  net::Stream stream(std::move(socket), net::SslHandle(context.new_ssl().release()));
  guard->target = &stream.socket();  // the same deadline goes on for the handshake
  const std::error_code handshake = co_await net::tls_handshake(stream);
  guard->target = nullptr;
  deadline.cancel();
  if (!handshake) {
    report({}, SSL_session_reused(stream.ssl()) == 1);
    co_return std::optional<net::Stream>(std::move(stream));
  }
  std::string_view reason = "timeout";
  if (!guard->timed_out) {
    reason = handshake == std::make_error_code(std::errc::protocol_error)
                 ? tls::handshake_failure_name(tls::classify_handshake_failure(stream.ssl(),
                                                                               first_bytes))
                 : std::string_view("closed");  // the client went away mid-handshake
  }
  ERR_clear_error();
  report(reason, false);
  std::error_code ignored;
  stream.close(ignored);
  co_return std::nullopt;
}

}  // namespace needle::server
