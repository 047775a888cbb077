#pragma once
// The socket-free heart of a host's connection pool (DESIGN.md "The race-free pool"): which
// connection is in which state, when one may be reused, when it must go. Generic over the
// connection type (Pingora style) so tests drive it with a fake connection and a ManualClock;
// HostPool (connection_pool.h) adds sockets, the idle watch and the timer on top.
//
// Ownership: the core owns idle and sentinel connections (unique_ptr<Conn>); a busy connection
// is owned by its lease, the core keeps only its record (id, age, requests done). Destroying a
// Conn closes it. Single-threaded, like the worker that owns it.
#include <algorithm>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <unordered_map>
#include <vector>
#include <utility>

#include "base/cause.h"
#include "base/clock.h"
#include "upstream/idle_timeout_estimator.h"
#include "upstream/pool_types.h"

namespace needle::upstream {

enum class ConnState : uint8_t { busy, idle, sentinel, closed };

template <typename Conn>
class PoolCore {
 public:
  // A connection handed out by checkout(): the caller now owns it until release()/discard().
  struct Checkout {
    std::unique_ptr<Conn> conn;
    uint64_t id = 0;
    uint32_t requests_done = 0;  // exchanges completed before this one
    Millis idle_age{0};          // idle age at checkout
  };

  PoolCore(const PoolSettings& settings, const Clock& clock)
      : settings_(settings), clock_(clock), estimator_(settings.idle) {}

  // A reload kept this host (docs/architecture.md "Reload and shutdown"): the new settings
  // apply from now on; connections, counters, ejection and the estimator's evidence stay.
  void reconfigure(const PoolSettings& settings) {
    settings_ = settings;
    estimator_.reconfigure(settings.idle);
  }

  // --- connecting -------------------------------------------------------------------------
  void connect_started() { ++connecting_; }
  // Passive health: eject_after_connect_failures consecutive failures eject the host for
  // eject_duration. The count is not reset by the ejection itself, so the first attempt after
  // an ejection that fails again ejects again at once (a half-open probe).
  // local_resource_exhausted (needle out of fds or buffers) is needle's own failure: it says
  // nothing about the host, so it neither counts as a connect failure nor ends a streak.
  void connect_failed(Cause cause) {
    --connecting_;
    if (cause == Cause::local_resource_exhausted) return;
    // A refusal right after closes says the process went away: those closes were a restart.
    if (cause == Cause::connect_refused) estimator_.on_connect_refused(clock_.now());
    ++counters_.connect_failures;
    ++consecutive_connect_failures_;
    auto threshold = settings_.eject_after_connect_failures;
    if (threshold > 0 && consecutive_connect_failures_ >= threshold) {
      ejected_until_ = clock_.now() + settings_.eject_duration;
    }
  }
  // The connect coroutine went away without an outcome (its io_context was shut down).
  void connect_abandoned() { --connecting_; }
  // The new connection is busy at once: it was opened for a waiting exchange.
  void connect_succeeded(uint64_t id, TimePoint created) {
    --connecting_;
    ++counters_.opened;
    consecutive_connect_failures_ = 0;
    ejected_until_.reset();
    Entry entry;
    entry.id = id;
    entry.created = created;
    transition(std::move(entry), ConnState::busy);
  }

  // --- checkout ---------------------------------------------------------------------------
  // LIFO checkout of a live idle connection. Expired connections are evicted first (lazy
  // expiry). A non-replayable request only takes connections younger than
  // non_replayable_limit(); older ones stay for replayable requests.
  // probe(Conn&, bool may_skip) -> IdleSocketState; may_skip is true below probe_exempt_idle
  // for a replayable request, where the probe may answer quiet_unprobed instead of looking at
  // the socket. A request that cannot be replayed is always probed: a FIN that arrived after the
  // reactor's last epoll_wait is invisible to the skip, and for it a retry is no safety net
  // (docs/decisions/0004 "Same batch"). Anything but quiet or quiet_unprobed evicts
  // (checkout_probe_failed) and the next is tried.
  template <typename Probe>
  std::optional<Checkout> checkout(bool request_replayable, Probe&& probe) {
    const TimePoint now = clock_.now();  // one reading for the whole checkout
    expire(now);
    while (!idle_.empty()) {
      // Re-read every round: a failed probe just taught the estimator a (shorter) limit.
      const Millis limit = request_replayable
                               ? estimator_.effective_limit()
                               : std::min(estimator_.effective_limit(),
                                          estimator_.non_replayable_limit());
      // idle_.back() is the youngest: if it is too old for this request, all of them are.
      const Millis age = idle_age(idle_.back(), now);
      if (age >= limit) return std::nullopt;
      Entry entry = std::move(idle_.back());
      idle_.pop_back();
      const bool may_skip = request_replayable && age < settings_.probe_exempt_idle;
      const IdleSocketState state = probe(*entry.conn, may_skip);
      if (state == IdleSocketState::quiet_unprobed) {
        ++counters_.probes_skipped;
      } else if (state != IdleSocketState::quiet) {
        // The upstream closed (or wrote) while idle and the watch has not run yet.
        estimator_.on_idle_close({now, age, entry.requests_done});
        transition(std::move(entry), ConnState::closed, EvictReason::checkout_probe_failed);
        continue;
      }
      entry.idle_age_at_checkout = age;
      ++counters_.reused;
      Checkout out{std::move(entry.conn), entry.id, entry.requests_done, age};
      transition(std::move(entry), ConnState::busy);
      return out;
    }
    return std::nullopt;
  }

