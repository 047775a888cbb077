#include "server/worker.h"

#include <fcntl.h>
#include <unistd.h>

#include <asio/experimental/as_tuple.hpp>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/post.hpp>
#include <asio/use_awaitable.hpp>

#include "base/heap_release.h"
#include "base/log.h"
#include "net/listener.h"
#include "proxy/downstream_session.h"
#include "server/tls_accept.h"

namespace needle::server {

Worker::Worker(unsigned index, std::shared_ptr<const config::Config> config,
               std::unique_ptr<WorkerObserver> observer, upstream::HealthRegistry* health)
    : context_(index, io_.get_executor(), SteadyClock::instance()),
      observer_(std::move(observer)),
      health_(health),
      flush_timer_(io_),
      park_sweep_timer_(io_),
      close_watch_(
          io_.get_executor(), context_.clock, proxy::CloseRaceSettings{},
          [this](const proxy::CloseRaceReport& report) {
            context_.observer->on_idle_client_close({report.listener, report.outcome});
          },
          [this] { connection_closed(); }),
      park_(
          io_.get_executor(), context_.clock,
          [this](proxy::ParkedClient&& client) { spawn_session(std::move(client)); },
          [this] { connection_closed(); }) {
  context_.runtime = std::make_shared<proxy::WorkerRuntime>(io_.get_executor(), std::move(config),
                                                            context_.clock, nullptr, health_);
  context_.observer = observer_.get();
  context_.park = &park_;
  context_.close_watch = &close_watch_;
  park_.set_idle_close_handler([this](proxy::ParkedClient&& client) {
    close_watch_.close_and_watch(std::move(client.socket), client.idle_since,
                                 context_.runtime->config->listeners);
  });
}

Worker::~Worker() {
  force_stop();
  join();
  // Sessions cut off by the drain timeout are still suspended in io_: end them now, while the
  // context, observer and counters their destructors touch are alive.
  io_.destroy_pending_operations();
}

std::error_code Worker::build_listener_tls(std::string* failure) {
  const auto& listeners = context_.runtime->config->listeners;
  listener_tls_.clear();
  for (const auto& listener : listeners) {
    if (!listener.tls) {
      listener_tls_.push_back(nullptr);
      continue;
    }
    auto created = tls::ServerTlsContext::create(listener.tls->settings, listener_ticket_keys());
    if (!created.context) {
      if (failure) {
        *failure = fmt::format("{} (TLS: {})", listener.address.to_string(),
                               created.errors.front().to_string());
      }
      return std::make_error_code(std::errc::invalid_argument);
    }
    listener_tls_.push_back(std::move(created.context));
  }
  return {};
}

std::error_code Worker::listen_on(size_t listener, const asio::ip::tcp::endpoint& endpoint,
                                  const std::vector<int>& shared) {
  if (shared.empty()) {
    auto acceptor = std::make_unique<net::Acceptor>(io_);
    if (auto ec = net::open_listener(*acceptor, endpoint, /*reuse_port=*/true)) return ec;
    acceptors_.push_back(std::move(acceptor));
    acceptor_listener_.push_back(listener);
    return {};
  }
  for (int fd : shared) {
    const int copy = ::fcntl(fd, F_DUPFD_CLOEXEC, 3);
    if (copy < 0) return {errno, std::system_category()};
    auto acceptor = std::make_unique<net::Acceptor>(io_);
    if (auto ec = net::adopt_listener(*acceptor, copy)) {
      ::close(copy);
      return ec;
    }
    acceptors_.push_back(std::move(acceptor));
    acceptor_listener_.push_back(listener);
  }
  return {};
}

std::vector<int> Worker::listener_fds() const {
  std::vector<int> fds;
  for (const auto& acceptor : acceptors_) fds.push_back(acceptor->native_handle());
  return fds;
}

void Worker::start() {
  for (size_t i = 0; i < acceptors_.size(); ++i) {
    asio::co_spawn(io_, accept_loop(*acceptors_[i], acceptor_listener_[i]), asio::detached);
  }
  start_flush_timer();
  start_park_sweep();
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

// A sweep period long enough that request/response traffic never parks (its sessions idle for
// well under a millisecond), short enough that an idle burst gives its memory back within half
// a second.
constexpr Millis kParkSweep{250};
// Parking this many sessions (or releasing this many pooled buffers) frees enough heap to be worth
// returning to the kernel now rather than at the allocator's decay (base/heap_release.h).
constexpr size_t kTrimAfterParked = 32;
constexpr size_t kTrimAfterReleased = 16;

void Worker::start_park_sweep() {
  park_sweep_timer_.expires_after(kParkSweep);
  park_sweep_timer_.async_wait([this](std::error_code ec) {
    if (ec) return;
    // Buffers and parsers a burst left in the pools and nobody used for a whole period go.
    const size_t released = context_.client_buffers.release_unused() +
                            context_.upstream_buffers.release_unused() +
                            context_.response_parsers.release_unused();
    // The sessions asked last time have handed over by now (their cancelled reads completed).
    if (park_.size() >= parked_at_last_sweep_ + kTrimAfterParked ||
        released >= kTrimAfterReleased) {
      release_free_heap();
    }
    parked_at_last_sweep_ = park_.size();
    // Sessions whose idle wait began before the previous sweep have idled a whole period; those
    // whose upstream has not answered for as long start watching their client.
    for (auto* session : context_.sessions) {
      session->park_if_idle_before(context_.idle_epoch);
      session->watch_client_if_waiting_before(context_.idle_epoch);
    }
    ++context_.idle_epoch;
    start_park_sweep();
  });
}

net::Task<void> Worker::wait_for_accept_slot(std::optional<Millis> at_most) {
  net::Timer timer(io_);
  if (at_most) {
    timer.expires_after(*at_most);
  } else {
    timer.expires_at(net::Timer::time_point::max());
  }
  paused_accepts_.push_back(&timer);
  co_await timer.async_wait(asio::experimental::as_tuple(asio::use_awaitable_t<net::Executor>{}));
  std::erase(paused_accepts_, &timer);
}

void Worker::wake_accept_loops() {
  for (auto* timer : paused_accepts_) timer->cancel();
}

// Over max_connections_per_worker the loop stops accepting (the kernel backlog holds new
// connections; they are accepted as sessions end), so a flood never costs fds or a crash. An
// accept error (EMFILE, ENFILE, ENOBUFS, ...) backs off 50 ms, or until a session ends and frees
// an fd, instead of spinning on the still-pending connection; existing connections keep working.
net::Task<void> Worker::accept_loop(net::Acceptor& acceptor, size_t listener) {
  const auto use_tuple = asio::experimental::as_tuple(asio::use_awaitable_t<net::Executor>{});
  for (;;) {
    for (;;) {
      const uint32_t limit = context_.runtime->config->server.max_connections_per_worker;
      if (limit == 0 || connections_ < limit || context_.draining || !acceptor.is_open()) break;
      co_await wait_for_accept_slot(std::nullopt);
    }
    if (context_.draining || !acceptor.is_open()) co_return;
    auto [ec, socket] = co_await acceptor.async_accept(use_tuple);
    if (ec) {
      if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
      const auto now = context_.clock.now();
      if (accept_error_logged_at_ == TimePoint{} ||
          now - accept_error_logged_at_ >= std::chrono::seconds(1)) {
        log::warn("worker", "worker {}: accept failed: {} ({} more since the last report); "
                  "pausing accepts, {} connection(s) open",
                  context_.index, ec.message(), accept_errors_unlogged_, connections_);
        accept_error_logged_at_ = now;
        accept_errors_unlogged_ = 0;
      } else {
        ++accept_errors_unlogged_;
      }
      co_await wait_for_accept_slot(Millis(50));
      continue;
    }
    if (context_.draining) {
      std::error_code ignored;
      socket.close(ignored);
      continue;
    }
    net::tune_accepted_socket(socket);
    ++connections_;
    if (listener < listener_tls_.size() && listener_tls_[listener]) {
      spawn_tls_session(std::move(socket), listener);
    } else {
      spawn_session(net::Stream(std::move(socket)));
    }
  }
}

void Worker::spawn_tls_session(net::Socket socket, size_t listener) {
  asio::co_spawn(
      io_,
      [this, s = std::move(socket), listener]() mutable -> net::Task<bool> {
        // The context and its settings stay alive for the handshake whatever a reload does.
        std::shared_ptr<const tls::ServerTlsContext> context = listener_tls_[listener];
        const auto& listeners = context_.runtime->config->listeners;
        const Millis timeout = listener < listeners.size() && listeners[listener].tls
                                   ? listeners[listener].tls->handshake_timeout
                                   : config::ListenerTlsConfig{}.handshake_timeout;
        auto stream = co_await accept_tls(std::move(s), *context, timeout, context_.observer);
        if (!stream || context_.draining) co_return false;
        auto session = std::make_unique<proxy::DownstreamSession>(context_, std::move(*stream));
        co_await session->run();
        co_return session->parked();
      },
      [this](std::exception_ptr, bool parked) {
        if (!parked) connection_closed();
      });
}

template <typename Client>
void Worker::spawn_session(Client client) {
  asio::co_spawn(
      io_,
      [this, c = std::move(client)]() mutable -> net::Task<bool> {
        auto session = std::make_unique<proxy::DownstreamSession>(context_, std::move(c));
        co_await session->run();
        co_return session->parked();
      },
      [this](std::exception_ptr, bool parked) {
        if (!parked) connection_closed();  // a parked client is still open: the park counts it
      });
}

void Worker::connection_closed() {
  --connections_;
  wake_accept_loops();  // a paused accept loop may take the next connection
  maybe_finish_drain();
}

void Worker::post_reload(std::shared_ptr<const config::Config> config) {
  asio::post(io_, [this, config = std::move(config)]() mutable {
    // On this thread: the new generation takes over the pools of the hosts it keeps
    // (WorkerRuntime), which only this thread may touch.
    auto fresh = std::make_shared<proxy::WorkerRuntime>(
        io_.get_executor(), std::move(config), context_.clock, context_.runtime.get(), health_);
    auto old = std::exchange(context_.runtime, std::move(fresh));
    // Pools of hosts the new config dropped: idle connections close now, busy ones when
    // released. Kept pools serve both generations until the old one's last request ends.
    for (auto& cluster : old->clusters) cluster->drain();
    // Tunnels run on the generation they started with: they get drain_timeout, then close.
    const TimePoint tunnels_end =
        context_.clock.now() + context_.runtime->config->server.drain_timeout;
    for (auto* session : context_.sessions) session->close_tunnel_at(tunnels_end);
    wake_accept_loops();  // max_connections_per_worker may have changed
  });
}

void Worker::post_drain() {
  asio::post(io_, [this] {
    context_.draining = true;
    for (auto& acceptor : acceptors_) {
      std::error_code ignored;
      acceptor->close(ignored);
    }
    wake_accept_loops();
    for (auto* session : context_.sessions) session->begin_drain();
    // Parked clients stay until their next request (answered with Connection: close) or their
    // idle deadline: closing them now races a request they may be sending.
    close_watch_.close_all();  // connections already closed: nothing to race
    maybe_finish_drain();
  });
}

void Worker::maybe_finish_drain() {
  if (!context_.draining || connections_ != 0) return;
  for (auto& cluster : context_.runtime->clusters) cluster->drain();
  flush_timer_.cancel();
  park_sweep_timer_.cancel();
  observer_->flush();
  io_.stop();
}

void Worker::post(std::function<void(Worker&)> task) {
  asio::post(io_, [this, task = std::move(task)] { task(*this); });
}

void Worker::force_stop() {
  if (!thread_.joinable()) return;
  asio::post(io_, [this] {
    // Tunnels still open are cut now and logged (closed_by drain) before the last flush.
    for (auto* session : context_.sessions) session->close_tunnel_now();
    observer_->flush();
    io_.stop();
  });
}

}  // namespace needle::server
