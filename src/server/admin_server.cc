#include "server/admin_server.h"

#include <asio/experimental/as_tuple.hpp>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>
#include <fmt/format.h>

#include "http/parser.h"
#include "http/serializer.h"
#include "net/listener.h"

namespace needle::server {

AdminServer::AdminServer(asio::io_context& io, AdminHandler handler, Millis connection_budget)
    : io_(io),
      handler_(std::move(handler)),
      connection_budget_(connection_budget),
      acceptor_(std::make_shared<net::Acceptor>(io)) {}

std::error_code AdminServer::open(const asio::ip::tcp::endpoint& endpoint) {
  return net::open_listener(*acceptor_, endpoint, /*reuse_port=*/false);
}

std::error_code AdminServer::adopt(int fd) { return net::adopt_listener(*acceptor_, fd); }

void AdminServer::start() {
  asio::co_spawn(io_, accept_loop(acceptor_), asio::detached);
}

void AdminServer::stop() {
  std::error_code ignored;
  acceptor_->close(ignored);
  drop_prepared();
}

asio::ip::tcp::endpoint AdminServer::local_endpoint() const {
  std::error_code ignored;
  return acceptor_->local_endpoint(ignored);
}

std::error_code AdminServer::prepare(const asio::ip::tcp::endpoint& endpoint) {
  auto acceptor = std::make_shared<net::Acceptor>(io_);
  if (auto ec = net::open_listener(*acceptor, endpoint, /*reuse_port=*/false)) return ec;
  prepared_ = std::move(acceptor);
  return {};
}

void AdminServer::switch_to_prepared() {
  if (!prepared_) return;
  std::error_code ignored;
  acceptor_->close(ignored);  // its loop ends; connections it accepted finish
  acceptor_ = std::move(prepared_);
  start();
}

void AdminServer::drop_prepared() {
  if (!prepared_) return;
  std::error_code ignored;
  prepared_->close(ignored);
  prepared_.reset();
}

net::Task<void> AdminServer::accept_loop(AcceptorPtr acceptor) {
  const auto use_tuple = asio::experimental::as_tuple(asio::use_awaitable_t<net::Executor>{});
  for (;;) {
    auto [ec, socket] = co_await acceptor->async_accept(use_tuple);
    if (ec) {
      if (!acceptor->is_open()) co_return;
      net::Timer pause(io_, std::chrono::milliseconds(50));
      co_await pause.async_wait(use_tuple);
      continue;
    }
    asio::co_spawn(io_, serve(std::move(socket)), asio::detached);
  }
}

net::Task<void> AdminServer::serve(net::Socket accepted) {
  const auto use_tuple = asio::experimental::as_tuple(asio::use_awaitable_t<net::Executor>{});
  http::RequestParser parser(http::ParserLimits{});
  std::vector<std::string_view> body;
  char buffer[8192];
  std::string pending;
  // Race window: the deadline may expire in the same reactor round in which this connection's
  // last read completes. The read's handler runs first, this coroutine ends and its frame is
  // freed; cancel() below cannot recall an expiry already queued, so the deadline's handler
  // runs afterwards with success. It must then touch nothing in this frame: it shares the
  // socket instead (the pattern of upstream_connector.cc's ConnectRace), and closing a socket
  // this coroutine already closed does nothing.
  auto shared_socket = std::make_shared<net::Socket>(std::move(accepted));
  net::Socket& socket = *shared_socket;
  net::Timer deadline(io_);
  deadline.expires_after(connection_budget_);
  deadline.async_wait([shared_socket](std::error_code ec) {
    if (!ec) {
      std::error_code ignored;
      shared_socket->close(ignored);
    }
  });
  for (;;) {
    auto [ec, n] = co_await socket.async_read_some(asio::buffer(buffer), use_tuple);
    if (ec) break;
    pending.append(buffer, n);
    bool close = false;
    while (!pending.empty()) {
      body.clear();
      auto fed = parser.feed(pending, body);
      pending.erase(0, fed.consumed);
      if (fed.stop == http::ParseStop::error) {
        close = true;
        std::string out;
        http::write_local_response(parser.error().status, parser.error().cause, true, "", out);
        co_await asio::async_write(socket, asio::buffer(out), use_tuple);
        break;
      }
      if (fed.stop == http::ParseStop::head_complete) {
        // Admin requests carry no body; one that has a body is answered, then closed.
        if (parser.head().framing != http::BodyFraming::none) close = true;
      } else if (fed.stop != http::ParseStop::message_complete) {
        break;  // need more
      }
      const auto& head = parser.head();
      std::string_view path = head.target;
      if (auto q = path.find('?'); q != std::string_view::npos) path = path.substr(0, q);
      const AdminResponse response = handler_(head.method, path);
      const bool keep = head.keep_alive && !close;
      std::string out = fmt::format(
          "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nCache-Control: no-store\r\n"
          "{}\r\n",
          response.status, http::reason_phrase(response.status), response.content_type,
          head.is_head() ? 0 : response.body.size(), keep ? "" : "Connection: close\r\n");
      if (!head.is_head()) out += response.body;
      auto [wec, wn] = co_await asio::async_write(socket, asio::buffer(out), use_tuple);
      parser.reset();
      if (wec || !keep) {
        close = true;
        break;
      }
      (void)wn;
    }
    if (close) break;
  }
  deadline.cancel();
  std::error_code ignored;
  socket.shutdown(asio::socket_base::shutdown_both, ignored);
  socket.close(ignored);
}

}  // namespace needle::server
