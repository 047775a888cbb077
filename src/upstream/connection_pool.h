#pragma once
// Per-worker, per-host pool of keep-alive upstream connections (DESIGN.md "The race-free pool").
// Single-threaded: every method runs on the owning worker's io_context; nothing here locks.
//
// Connection states: connecting -> busy (leased) -> idle -> busy ... -> closing. Only the pool
// moves a connection between states (one transition function). Invariants:
//   - every idle connection has exactly one pending read-readiness wait (the idle watch): readable
//     while idle means FIN, RST or stray bytes, and evicts it at once, reporting the idle age to
//     the IdleTimeoutEstimator;
//   - checkout is LIFO, skips and evicts connections at/over the idle limit or max age, and probes
//     the socket with recv(MSG_PEEK | MSG_DONTWAIT): anything but EAGAIN evicts. A connection
//     idle for less than probe_exempt_idle whose reactor state shows no event since its last
//     response drained the queue is as good as probed and is not looked at again (host_pool.cc);
//   - an eager timer evicts idle connections as they reach the limit;
//   - at most one sentinel per host (when the estimator wants one) is never handed out.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <system_error>

#include <asio/ip/tcp.hpp>

#include "base/cause.h"
#include "base/clock.h"
#include "config/config.h"
#include "net/io_types.h"
#include "net/stream.h"
#include "upstream/idle_timeout_estimator.h"
#include "upstream/pool_types.h"  // EvictReason, PoolCounters, PoolSettings, ReleaseInfo

namespace needle::upstream {

class HostPool;

class UpstreamConnection {
 public:
  UpstreamConnection(net::Stream stream, uint64_t id, TimePoint created);
  // The raw socket: the idle watch, the checkout probe and cancellation look at it, TLS or not.
  net::Socket& socket() { return stream_.socket(); }
  // What the exchange reads and writes (plain or TLS).
  net::Stream& stream() { return stream_; }
  uint64_t id() const { return id_; }
  // Exchanges completed on this connection before the current one (0 = fresh connection).
  uint32_t requests_done() const { return requests_done_; }
  bool reused() const { return requests_done_ > 0; }
  Millis idle_age_at_checkout() const { return idle_age_at_checkout_; }
  TimePoint created() const { return created_; }

 private:
  friend class HostPool;
  net::Stream stream_;
  uint64_t id_;
  TimePoint created_;
  // Copies of the pool's record, set at checkout for the exchange to read; the pool's core
  // (pool_core.h) keeps the authoritative idle_since / requests done / sentinel state.
  uint32_t requests_done_ = 0;
  Millis idle_age_at_checkout_{0};
  // Bumped on every arm and every checkout: an idle-watch completion carrying an older value
  // belongs to an idle period that is over and must touch nothing.
  uint64_t watch_generation_ = 0;
  char watch_byte_ = 0;  // target of the idle watch's MSG_PEEK receive (never consumed)
  bool watch_armed_ = false;  // an idle-watch receive is pending on socket_
};

// A connection on loan to one exchange. Move-only. Destroyed without release(): the connection
// is closed and counted as not_reusable.
class ConnectionLease {
 public:
  ConnectionLease() = default;
  ConnectionLease(std::shared_ptr<HostPool> pool, std::unique_ptr<UpstreamConnection> conn);
  ConnectionLease(ConnectionLease&&) noexcept;
  ConnectionLease& operator=(ConnectionLease&&) noexcept;
  ~ConnectionLease();

  explicit operator bool() const { return conn_ != nullptr; }
  UpstreamConnection* operator->() const { return conn_.get(); }
  UpstreamConnection& connection() const { return *conn_; }
  void release(const ReleaseInfo& info);  // back to the pool (or closed, per the predicate)
  void discard();                         // close now

 private:
  std::shared_ptr<HostPool> pool_;
  std::unique_ptr<UpstreamConnection> conn_;
};

struct ConnectResult {
  ConnectionLease lease;     // set on success
  Cause cause = Cause::none; // connect_refused / connect_timeout / connect_error / resolve_failed
  std::error_code error;
};

class HostPool : public std::enable_shared_from_this<HostPool> {
 public:
  static std::shared_ptr<HostPool> create(net::Executor executor, config::HostPort address,
                                          const PoolSettings& settings, const Clock& clock);
  ~HostPool();

  // LIFO checkout of a live idle connection under the limit for this kind of request
  // (effective_limit, or non_replayable_limit when the request cannot be replayed).
  ConnectionLease checkout_idle(bool request_replayable);
  // A fresh connection: resolve (if a name), connect within connect_timeout, TCP_NODELAY.
  net::Task<ConnectResult> connect();
  // Close every idle connection; from now on releases close too.
  void drain();
  // A reload kept this host: new settings from now on, everything learned and counted stays
  // (PoolCore::reconfigure). Idle connections past a shorter limit go at the next expiry.
  void reconfigure(const PoolSettings& settings);
  // The health checker saw this host close its kept-alive connection while idle (issue 20):
  // evidence for the estimator, judged like the pool's own closes (decision 0006).
  void note_idle_close_elsewhere(const IdleClose& close);

  const config::HostPort& address() const;
  size_t idle_count() const;
  size_t busy_count() const;
  uint32_t active_requests() const;           // leases out + connects in flight
  bool ejected() const;                       // passive health: too many connect failures
  const IdleTimeoutEstimator& estimator() const;
  const PoolCounters& counters() const;
  bool has_sentinel() const;                  // an idle connection kept past the limit to learn
  size_t watched_count() const;               // idle connections whose watch is armed

  // Binary upgrade hand-off (docs/decisions/0009-binary-upgrade.md): what was learned about
  // the host, taken by the old process and restored into the new one's fresh pool.
  struct LearnedState {
    IdleTimeoutEstimator::Evidence evidence;
    std::optional<Millis> ejection_left;
  };
  LearnedState learned_state() const;
  void restore_learned_state(const LearnedState& state);

 private:
  friend class ConnectionLease;
  struct Impl;
  HostPool(net::Executor executor, config::HostPort address, const PoolSettings& settings,
           const Clock& clock);
  void on_release(std::unique_ptr<UpstreamConnection> conn, const ReleaseInfo& info);
  void on_discard(std::unique_ptr<UpstreamConnection> conn);
  net::Task<std::optional<net::Stream>> open_tls(net::Socket socket, struct ConnectOutcome& outcome);
  void defer_idle_watch(UpstreamConnection& conn);
  void wait_watch_window();
  void arm_deferred_watches();
  UpstreamConnection* idle_in_generation(uint64_t id, uint64_t generation);
  void arm_idle_watch(UpstreamConnection& conn);
  void on_idle_watch(uint64_t id, uint64_t generation);
  void rearm_expiry_timer();
  void report_limit_change();
  void on_expiry_timer(uint64_t generation);
  std::unique_ptr<Impl> impl_;
};

}  // namespace needle::upstream