  // --- release ----------------------------------------------------------------------------
  // The exchange is over. Returns the connection if the pool kept it (now idle; the caller
  // arms its idle watch), nullptr if it was closed.
  Conn* release(uint64_t id, std::unique_ptr<Conn> conn, const ReleaseInfo& info) {
    auto node = busy_.extract(id);
    if (node.empty()) {  // not lent by this pool: a caller bug; close rather than adopt it
      ++counters_.evicted[static_cast<size_t>(EvictReason::not_reusable)];
      return nullptr;
    }
    Entry entry = std::move(node.mapped());
    keep_spare_node(std::move(node));
    entry.conn = std::move(conn);
    const TimePoint now = clock_.now();
    if (info.keep_alive_hint) estimator_.on_hint(*info.keep_alive_hint);
    if (info.response_complete && entry.requests_done > 0) {
      estimator_.on_reuse_succeeded(entry.idle_age_at_checkout, entry.requests_done);
    }
    ++entry.requests_done;
    Conn* kept = entry.conn.get();
    entry.idle_since = now;
    if (auto why_not = why_not_reusable(entry, info, now)) {
      // Reuse has stopped (limit 0): this connection re-probes the limit as the sentinel, the
      // one way back to pooling (docs/decisions/0006-idle-close-evidence.md).
      if (*why_not == EvictReason::idle_limit && may_take_sentinel()) {
        transition(std::move(entry), ConnState::sentinel);
        return kept;
      }
      transition(std::move(entry), ConnState::closed, *why_not);
      return nullptr;
    }
    transition(std::move(entry), ConnState::idle);
    return kept;
  }

  // Closed by its holder (lease destroyed without release, or discard()).
  void discard(uint64_t id, std::unique_ptr<Conn> conn) {
    busy_.erase(id);
    Entry entry;
    entry.id = id;
    entry.conn = std::move(conn);
    transition(std::move(entry), ConnState::closed, EvictReason::not_reusable);
  }

  // --- idle events ------------------------------------------------------------------------
  // The idle watch of connection `id` found it closed or dirty (state != quiet). The idle age
  // is the moment the upstream gave up on it: the estimator learns from it.
  void on_idle_event(uint64_t id, IdleSocketState state) {
    if (state == IdleSocketState::quiet || state == IdleSocketState::quiet_unprobed) return;
    const TimePoint now = clock_.now();
    if (sentinel_ && sentinel_->id == id) {
      estimator_.on_idle_close({now, idle_age(*sentinel_, now), sentinel_->requests_done});
      transition(take_sentinel(), ConnState::closed, EvictReason::sentinel_done);
      return;
    }
    auto it = find_idle_entry(id);
    if (it == idle_.end()) return;
    estimator_.on_idle_close({now, idle_age(*it, now), it->requests_done});
    Entry entry = std::move(*it);
    idle_.erase(it);
    transition(std::move(entry), ConnState::closed,
               state == IdleSocketState::closed ? EvictReason::upstream_closed_idle
                                                : EvictReason::stray_bytes_idle);
  }

