#pragma once
// Per-worker request metrics (DESIGN.md "Observability"). Each worker owns one MetricsShard and
// is the only thread that touches it: plain counters, no atomics, no locks. At scrape time the
// admin code has each worker copy its shard into a WorkerSnapshot (on the worker's own thread)
// and merges the copies with merge_from(); render_prometheus() does that merge.
//
// Label sets are interned: every family is a LabelMap, a sorted flat vector keyed by the label
// values. Lookups take string_views, so once a label set has been seen, counting a request
// allocates nothing; a new label set allocates its strings once.
#include <algorithm>
#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/clock.h"
#include "observe/idle_close_record.h"
#include "observe/request_record.h"

namespace needle::observe {

// Upper bounds in seconds of the latency histogram buckets (Prometheus "le"); +Inf is implicit.
inline constexpr std::array<double, 15> kDurationBuckets = {
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};

struct Histogram {
  // Non-cumulative counts: buckets[i] counts observations in (bound[i-1], bound[i]];
  // the last slot counts those above the last bound (+Inf).
  std::array<uint64_t, kDurationBuckets.size() + 1> buckets{};
  double sum_seconds = 0;
  uint64_t count = 0;

  void observe(Duration value);
  void merge_from(const Histogram& other);
  // Observations <= upper bound `i` (i == kDurationBuckets.size(): all of them).
  uint64_t cumulative(size_t i) const;
};

struct ByteCounts {
  uint64_t in = 0;   // request body bytes from clients
  uint64_t out = 0;  // response bytes to clients
};

inline void merge_value(uint64_t& into, uint64_t from) {
  into += from;
}
inline void merge_value(Histogram& into, const Histogram& from) {
  into.merge_from(from);
}
inline void merge_value(ByteCounts& into, const ByteCounts& from) {
  into.in += from.in;
  into.out += from.out;
}

// A small map from N label values to a Value. Invariant: entries() is sorted by labels and
// holds each label tuple once, so rendering is deterministic and lookups are binary searches.
template <size_t N, typename Value>
class LabelMap {
 public:
  using Labels = std::array<std::string_view, N>;
  struct Entry {
    std::array<std::string, N> labels;
    Value value{};
  };

  // Finds or inserts; allocates only when the label tuple is new. A request's label tuples
  // are nearly always those of the previous request (same route, cluster, host), so the entry
  // last found is compared first; the binary search runs only when the tuple changed.
  Value& operator[](const Labels& labels) {
    if (last_ < entries_.size() && same(entries_[last_].labels, labels)) {
      return entries_[last_].value;
    }
    auto it = std::lower_bound(entries_.begin(), entries_.end(), labels, &less);
    if (it == entries_.end() || !same(it->labels, labels)) {
      Entry entry;
      for (size_t i = 0; i < N; ++i) entry.labels[i] = std::string(labels[i]);
      it = entries_.insert(it, std::move(entry));
    }
    last_ = static_cast<size_t>(it - entries_.begin());
    return it->value;
  }

  const Value* find(const Labels& labels) const {
    auto it = std::lower_bound(entries_.begin(), entries_.end(), labels, &less);
    if (it != entries_.end() && same(it->labels, labels)) return &it->value;
    return nullptr;
  }

  void merge_from(const LabelMap& other) {
    for (const Entry& entry : other.entries_) merge_value((*this)[view(entry.labels)], entry.value);
  }

  const std::vector<Entry>& entries() const { return entries_; }
  size_t size() const { return entries_.size(); }
  bool empty() const { return entries_.empty(); }

  static Labels view(const std::array<std::string, N>& labels) {
    Labels out;
    for (size_t i = 0; i < N; ++i) out[i] = labels[i];
    return out;
  }

 private:
  static bool less(const Entry& entry, const Labels& labels) {
    for (size_t i = 0; i < N; ++i) {
      const int c = std::string_view(entry.labels[i]).compare(labels[i]);
      if (c != 0) return c < 0;
    }
    return false;
  }
  static bool same(const std::array<std::string, N>& a, const Labels& b) {
    for (size_t i = 0; i < N; ++i) {
      if (a[i] != b[i]) return false;
    }
    return true;
  }

  std::vector<Entry> entries_;
  size_t last_ = 0;  // index of the entry operator[] returned last (re-checked before use)
};

// "1xx" .. "5xx"; "none" for 0 (no response could be sent) or anything outside 100..599.
std::string_view status_class_name(int status);

// Label value for an empty route, cluster or upstream host.
inline constexpr std::string_view kNoLabel = "none";

class MetricsShard {
 public:
  // Counts one finished request and its attempts. Called by the owning worker only.
  void on_request(const RequestRecord& record);
  // Adds every counter of `other` into this shard (scrape-time merge of worker copies).
  void merge_from(const MetricsShard& other);

