#pragma once
// A worker: one thread, one io_context, its own SO_REUSEPORT listeners, sessions, upstream
// pools, metrics shard and access-log buffer. Nothing here is shared with other workers; the
// only cross-thread entry points are the post_* methods, which run their work on the worker.
#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>

#include "config/config.h"
#include "net/io_types.h"
#include "observe/metrics_shard.h"
#include "proxy/close_race_watch.h"
#include "proxy/keepalive_park.h"
#include "proxy/worker_context.h"
#include "server/worker_io_context.h"
#include "tls/server_tls_context.h"

namespace needle::server {

// Per-worker hooks the server plugs in (metrics, access log, alerts): built on the worker.
class WorkerObserver : public proxy::RequestObserver {
 public:
  virtual void flush() = 0;  // called every 100 ms and at shutdown
  virtual const observe::MetricsShard& metrics() const = 0;
};

class Worker {
 public:
  // `health`: the process-wide host health every runtime reads (null: every host in rotation).
  Worker(unsigned index, std::shared_ptr<const config::Config> config,
         std::unique_ptr<WorkerObserver> observer, upstream::HealthRegistry* health = nullptr);
  ~Worker();

  // Builds this worker's TLS context of each [listener.tls] (before listen_on; the files were
  // checked at load: config/tls_section.cc). Fails with `failure` naming the listener.
  std::error_code build_listener_tls(std::string* failure);
  // Listens for config listener number `listener` at `endpoint` on dups of `shared` (inherited
  // sockets: docs/decisions/0009-binary-upgrade.md) when it is not empty, else on a SO_REUSEPORT
  // socket of its own. A listener may have several acceptors (inherited sockets).
  std::error_code listen_on(size_t listener, const asio::ip::tcp::endpoint& endpoint,
                            const std::vector<int>& shared);
  // The listening sockets' descriptors, in the order opened (the worker keeps owning them).
  std::vector<int> listener_fds() const;
  void start();
  void join();

  // Cross-thread entry points.
  void post_reload(std::shared_ptr<const config::Config> config);
  // Stop accepting; every client gets Connection: close on its next response, idle ones close
  // at their idle deadline; the worker stops when none is left.
  void post_drain();
  void post(std::function<void(Worker&)> task);
  void force_stop();  // drain timeout elapsed

  unsigned index() const { return context_.index; }
  proxy::WorkerContext& context() { return context_; }
  WorkerObserver& observer() { return *observer_; }
  bool stopped() const { return stopped_.load(); }
  size_t parked_clients() const { return park_.size(); }  // on the worker's thread

 private:
  net::Task<void> accept_loop(net::Acceptor& acceptor, size_t listener);
  // Waits until `connections_` is below the limit (or `at_most` passed, for accept backoff).
  net::Task<void> wait_for_accept_slot(std::optional<Millis> at_most);
  void wake_accept_loops();
  // Runs a session for an accepted client, or for a parked one that became readable.
  template <typename Client>
  void spawn_session(Client client);
  // Runs the TLS opening of a client of listener `listener`, then its session (tls_accept.h).
  void spawn_tls_session(net::Socket socket, size_t listener);
  void connection_closed();  // a session ended, or the park closed a client
  void start_flush_timer();
  // Every kParkSweep: sessions idle in keep-alive since before the previous sweep park.
  void start_park_sweep();
  void maybe_finish_drain();

  // One thread runs it. UNSAFE_IO drops the reactor's per-descriptor locks (every start and
  // completion of a socket operation took a mutex): sockets, timers and the pool are touched
  // only from this thread. Other threads only post() to it, which stays locked.
  // Declared first, so it outlives everything that holds its sockets and timers; ~Worker
  // destroys its pending operations before the members they point to (worker_io_context.h).
  WorkerIoContext io_{ASIO_CONCURRENCY_HINT_UNSAFE_IO};
  proxy::WorkerContext context_;
  std::unique_ptr<WorkerObserver> observer_;
  upstream::HealthRegistry* health_;  // outlives the worker (Server owns both)
  std::vector<std::unique_ptr<net::Acceptor>> acceptors_;
  std::vector<size_t> acceptor_listener_;  // per acceptor: its config listener's index
  // Per config listener: its TLS context, null for a plain listener.
  std::vector<std::shared_ptr<const tls::ServerTlsContext>> listener_tls_;
  net::Timer flush_timer_;
  net::Timer park_sweep_timer_;
  // Before park_, whose expiries it takes over (and outlives).
  proxy::CloseRaceWatch close_watch_;
  proxy::KeepAlivePark park_;
  size_t parked_at_last_sweep_ = 0;
  // Timers of the accept loops paused at the connection limit (or backing off after an accept
  // error); a session ending, a reload or a drain cancels them to wake the loops.
  std::vector<net::Timer*> paused_accepts_;
  std::thread thread_;
  std::atomic<bool> stopped_{false};
  uint32_t connections_ = 0;  // client connections on this worker: sessions and parked
  // Accept errors (EMFILE, ENFILE, ENOBUFS) are logged at most once per second with a count.
  TimePoint accept_error_logged_at_{};
  uint64_t accept_errors_unlogged_ = 0;
};

}  // namespace needle::server