  // Evicts every idle connection at/over the idle limit or max age; the first one to reach the
  // limit while the estimator wants a sentinel becomes the sentinel instead. Closes the
  // sentinel at its horizon (a survival: the estimator learns the upstream keeps that long).
  void expire() { expire(clock_.now()); }
  void expire(TimePoint now) {
    if (sentinel_) {
      const Millis age = idle_age(*sentinel_, now);
      if (age >= estimator_.sentinel_horizon() || !estimator_.wants_sentinel()) {
        estimator_.on_sentinel_survived(age);
        transition(take_sentinel(), ConnState::closed, EvictReason::sentinel_done);
      }
    }
    const Millis limit = estimator_.effective_limit();
    // Oldest first, so the sentinel is the connection that reached the limit first.
    for (auto it = idle_.begin(); it != idle_.end();) {
      std::optional<ConnState> to;
      EvictReason why = EvictReason::idle_limit;
      if (over_max_age(*it, now)) {
        to = ConnState::closed;
        why = EvictReason::max_age;
      } else if (idle_age(*it, now) >= limit) {
        to = may_take_sentinel() ? ConnState::sentinel : ConnState::closed;
      }
      if (!to) {
        ++it;
        continue;
      }
      Entry entry = std::move(*it);
      it = idle_.erase(it);
      transition(std::move(entry), *to, why);
    }
  }

  // When expire() next has work: the earliest idle-limit, max-age or sentinel-horizon deadline.
  // nullopt when nothing is idle. Limits move (a hint, a learned close), so callers re-ask
  // after every change.
  std::optional<TimePoint> next_deadline() const {
    std::optional<TimePoint> next;
    auto consider = [&](TimePoint t) {
      if (!next || t < *next) next = t;
    };
    // idle_ is ordered by idle_since: its front reaches the idle limit first.
    if (!idle_.empty()) consider(idle_.front().idle_since + estimator_.effective_limit());
    if (settings_.max_connection_age > Millis(0)) {
      for (const Entry& entry : idle_) consider(entry.created + settings_.max_connection_age);
    }
    if (sentinel_) consider(sentinel_->idle_since + estimator_.sentinel_horizon());
    return next;
  }

  // Close every idle connection (and the sentinel); from now on releases close too.
  void drain() {
    draining_ = true;
    while (!idle_.empty()) {
      Entry entry = std::move(idle_.front());
      idle_.pop_front();
      transition(std::move(entry), ConnState::closed, EvictReason::draining);
    }
    if (sentinel_) transition(take_sentinel(), ConnState::closed, EvictReason::draining);
  }

  // An idle (or the sentinel) connection by id; nullptr if it is busy, closed or unknown.
  Conn* find_idle(uint64_t id) {
    if (sentinel_ && sentinel_->id == id) return sentinel_->conn.get();
    auto it = find_idle_entry(id);
    return it == idle_.end() ? nullptr : it->conn.get();
  }

  size_t idle_count() const { return idle_.size(); }  // the sentinel is not counted
  size_t busy_count() const { return busy_.size(); }
  uint32_t connecting_count() const { return connecting_; }
  uint32_t active_requests() const { return static_cast<uint32_t>(busy_.size()) + connecting_; }
  bool has_sentinel() const { return sentinel_.has_value(); }
  std::optional<uint64_t> sentinel_id() const {
    return sentinel_ ? std::optional<uint64_t>(sentinel_->id) : std::nullopt;
  }
  // Ids of idle connections, oldest first (tests, admin).
  std::vector<uint64_t> idle_ids() const {
    std::vector<uint64_t> ids;
    for (const Entry& entry : idle_) ids.push_back(entry.id);
    return ids;
  }
  bool draining() const { return draining_; }
  bool ejected() const { return ejected_until_ && clock_.now() < *ejected_until_; }
  // What is left of an ejection (binary upgrade hand-off, docs/decisions/0009); nullopt if none.
  std::optional<Millis> ejection_left() const {
    if (!ejected()) return std::nullopt;
    return std::chrono::duration_cast<Millis>(*ejected_until_ - clock_.now());
  }
  void restore_ejection(Millis left) { ejected_until_ = clock_.now() + left; }
  const IdleTimeoutEstimator& estimator() const { return estimator_; }
  IdleTimeoutEstimator& estimator() { return estimator_; }
  const PoolCounters& counters() const { return counters_; }
  void count_tls_resumed() { ++counters_.tls_resumed; }

 private:
  struct Entry {
    uint64_t id = 0;
    std::unique_ptr<Conn> conn;  // null while busy (the lease owns it)
    TimePoint created{};
    TimePoint idle_since{};      // end of the last response
    uint32_t requests_done = 0;
    Millis idle_age_at_checkout{0};
  };

