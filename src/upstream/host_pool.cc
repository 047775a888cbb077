#include <algorithm>
#include <atomic>
#include <string>
#include <utility>
#include <vector>


#include <openssl/err.h>

#include "base/log.h"
#include "net/socket_io.h"
#include "tls/handshake_failure.h"
#include "net/draining_read.h"
#include "net/receive_queue_hint.h"
#include "upstream/connection_pool.h"
#include "upstream/idle_socket_probe.h"
#include "upstream/pool_core.h"
#include "upstream/upstream_connector.h"

namespace needle::upstream {
namespace {

// Process-wide so a connection id names one connection in logs across workers.
std::atomic<uint64_t> next_connection_id{1};

IdleSocketState peek(UpstreamConnection& conn) {
  IdleSocketState state = peek_idle_socket(conn.socket().native_handle());
  // A TLS upstream closes an idle connection with a close_notify record and a FIN: a byte while
  // idle is that close, never a response (docs/decisions/0008-tls-stream.md). Bytes OpenSSL
  // read ahead of a record are not on the socket: they count too.
  if (conn.stream().is_tls()) {
    if (state == IdleSocketState::stray_bytes) state = IdleSocketState::closed;
    if (state == IdleSocketState::quiet && conn.stream().has_buffered_input()) {
      state = IdleSocketState::closed;
    }
  }
  // The probe just saw no byte, FIN or error, so the next read on this socket (the response
  // read after checkout, or the re-armed watch) need not start with a recv that can only fail.
  // Said here, next to the probe, or not at all (net/receive_queue_hint.h).
  if (state == IdleSocketState::quiet) net::note_receive_queue_empty(conn.socket());
  return state;
}

// The checkout's look at an idle connection (DESIGN.md rule 2), without a syscall where the
// reactor already knows the answer. `may_skip`: younger than PoolSettings::probe_exempt_idle.
//
// Why the reactor knows: Asio's epoll reactor keeps, per socket, whether the next read must
// start with a recv() (try_speculative_). The flag is off only where needle turned it off at a
// moment the receive queue was seen empty, with no FIN: the last response read (a draining read
// that left TCP_CM_INQ at 0; TCP_INQ is set by open_upstream_socket), or a quiet probe. (The
// idle watch's receive is a draining read too, so a FIN it meets leaves the flag on, where
// Asio's stock receive would turn it off.) Every byte, FIN or RST that arrives afterwards
// raises an EPOLLIN/EPOLLHUP edge (sockets are registered with EPOLLET), and the reactor turns
// the flag back on when it performs that edge, whether or not a read is queued. It performs it
// after the handlers of the events harvested before it in the same epoll_wait: this checkout
// may run in one of those, so the flag alone is not enough. reactor_vouches_quiet also asks
// whether the socket's own event still waits in the scheduler's queue
// (docs/decisions/0004-checkout-probe-from-the-reactor.md, "Same batch"). Both quiet means: as
// quiet as a probe would have found it at the last epoll_wait.
// Race window: what arrived after that epoll_wait (at most one batch of handlers ago). The
// probe narrows the window to the microseconds between probe and write, but cannot close it
// either (a FIN can follow the probe); the checkout's real defence is rule 3, expiry before the
// upstream's idle timeout, and below probe_exempt_idle no idle-timeout close can fall into the
// window. An abrupt close (a crash, a restart) in the window is the race that retries exist
// for, as it is after a probe.
// Also not seen: a RST that arrived together with the response's last bytes (TCP_CM_INQ does
// not count sk_err). The request's first write then fails with ECONNRESET before any byte is
// sent, and a request of which no byte was sent is retried whatever its method (RetryPolicy).
// With the reactor seam off (net/reactor_seam.h) the reactor vouches for nothing: always probe.
// A TLS connection is always probed: its reads are readiness waits, not the draining reads
// whose flag the reactor's vouching relies on.
IdleSocketState checkout_probe(UpstreamConnection& conn, bool may_skip) {
  if (may_skip && !conn.stream().is_tls() && net::reactor_vouches_quiet(conn.socket())) {
    return IdleSocketState::quiet_unprobed;
  }
  return peek(conn);
}

}  // namespace

UpstreamConnection::UpstreamConnection(net::Stream stream, uint64_t id, TimePoint created)
    : stream_(std::move(stream)), id_(id), created_(created) {}

struct HostPool::Impl {
  Impl(net::Executor executor, config::HostPort address, const PoolSettings& settings,
       const Clock& clock)
      : address(std::move(address)),
        settings(settings),
        clock(clock),
        core(settings, clock),
        expiry_timer(executor),
        watch_timer(executor) {}

