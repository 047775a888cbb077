#include "observe/metrics_shard.h"

namespace needle::observe {
namespace {

std::string_view or_none(std::string_view value) {
  return value.empty() ? kNoLabel : value;
}

// Every Cause value, in enum order (the enum is contiguous up to kLastCause).
template <typename F>
void for_each_cause(F f) {
  for (unsigned i = 0; i <= static_cast<unsigned>(kLastCause); ++i) f(static_cast<Cause>(i));
}

}  // namespace

namespace {

// kDurationBuckets in nanoseconds (every bound is a whole number of them).
constexpr auto kBucketBoundsNs = [] {
  std::array<int64_t, kDurationBuckets.size()> bounds{};
  for (size_t i = 0; i < bounds.size(); ++i) {
    bounds[i] = static_cast<int64_t>(kDurationBuckets[i] * 1e9 + 0.5);
  }
  return bounds;
}();

}  // namespace

void Histogram::observe(Duration value) {
  // First bucket whose upper bound is >= the value ("le" is inclusive), scanned from the
  // fastest: a proxied request usually lands in the first bucket or two.
  const int64_t ns = std::chrono::duration_cast<std::chrono::nanoseconds>(value).count();
  size_t i = 0;
  while (i < kBucketBoundsNs.size() && ns > kBucketBoundsNs[i]) ++i;
  ++buckets[i];
  sum_seconds += to_seconds(value);
  ++count;
}

void Histogram::merge_from(const Histogram& other) {
  for (size_t i = 0; i < buckets.size(); ++i) buckets[i] += other.buckets[i];
  sum_seconds += other.sum_seconds;
  count += other.count;
}

uint64_t Histogram::cumulative(size_t i) const {
  uint64_t total = 0;
  for (size_t k = 0; k <= i && k < buckets.size(); ++k) total += buckets[k];
  return total;
}

std::string_view status_class_name(int status) {
  switch (status / 100) {
    case 1:
      return "1xx";
    case 2:
      return "2xx";
    case 3:
      return "3xx";
    case 4:
      return "4xx";
    case 5:
      return "5xx";
    default:
      return "none";
  }
}

void MetricsShard::on_request(const RequestRecord& record) {
  const std::string_view route = or_none(record.route);
  const std::string_view cluster = or_none(record.cluster);

  ++requests_[{route, status_class_name(record.status)}];
  if (record.status >= 500) ++responses_5xx_[{cause_name(record.cause)}];
  request_duration_[{route}].observe(record.duration);
  ByteCounts& bytes = bytes_[{route}];
  bytes.in += record.bytes_in;
  bytes.out += record.bytes_out;

  if (record.tunnel.opened) ++tunnel_closes_[{record.tunnel.closed_by}];

  const bool succeeded = record.status >= 100 && record.status < 500;
  const std::string_view outcome = succeeded ? "success" : "failure";
  for (size_t i = 0; i < record.attempts.size(); ++i) {
    const AttemptRecord& attempt = record.attempts[i];
    const std::string_view host = or_none(attempt.upstream);
    ++upstream_attempts_[{cluster, host, attempt.reused ? "reused" : "new"}];
    upstream_duration_[{cluster}].observe(attempt.duration);
    if (is_upstream_cause(attempt.cause))
      ++upstream_failures_[{cluster, host, cause_name(attempt.cause)}];
    // An attempt followed by another one is a retry of it.
    if (i + 1 < record.attempts.size()) ++retries_[{cause_name(attempt.cause), outcome}];
  }
}

void MetricsShard::add_zero_series_for_host(std::string_view cluster, std::string_view host) {
  cluster = or_none(cluster);
  host = or_none(host);
  upstream_attempts_[{cluster, host, "new"}];
  upstream_attempts_[{cluster, host, "reused"}];
  for_each_cause([&](Cause cause) {
    if (is_upstream_cause(cause)) upstream_failures_[{cluster, host, cause_name(cause)}];
  });
}

void MetricsShard::add_zero_series_for_causes() {
  for_each_cause([&](Cause cause) {
    responses_5xx_[{cause_name(cause)}];
    if (!is_upstream_cause(cause)) return;
    retries_[{cause_name(cause), "success"}];
    retries_[{cause_name(cause), "failure"}];
  });
}

void MetricsShard::merge_from(const MetricsShard& other) {
  requests_.merge_from(other.requests_);
  responses_5xx_.merge_from(other.responses_5xx_);
  upstream_attempts_.merge_from(other.upstream_attempts_);
  upstream_failures_.merge_from(other.upstream_failures_);
  retries_.merge_from(other.retries_);
  request_duration_.merge_from(other.request_duration_);
  upstream_duration_.merge_from(other.upstream_duration_);
  bytes_.merge_from(other.bytes_);
  tls_handshakes_.merge_from(other.tls_handshakes_);
  tls_handshake_failures_.merge_from(other.tls_handshake_failures_);
  tunnels_opened_ += other.tunnels_opened_;
  tunnel_closes_.merge_from(other.tunnel_closes_);
  idle_client_closes_.merge_from(other.idle_client_closes_);
  close_races_.merge_from(other.close_races_);
}

void MetricsShard::on_idle_client_close(const IdleCloseRecord& record) {
  const std::string_view listener = or_none(record.listener);
  const std::string_view outcome = idle_close_outcome_name(record.outcome);
  ++idle_client_closes_[{listener, outcome}];
  if (is_close_race(record.outcome)) ++close_races_[{listener, outcome}];
}

void MetricsShard::add_zero_series_for_listener(std::string_view listener) {
  listener = or_none(listener);
  for (size_t i = 0; i < static_cast<size_t>(IdleCloseOutcome::count_); ++i) {
    const auto outcome = static_cast<IdleCloseOutcome>(i);
    idle_client_closes_[{listener, idle_close_outcome_name(outcome)}];
    if (is_close_race(outcome)) close_races_[{listener, idle_close_outcome_name(outcome)}];
  }
}

uint64_t MetricsShard::tunnels_active() const {
  uint64_t closed = 0;
  for (const auto& entry : tunnel_closes_.entries()) closed += entry.value;
  return tunnels_opened_ >= closed ? tunnels_opened_ - closed : 0;
}

void MetricsShard::add_zero_series_for_tunnels() {
  for (std::string_view reason : {"client", "upstream", "idle_timeout", "drain"}) {
    tunnel_closes_[{reason}];
  }
}

void MetricsShard::on_tls_handshake(std::string_view failure, bool resumed) {
  if (failure.empty()) {
    ++tls_handshakes_[{resumed ? std::string_view("resumed") : std::string_view("full")}];
  } else {
    ++tls_handshake_failures_[{failure}];
  }
}

}  // namespace needle::observe