  // The reuse predicate: one guard clause per reason a connection is not kept (nginx style).
  // `entry.requests_done` already counts the exchange that just ended.
  std::optional<EvictReason> why_not_reusable(const Entry& entry, const ReleaseInfo& info,
                                              TimePoint now) const {
    if (!info.response_complete) return EvictReason::not_reusable;
    if (!info.upstream_keep_alive) return EvictReason::not_reusable;
    if (draining_) return EvictReason::draining;
    if (settings_.max_requests_per_connection > 0 &&
        entry.requests_done >= settings_.max_requests_per_connection) {
      return EvictReason::max_requests;
    }
    // Closes always came after this many requests: the upstream's cap, not its idle timeout.
    if (auto cap = estimator_.request_cap(); cap && entry.requests_done >= *cap) {
      return EvictReason::learned_request_cap;
    }
    if (over_max_age(entry, now)) return EvictReason::max_age;
    // A limit of 0 (e.g. "Keep-Alive: timeout=0") means it would expire on arrival.
    if (estimator_.effective_limit() <= Millis(0)) return EvictReason::idle_limit;
    if (settings_.max_idle == 0) return EvictReason::max_idle;
    return std::nullopt;
  }

  // The one place a connection changes state. `entry` has already been taken out of its old
  // list; `why` counts only for ConnState::closed.
  void transition(Entry entry, ConnState to, EvictReason why = EvictReason::not_reusable) {
    switch (to) {
      case ConnState::busy:
        entry.conn.reset();  // ownership is the lease's; release() hands it back
        if (spare_nodes_.empty()) {
          busy_.insert_or_assign(entry.id, std::move(entry));
        } else {  // a node of an earlier checkout: no allocation per checkout
          auto node = std::move(spare_nodes_.back());
          spare_nodes_.pop_back();
          node.key() = entry.id;
          node.mapped() = std::move(entry);
          busy_.insert(std::move(node));
        }
        return;
      case ConnState::idle:  // the caller set entry.idle_since
        idle_.push_back(std::move(entry));
        if (idle_.size() > settings_.max_idle) {
          // Full: the oldest goes; the youngest are the ones LIFO hands out anyway.
          Entry oldest = std::move(idle_.front());
          idle_.pop_front();
          transition(std::move(oldest), ConnState::closed, EvictReason::max_idle);
        }
        return;
      case ConnState::sentinel:
        sentinel_ = std::move(entry);  // keeps its idle_since: the horizon counts from there
        return;
      case ConnState::closed:
        ++counters_.evicted[static_cast<size_t>(why)];
        entry.conn.reset();
        return;
    }
  }

  void keep_spare_node(typename std::unordered_map<uint64_t, Entry>::node_type node) {
    if (spare_nodes_.size() < kMaxSpareNodes) spare_nodes_.push_back(std::move(node));
  }

  bool may_take_sentinel() const {
    return !sentinel_ && !draining_ && estimator_.wants_sentinel();
  }

  Entry take_sentinel() {
    Entry entry = std::move(*sentinel_);
    sentinel_.reset();
    return entry;
  }

  auto find_idle_entry(uint64_t id) {
    return std::find_if(idle_.begin(), idle_.end(), [id](const Entry& e) { return e.id == id; });
  }

  static Millis idle_age(const Entry& entry, TimePoint now) {
    return std::chrono::duration_cast<Millis>(now - entry.idle_since);
  }

  bool over_max_age(const Entry& entry, TimePoint now) const {
    return settings_.max_connection_age > Millis(0) &&
           now - entry.created >= settings_.max_connection_age;
  }

  PoolSettings settings_;
  const Clock& clock_;
  IdleTimeoutEstimator estimator_;
  PoolCounters counters_;

  // All entries are idle: conn set, age below the limit as of the last expire(), ordered by
  // idle_since ascending (entries join at the back at clock_.now(), which never goes back).
  // Checkout takes from the back (LIFO); max_idle evicts from the front.
  std::deque<Entry> idle_;
  // All entries are busy: conn null (owned by a lease), keyed by id.
  std::unordered_map<uint64_t, Entry> busy_;
  // Nodes extracted from busy_ at release, reused by the next checkout (bounded).
  static constexpr size_t kMaxSpareNodes = 64;
  std::vector<typename std::unordered_map<uint64_t, Entry>::node_type> spare_nodes_;
  // At most one; idle past the limit, never checked out; watched like any idle connection.
  // Not counted in idle_ (nor against max_idle): at most one socket beyond max_idle per host.
  std::optional<Entry> sentinel_;
  // Connects in flight: counted for active_requests(), no entry yet.
  uint32_t connecting_ = 0;

  bool draining_ = false;
  uint32_t consecutive_connect_failures_ = 0;
  std::optional<TimePoint> ejected_until_;
};

}  // namespace needle::upstream