  config::HostPort address;
  PoolSettings settings;
  const Clock& clock;
  // Owns the idle connections; destroying it closes their sockets (pending watches complete
  // with operation_aborted and find the pool gone).
  PoolCore<UpstreamConnection> core;
  // One timer per pool, armed at core.next_deadline(); armed_deadline is what it waits for.
  net::Timer expiry_timer;
  std::optional<TimePoint> armed_deadline;
  uint64_t timer_generation = 0;
  // Connections released since watch_timer's last expiry (released_now) and in the window
  // before it (released_before), by id and generation; watch_timer waits iff either is
  // non-empty. defer_idle_watch says why two windows.
  using Released = std::vector<std::pair<uint64_t, uint64_t>>;
  Released released_now;
  Released released_before;
  net::Timer watch_timer;
  // The estimator's revision when report_limit_change() last looked, and whether it last saw
  // reuse stopped (a warning is logged on each change of that state, not on every close).
  uint64_t seen_revision = 0;
  bool reuse_stopped = false;
  // The host's last TLS session (settings.tls set): every new connection offers it.
  tls::ClientSessionSlot session_slot;
};

std::shared_ptr<HostPool> HostPool::create(net::Executor executor, config::HostPort address,
                                           const PoolSettings& settings, const Clock& clock) {
  return std::shared_ptr<HostPool>(new HostPool(std::move(executor), std::move(address), settings,
                                                clock));
}

HostPool::HostPool(net::Executor executor, config::HostPort address, const PoolSettings& settings,
                   const Clock& clock)
    : impl_(std::make_unique<Impl>(std::move(executor), std::move(address), settings, clock)) {}

HostPool::~HostPool() = default;

ConnectionLease HostPool::checkout_idle(bool request_replayable) {
  auto checkout = impl_->core.checkout(request_replayable, checkout_probe);
  rearm_expiry_timer();
  if (!checkout) return {};
  UpstreamConnection& conn = *checkout->conn;
  // Race window: the idle watch may already have completed (its handler queued) when we get
  // here; cancel() cannot recall it, the generation bump makes it a no-op when it runs.
  ++conn.watch_generation_;
  if (conn.watch_armed_) {
    conn.watch_armed_ = false;
    std::error_code ignored;
    conn.socket().cancel(ignored);
  }
  conn.requests_done_ = checkout->requests_done;
  conn.idle_age_at_checkout_ = checkout->idle_age;
  return ConnectionLease(shared_from_this(), std::move(checkout->conn));
}

net::Task<ConnectResult> HostPool::connect() {
  // Keeps the pool alive across suspensions, and counts this connect in active_requests()
  // until it has an outcome, even if the coroutine is destroyed while suspended.
  auto self = shared_from_this();
  struct InFlight {
    PoolCore<UpstreamConnection>* core;
    bool settled = false;
    ~InFlight() {
      if (!settled) core->connect_abandoned();
    }
  } in_flight{&impl_->core};
  impl_->core.connect_started();

  ConnectOutcome outcome = co_await open_upstream_socket(impl_->address,
                                                         impl_->settings.connect_timeout);
  std::optional<net::Stream> stream;
  if (outcome.cause == Cause::none) {
    // if/else, not ?: with a co_await in an arm (g++ 12: see downstream_session.cc read_more).
    if (impl_->settings.tls_required) {
      stream = co_await open_tls(std::move(*outcome.socket), outcome);
    } else {
      stream.emplace(std::move(*outcome.socket));
    }
  }
  in_flight.settled = true;
  if (outcome.cause != Cause::none) {
    impl_->core.connect_failed(outcome.cause);
    report_limit_change();
    co_return ConnectResult{ConnectionLease(), outcome.cause, outcome.error};
  }
  const uint64_t id = next_connection_id.fetch_add(1, std::memory_order_relaxed);
  const TimePoint now = impl_->clock.now();
  impl_->core.connect_succeeded(id, now);
  auto conn = std::make_unique<UpstreamConnection>(std::move(*stream), id, now);
  co_return ConnectResult{ConnectionLease(self, std::move(conn)), Cause::none, {}};
}

// The TLS handshake on a connected socket, under its own connect_timeout. Offers the host's
// last session (ClientSessionSlot: one per host per worker), so a connection opened after an
// idle expiry resumes. On failure sets outcome.cause (verify or handshake) and returns nullopt.
net::Task<std::optional<net::Stream>> HostPool::open_tls(net::Socket socket,
                                                          ConnectOutcome& outcome) {
  if (!impl_->settings.tls) {
    outcome.cause = Cause::upstream_tls_handshake_failed;
    outcome.error = std::make_error_code(std::errc::protocol_error);
    co_return std::nullopt;  // the context could not be built (logged at configuration)
  }
  net::Stream stream(std::move(socket),
                     net::SslHandle(impl_->settings.tls
                                        ->new_ssl(impl_->address.host, &impl_->session_slot)
                                        .release()));
  struct Guard {
    net::Socket* target;
    bool timed_out = false;
  };
  auto guard = std::make_shared<Guard>(Guard{&stream.socket()});
  net::Timer deadline(impl_->expiry_timer.get_executor());
  deadline.expires_after(impl_->settings.connect_timeout);
  deadline.async_wait([guard](std::error_code ec) {
    if (ec || guard->target == nullptr) return;
    guard->timed_out = true;
    std::error_code ignored;
    guard->target->cancel(ignored);
  });
  const std::error_code ec = co_await net::tls_handshake(stream);
  guard->target = nullptr;
  deadline.cancel();
  if (!ec) {
    if (SSL_session_reused(stream.ssl()) == 1) impl_->core.count_tls_resumed();
    co_return std::optional<net::Stream>(std::move(stream));
  }
  outcome.error = ec;
  if (guard->timed_out) {
    outcome.cause = Cause::connect_timeout;
    outcome.error = asio::error::timed_out;
  } else if (ec == std::make_error_code(std::errc::protocol_error) &&
             tls::classify_handshake_failure(stream.ssl(), {}) ==
                 tls::HandshakeFailure::verify_failed) {
    outcome.cause = Cause::upstream_tls_verify_failed;
    outcome.error = std::make_error_code(std::errc::permission_denied);
  } else {
    outcome.cause = Cause::upstream_tls_handshake_failed;
  }
  ERR_clear_error();
  co_return std::nullopt;
}

void HostPool::drain() {
  impl_->core.drain();
  rearm_expiry_timer();
}

HostPool::LearnedState HostPool::learned_state() const {
  const TimePoint now = impl_->clock.now();
  return {impl_->core.estimator().evidence(now), impl_->core.ejection_left()};
}

void HostPool::restore_learned_state(const LearnedState& state) {
  impl_->core.estimator().restore(state.evidence, impl_->clock.now());
  if (state.ejection_left) impl_->core.restore_ejection(*state.ejection_left);
  rearm_expiry_timer();
}

void HostPool::reconfigure(const PoolSettings& settings) {
  impl_->settings = settings;
  impl_->core.reconfigure(settings);
  rearm_expiry_timer();
}

void HostPool::note_idle_close_elsewhere(const IdleClose& close) {
  impl_->core.estimator().on_idle_close(close);
  rearm_expiry_timer();  // the limit may have moved; reports a stop of reuse
}

void HostPool::on_release(std::unique_ptr<UpstreamConnection> conn, const ReleaseInfo& info) {
  const uint64_t id = conn->id();
  if (UpstreamConnection* kept = impl_->core.release(id, std::move(conn), info)) {
    defer_idle_watch(*kept);
  }
  rearm_expiry_timer();
}

void HostPool::on_discard(std::unique_ptr<UpstreamConnection> conn) {
  const uint64_t id = conn->id();
  impl_->core.discard(id, std::move(conn));
}

// Invariant: every idle connection (and the sentinel) has exactly one pending watch armed here,
// or, just released, one entry in a window's list (defer_idle_watch).
// The watch is a 1-byte recv(MSG_PEEK), not a readiness wait: Asio's epoll reactor is
// edge-triggered, so a FIN or bytes that arrived while the connection was busy (their edge already
// consumed by the exchange's reads) would never wake a wait armed now; a receive is first tried
// at once (Asio's speculative attempt), which is the look that catches them, and only then
// queued. The attempt is skipped only while the reactor's flag is off, i.e. nothing has arrived
// since the queue was last seen empty (checkout_probe above), when there is nothing to catch.
// It also costs no epoll_ctl, where async_wait re-arms the descriptor (EPOLL_CTL_MOD) on every
// call: one syscall less per proxied request.
// Race window: when that first attempt finds a FIN or bytes, its completion is posted, not run
// here, so the connection sits in the idle list until the handler evicts it. A checkout in
// between is safe: checkout peeks before reuse (DESIGN.md rule 2) and evicts it itself.
void HostPool::arm_idle_watch(UpstreamConnection& conn) {
  const uint64_t generation = ++conn.watch_generation_;
  // TLS reads are readiness waits, which leave the reactor's flag as it was: the watch's first
  // receive must look (it catches a close_notify that came with the last response).
  if (conn.stream().is_tls()) net::note_receive_queue_unknown(conn.socket());
  conn.watch_armed_ = true;
  conn.socket().async_receive(
      net::DrainingBuffer(asio::buffer(&conn.watch_byte_, 1)), asio::socket_base::message_peek,
      [weak = weak_from_this(), id = conn.id(), generation](std::error_code ec, size_t) {
        if (ec == asio::error::operation_aborted) return;
        if (auto pool = weak.lock()) pool->on_idle_watch(id, generation);
      });
}

// A released connection is watched once it has been idle for one to two idle_watch_delay
// windows, not at once: under load, sessions check it out again first (LIFO), and a connection
// that is busy again needs no watch (saved: the watch's receive, which finds nothing, its
// cancellation at checkout and that completion). Releases are listed by window; when the window
// timer fires, the connections released in the window before (idle for a whole window at least)
// and still idle in that generation are armed, and the current window's wait for the next
// expiry. Arming the current window too would watch connections released microseconds before
// the expiry (measured at wrk -c64: 0.2 watch receives per proxied request, all EAGAIN). One
// timer wait per window and pool, none while nothing waits; no clock reading per release.
// Race window: until the watch is armed nothing watches the socket; a checkout in between peeks
// (DESIGN.md rule 2), and the watch's first receive catches what arrived meanwhile. A close seen
// then is learned at most two windows late (20 ms by default, far below the estimator's margin
// of 100 ms or more).
void HostPool::defer_idle_watch(UpstreamConnection& conn) {
  const uint64_t generation = ++conn.watch_generation_;
  const bool timer_waiting = !impl_->released_now.empty() || !impl_->released_before.empty();
  impl_->released_now.emplace_back(conn.id(), generation);
  if (!timer_waiting) wait_watch_window();
}

void HostPool::wait_watch_window() {
  impl_->watch_timer.expires_after(impl_->settings.idle_watch_delay);
  impl_->watch_timer.async_wait([weak = weak_from_this()](std::error_code ec) {
    if (ec == asio::error::operation_aborted) return;
    if (auto pool = weak.lock()) pool->arm_deferred_watches();
  });
}

void HostPool::arm_deferred_watches() {
  for (const auto& [id, generation] : impl_->released_before) {
    if (UpstreamConnection* idle = idle_in_generation(id, generation)) arm_idle_watch(*idle);
  }
  impl_->released_before.clear();
  std::swap(impl_->released_before, impl_->released_now);  // capacities kept
  if (!impl_->released_before.empty()) wait_watch_window();
}

// Handlers name a connection by id + generation, never by pointer: by the time they run it may
// be busy again, idle for a second time, or closed and freed. nullptr unless it is still idle in
// the idle period the handler was made for.
UpstreamConnection* HostPool::idle_in_generation(uint64_t id, uint64_t generation) {
  UpstreamConnection* conn = impl_->core.find_idle(id);
  return conn != nullptr && conn->watch_generation_ == generation ? conn : nullptr;
}

void HostPool::on_idle_watch(uint64_t id, uint64_t generation) {
  UpstreamConnection* conn = idle_in_generation(id, generation);
  if (conn == nullptr) return;
  conn->watch_armed_ = false;
  IdleSocketState state = peek(*conn);
  if (state == IdleSocketState::quiet) {
    arm_idle_watch(*conn);  // spurious readiness: keep watching
  } else {
    impl_->core.on_idle_event(id, state);
  }
  rearm_expiry_timer();
}

// DESIGN.md rule 4: pooling never stops without a warning that names the host and the evidence.
// One compare per call unless the estimator judged something since the last call.
void HostPool::report_limit_change() {
  const IdleTimeoutEstimator& estimator = impl_->core.estimator();
  if (estimator.revision() == impl_->seen_revision) return;
  impl_->seen_revision = estimator.revision();
  const bool stopped = estimator.reuse_stopped();
  if (stopped == impl_->reuse_stopped) return;
  impl_->reuse_stopped = stopped;
  const std::string host = impl_->address.to_string();
  if (!stopped) {
    log::info("pool", "upstream {}: connection reuse resumed, idle limit {} ms ({})", host,
              estimator.effective_limit().count(), idle_limit_source_name(estimator.source()));
    return;
  }
  std::string evidence = "none";
  if (estimator.source() == IdleLimitSource::hint) {
    evidence = fmt::format("Keep-Alive: timeout={} from the upstream", estimator.hint()->count());
  } else if (auto close = estimator.last_close()) {
    evidence = fmt::format("last idle close at idle age {} ms after {} requests, judged {}",
                           close->idle_age.count(), close->requests_done,
                           close_verdict_name(*estimator.last_verdict()));
  }
  log::warn("pool",
            "upstream {}: idle limit {} ms is below {} ms, connections are no longer reused "
            "(every request opens a new connection); source {}, learned {} ms; evidence: {}; "
            "a sentinel connection re-probes up to {} ms",
            host, estimator.effective_limit().count(), IdleTimeoutEstimator::kReuseFloor.count(),
            idle_limit_source_name(estimator.source()),
            estimator.learned().value_or(Millis(-1)).count(), evidence,
            estimator.wants_sentinel() ? estimator.sentinel_horizon().count() : 0);
}

void HostPool::rearm_expiry_timer() {
  report_limit_change();
  std::optional<TimePoint> next = impl_->core.next_deadline();
  if (next == impl_->armed_deadline) return;
  impl_->armed_deadline = next;
  const uint64_t generation = ++impl_->timer_generation;
  if (!next) {
    impl_->expiry_timer.cancel();
    return;
  }
  // Delay from the injected clock, so a ManualClock never makes the timer spin.
  Duration delay = std::max(Duration::zero(), *next - impl_->clock.now());
  impl_->expiry_timer.expires_after(delay);  // cancels the previous wait
  impl_->expiry_timer.async_wait([weak = weak_from_this(), generation](std::error_code ec) {
    if (ec == asio::error::operation_aborted) return;
    if (auto pool = weak.lock()) pool->on_expiry_timer(generation);
  });
}

void HostPool::on_expiry_timer(uint64_t generation) {
  // Race window: a wait that completed just before a re-arm still runs; a newer arm owns the
  // timer then.
  if (generation != impl_->timer_generation) return;
  impl_->armed_deadline.reset();
  impl_->core.expire();
  rearm_expiry_timer();
}

const config::HostPort& HostPool::address() const { return impl_->address; }
size_t HostPool::idle_count() const { return impl_->core.idle_count(); }
size_t HostPool::busy_count() const { return impl_->core.busy_count(); }
uint32_t HostPool::active_requests() const { return impl_->core.active_requests(); }
bool HostPool::ejected() const { return impl_->core.ejected(); }
bool HostPool::has_sentinel() const { return impl_->core.has_sentinel(); }
size_t HostPool::watched_count() const {
  size_t watched = 0;
  for (uint64_t id : impl_->core.idle_ids()) watched += impl_->core.find_idle(id)->watch_armed_;
  return watched;
}
const IdleTimeoutEstimator& HostPool::estimator() const { return impl_->core.estimator(); }
const PoolCounters& HostPool::counters() const { return impl_->core.counters(); }

}  // namespace needle::upstream
