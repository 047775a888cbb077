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

AdminServer::AdminServer(asio::io_context& io, AdminHandler handler)
    : io_(io), handler_(std::move(handler)), acceptor_(io) {}

std::error_code AdminServer::open(const asio::ip::tcp::endpoint& endpoint) {
  return net::open_listener(acceptor_, endpoint, /*reuse_port=*/false);
}

void AdminServer::start() { asio::co_spawn(io_, accept_loop(), asio::detached); }

void AdminServer::stop() {
  std::error_code ignored;
  acceptor_.close(ignored);
}

net::Task<void> AdminServer::accept_loop() {
  const auto use_tuple = asio::experimental::as_tuple(asio::use_awaitable_t<net::Executor>{});
  for (;;) {
    auto [ec, socket] = co_await acceptor_.async_accept(use_tuple);
    if (ec) {
      if (!acceptor_.is_open()) co_return;
      net::Timer pause(io_, std::chrono::milliseconds(50));
      co_await pause.async_wait(use_tuple);
      continue;
    }
    asio::co_spawn(io_, serve(std::move(socket)), asio::detached);
  }
}

net::Task<void> AdminServer::serve(net::Socket socket) {
  const auto use_tuple = asio::experimental::as_tuple(asio::use_awaitable_t<net::Executor>{});
  http::RequestParser parser(http::ParserLimits{});
  std::vector<std::string_view> body;
  char buffer[8192];
  std::string pending;
  net::Timer deadline(io_);
  // Admin clients are scrapers and humans: a 30 s budget per connection is plenty.
  deadline.expires_after(std::chrono::seconds(30));
  deadline.async_wait([&socket](std::error_code ec) {
    if (!ec) {
      std::error_code ignored;
      socket.close(ignored);
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
