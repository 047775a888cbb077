#pragma once
// The admin listener (default 127.0.0.1:9901): /healthz, /ready, /metrics (Prometheus text),
// /pools (JSON). Runs on the control thread, never on a worker; data comes from the workers
// through AdminHandler, which gathers per-worker snapshots.
#include <functional>
#include <memory>
#include <string>

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>

#include "base/clock.h"
#include "net/io_types.h"

namespace needle::server {

struct AdminResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
};

// Answers one admin request (method, path without query) on the control thread.
using AdminHandler = std::function<AdminResponse(std::string_view method, std::string_view path)>;

class AdminServer {
 public:
  // Admin clients are scrapers and humans: `connection_budget` (30 s) per connection is plenty.
  AdminServer(asio::io_context& io, AdminHandler handler,
              Millis connection_budget = std::chrono::seconds(30));
  std::error_code open(const asio::ip::tcp::endpoint& endpoint);
  // Listens on `fd`, an inherited listening socket (docs/decisions/0009-binary-upgrade.md);
  // owns it from now on.
  std::error_code adopt(int fd);
  int native_handle() const { return acceptor_ ? acceptor_->native_handle() : -1; }
  void start();
  void stop();  // closes the listener; connections already accepted finish
  bool listening() const { return acceptor_ && acceptor_->is_open(); }
  asio::ip::tcp::endpoint local_endpoint() const;

  // Reload (docs/architecture.md "Reload and shutdown"): prepare() binds the new address beside
  // the current listener and changes nothing else; it fails, changing nothing, when the address
  // cannot be bound. switch_to_prepared() then closes the current listener and serves the new
  // one; drop_prepared() abandons it.
  std::error_code prepare(const asio::ip::tcp::endpoint& endpoint);
  void switch_to_prepared();
  void drop_prepared();

 private:
  using AcceptorPtr = std::shared_ptr<net::Acceptor>;
  // Each loop owns the acceptor it serves, so a loop whose listener was replaced ends on its
  // own closed acceptor and never adopts the new one.
  net::Task<void> accept_loop(AcceptorPtr acceptor);
  net::Task<void> serve(net::Socket socket);

  asio::io_context& io_;
  AdminHandler handler_;
  Millis connection_budget_;
  AcceptorPtr acceptor_;
  AcceptorPtr prepared_;
};

}  // namespace needle::server
