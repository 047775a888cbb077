#include "server/worker.h"

#include <asio/experimental/as_tuple.hpp>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/post.hpp>
#include <asio/use_awaitable.hpp>

#include "base/log.h"
#include "net/listener.h"
#include "proxy/downstream_session.h"

namespace needle::server {

Worker::Worker(unsigned index, std::shared_ptr<const config::Config> config,
               std::unique_ptr<WorkerObserver> observer)
    : context_(index, io_.get_executor(), SteadyClock::instance()),
      observer_(std::move(observer)),
      flush_timer_(io_) {
  context_.runtime = std::make_shared<proxy::WorkerRuntime>(io_.get_executor(), std::move(config),
                                                            context_.clock);
  context_.observer = observer_.get();
}

Worker::~Worker() {
  force_stop();
  join();
}

std::error_code Worker::open_listeners(const std::vector<asio::ip::tcp::endpoint>& endpoints,
                                       std::string* failed_address) {
  for (const auto& endpoint : endpoints) {
    auto acceptor = std::make_unique<asio::ip::tcp::acceptor>(io_);
    if (auto ec = net::open_listener(*acceptor, endpoint, /*reuse_port=*/true)) {
      if (failed_address) *failed_address = net::endpoint_string(endpoint);
      return ec;
    }
    acceptors_.push_back(std::move(acceptor));
  }
  return {};
}

void Worker::start() {
  for (auto& acceptor : acceptors_) {
    asio::co_spawn(io_, accept_loop(*acceptor), asio::detached);
  }
  start_flush_timer();
  thread_ = std::thread([this] {
    auto guard = asio::make_work_guard(io_);
    io_.run();
    stopped_ = true;
  });
}

void Worker::join() {
  if (thread_.joinable()) thread_.join();
}

void Worker::start_flush_timer() {
  flush_timer_.expires_after(std::chrono::milliseconds(100));
  flush_timer_.async_wait([this](std::error_code ec) {
    if (ec) return;
    observer_->flush();
    start_flush_timer();
  });
}

asio::awaitable<void> Worker::accept_loop(asio::ip::tcp::acceptor& acceptor) {
  const auto use_tuple = asio::experimental::as_tuple(asio::use_awaitable);
  for (;;) {
    auto [ec, socket] = co_await acceptor.async_accept(use_tuple);
    if (ec) {
      if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
      // EMFILE/ENFILE/ENOBUFS: back off instead of spinning; existing connections keep working.
      log::warn("worker", "worker {}: accept failed: {}", context_.index, ec.message());
      asio::steady_timer pause(io_, std::chrono::milliseconds(50));
      co_await pause.async_wait(use_tuple);
      continue;
    }
    if (context_.draining) {
      std::error_code ignored;
      socket.close(ignored);
      continue;
    }
    const auto& server = context_.runtime->config->server;
    if (server.max_connections_per_worker != 0 &&
        connections_ >= server.max_connections_per_worker) {
      // Over the per-worker limit: refuse this one (the kernel backlog holds the rest).
      std::error_code ignored;
      socket.close(ignored);
      continue;
    }
    net::tune_accepted_socket(socket);
    ++connections_;
    asio::co_spawn(
        io_,
        [this, s = std::move(socket)]() mutable -> asio::awaitable<void> {
          auto session = std::make_unique<proxy::DownstreamSession>(context_, std::move(s));
          co_await session->run();
        },
        [this](std::exception_ptr) {
          --connections_;
          maybe_finish_drain();
        });
  }
}

void Worker::post_reload(std::shared_ptr<const config::Config> config) {
  asio::post(io_, [this, config = std::move(config)]() mutable {
    auto fresh = std::make_shared<proxy::WorkerRuntime>(io_.get_executor(), std::move(config),
                                                        context_.clock);
    auto old = std::exchange(context_.runtime, std::move(fresh));
    // Idle connections of the old generation close now; busy ones close when released.
    for (auto& cluster : old->clusters) cluster->drain();
  });
}

void Worker::post_drain() {
  asio::post(io_, [this] {
    context_.draining = true;
    for (auto& acceptor : acceptors_) {
      std::error_code ignored;
      acceptor->close(ignored);
    }
    for (auto* session : context_.sessions) session->begin_drain();
    maybe_finish_drain();
  });
}

void Worker::maybe_finish_drain() {
  if (!context_.draining || connections_ != 0) return;
  for (auto& cluster : context_.runtime->clusters) cluster->drain();
  flush_timer_.cancel();
  observer_->flush();
  io_.stop();
}

void Worker::post(std::function<void(Worker&)> task) {
  asio::post(io_, [this, task = std::move(task)] { task(*this); });
}

void Worker::force_stop() {
  if (!thread_.joinable()) return;
  asio::post(io_, [this] {
    observer_->flush();
    io_.stop();
  });
}

}  // namespace needle::server