  // Zero-valued series, so that the first failure is an increase from 0 that rate()/increase()
  // and the alert rules can see (a counter series born at 1 shows no increase). Used on the
  // merged copy at scrape time, never on the data path.
  // For one upstream host: attempts (new, reused) and failures for every upstream cause.
  void add_zero_series_for_host(std::string_view cluster, std::string_view host);
  // 5xx for every cause; retries for every upstream cause and both outcomes.
  void add_zero_series_for_causes();

  // {route, status_class}: every request, by the status sent to the client.
  const LabelMap<2, uint64_t>& requests() const { return requests_; }
  // {cause}: responses with status >= 500, by the request's final cause ("none": the upstream
  // itself answered with that 5xx and needle passed it through).
  const LabelMap<1, uint64_t>& responses_5xx() const { return responses_5xx_; }
  // {cluster, host, connection}: upstream attempts, connection = "new" | "reused".
  const LabelMap<3, uint64_t>& upstream_attempts() const { return upstream_attempts_; }
  // {cluster, host, cause}: attempts that failed for an upstream cause (is_upstream_cause()).
  const LabelMap<3, uint64_t>& upstream_failures() const { return upstream_failures_; }
  // {cause, outcome}: attempts that were followed by another attempt, by the cause of the
  // retried attempt and the request's outcome ("success": final status 1xx-4xx; "failure").
  const LabelMap<2, uint64_t>& retries() const { return retries_; }
  // {route}: whole-request duration.
  const LabelMap<1, Histogram>& request_duration() const { return request_duration_; }
  // {cluster}: duration of each upstream attempt.
  const LabelMap<1, Histogram>& upstream_duration() const { return upstream_duration_; }
  // {route}: client bytes in (request body) and out (response head + body).
  const LabelMap<1, ByteCounts>& bytes() const { return bytes_; }

  // ---- TLS (issue 18) ----
  // A client handshake on a TLS listener: `failure` empty = done (full or resumed), else the
  // reason (tls::handshake_failure_name or "timeout").
  void on_tls_handshake(std::string_view failure, bool resumed);
  // {result}: handshakes done, result = "full" | "resumed".
  const LabelMap<1, uint64_t>& tls_handshakes() const { return tls_handshakes_; }
  // {reason}: handshakes that failed.
  const LabelMap<1, uint64_t>& tls_handshake_failures() const { return tls_handshake_failures_; }
  // Upgrade tunnels (docs/metrics.md "Tunnels"). A tunnel is counted as opened at its 101 and
  // as closed when its request is recorded (on_request with record.tunnel.opened), so the
  // active count is the difference and needs no hook of its own at the end.
  void on_tunnel_opened() { ++tunnels_opened_; }
  uint64_t tunnels_opened() const { return tunnels_opened_; }
  // {reason}: tunnels ended, by who closed them (proxy::TunnelCloser names).
  const LabelMap<1, uint64_t>& tunnel_closes() const { return tunnel_closes_; }
  uint64_t tunnels_active() const;
  void add_zero_series_for_tunnels();
  // ---- Client connections closed idle, and the races seen after them (close_race_watch.h) ----
  void on_idle_client_close(const IdleCloseRecord& record);
  // Zero series for a listener: every outcome and both race signals (scrape time only).
  void add_zero_series_for_listener(std::string_view listener);
  // {listener, outcome}: every idle close (client_idle_timeout), by what followed it.
  const LabelMap<2, uint64_t>& idle_client_closes() const { return idle_client_closes_; }
  // {listener, signal}: the races among them ("request" or "reset").
  const LabelMap<2, uint64_t>& close_races() const { return close_races_; }

 private:
  LabelMap<1, uint64_t> tls_handshakes_;
  LabelMap<1, uint64_t> tls_handshake_failures_;
  LabelMap<2, uint64_t> requests_;
  LabelMap<1, uint64_t> responses_5xx_;
  LabelMap<3, uint64_t> upstream_attempts_;
  LabelMap<3, uint64_t> upstream_failures_;
  LabelMap<2, uint64_t> retries_;
  LabelMap<1, Histogram> request_duration_;
  LabelMap<1, Histogram> upstream_duration_;
  LabelMap<1, ByteCounts> bytes_;
  // Upgrade tunnels.
  uint64_t tunnels_opened_ = 0;
  LabelMap<1, uint64_t> tunnel_closes_;
  // Client idle closes (block above).
  LabelMap<2, uint64_t> idle_client_closes_;
  LabelMap<2, uint64_t> close_races_;
};

}  // namespace needle::observe
