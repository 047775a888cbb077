#pragma once
// The admin listener (default 127.0.0.1:9901): /healthz, /ready, /metrics (Prometheus text),
// /pools (JSON). Runs on the control thread, never on a worker; data comes from the workers
// through AdminHandler, which gathers per-worker snapshots.
#include <functional>
#include <memory>
#include <string>

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>

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
  AdminServer(asio::io_context& io, AdminHandler handler);
  std::error_code open(const asio::ip::tcp::endpoint& endpoint);
  void start();
  void stop();

 private:
  net::Task<void> accept_loop();
  net::Task<void> serve(net::Socket socket);

  asio::io_context& io_;
  AdminHandler handler_;
  net::Acceptor acceptor_;
};

}  // namespace needle::server
