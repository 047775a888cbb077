#include "upstream/idle_timeout_estimator.h"

#include <algorithm>

namespace needle::upstream {

std::string_view idle_limit_source_name(IdleLimitSource source) {
  switch (source) {
    case IdleLimitSource::configured: return "configured";
    case IdleLimitSource::hint: return "hint";
    case IdleLimitSource::learned: return "learned";
    case IdleLimitSource::default_initial: return "default";
  }
  return "unknown";
}

std::string_view close_verdict_name(CloseVerdict verdict) {
  switch (verdict) {
    case CloseVerdict::idle_timeout: return "idle_timeout";
    case CloseVerdict::suspect: return "suspect";
    case CloseVerdict::restart_burst: return "restart_burst";
    case CloseVerdict::restart_confirmed: return "restart_confirmed";
    case CloseVerdict::request_cap: return "request_cap";
    case CloseVerdict::disproven: return "disproven";
    case CloseVerdict::count_: break;
  }
  return "unknown";
}

IdleTimeoutEstimator::IdleTimeoutEstimator(const Settings& settings) : settings_(settings) {}

void IdleTimeoutEstimator::on_hint(Millis hint) {
  hint = std::max(hint, Millis(0));
  if (hint_ == hint) return;  // every response of a hinting upstream: the common case
  hint_ = hint;
  ++revision_;
}

// --- closes ---------------------------------------------------------------------------------

void IdleTimeoutEstimator::on_idle_close(const IdleClose& close) {
  Record& newest = history_[next_];
  newest = Record{close, CloseVerdict::idle_timeout};
  next_ = (next_ + 1) % kHistory;
  size_ = std::min(size_ + 1, kHistory);
  const CloseVerdict verdict = classify(close);
  Record& recorded = record(0);  // classify() may have re-judged older records, not this one
  recorded.verdict = verdict;
  ++verdict_counts_[static_cast<size_t>(verdict)];
  recompute();
  ++revision_;
}

// Checked in this order: a burst explains everything else (a restart also closes connections at
// their request count and below proven ages); a cap explains closes below proven ages.
CloseVerdict IdleTimeoutEstimator::classify(const IdleClose& close) {
  if (is_burst(close)) return CloseVerdict::restart_burst;
  if (is_request_cap(close)) return CloseVerdict::request_cap;
  // Two closes in a row after the same N requests: wait for the third before learning.
  if (size_ >= 2 && close.requests_done >= 2 && record(1).close.requests_done ==
      close.requests_done && max_requests_before_reuse_ < close.requests_done) {
    return CloseVerdict::suspect;
  }
  const std::optional<Millis> proven_age = proven();
  if (proven_age && close.idle_age < minus_margin(*proven_age)) {
    return confirms_suspect(close) ? CloseVerdict::idle_timeout : CloseVerdict::suspect;
  }
  return CloseVerdict::idle_timeout;
}

// An idle timeout closes each connection at the same age at different times; a restart or a
// graceful shutdown closes many at the same time with different ages.
bool IdleTimeoutEstimator::is_burst(const IdleClose& close) {
  bool burst = false;
  size_t in_window = 0;
  for (size_t back = 1; back < size_; ++back) {
    const Record& r = record(back);
    if (close.at - r.close.at > kBurstWindow) break;
    ++in_window;
    const Millis diff = r.close.idle_age > close.idle_age ? r.close.idle_age - close.idle_age
                                                          : close.idle_age - r.close.idle_age;
    if (r.verdict == CloseVerdict::restart_burst ||
        diff > age_tolerance(r.close.idle_age, close.idle_age)) {
      burst = true;
    }
  }
  if (!burst) return false;
  for (size_t back = 1; back <= in_window; ++back) {
    Record& r = record(back);
    if (r.verdict != CloseVerdict::request_cap) set_verdict(r, CloseVerdict::restart_burst);
  }
  return true;
}

bool IdleTimeoutEstimator::is_request_cap(const IdleClose& close) {
  const uint32_t n = close.requests_done;
  if (n < 2 || max_requests_before_reuse_ >= n || size_ < kCapRepeats) return false;
  for (size_t back = 1; back < kCapRepeats; ++back) {
    if (record(back).close.requests_done != n) return false;
  }
  for (size_t back = 1; back < kCapRepeats; ++back) {
    set_verdict(record(back), CloseVerdict::request_cap);
  }
  request_cap_ = n;
  return true;
}

// A suspect is confirmed by another of agreeing age that is not part of the same event.
bool IdleTimeoutEstimator::confirms_suspect(const IdleClose& close) {
  bool confirmed = false;
  for (size_t back = 1; back < size_; ++back) {
    Record& r = record(back);
    if (r.verdict != CloseVerdict::suspect || close.at - r.close.at <= kBurstWindow) continue;
    const Millis diff = r.close.idle_age > close.idle_age ? r.close.idle_age - close.idle_age
                                                          : close.idle_age - r.close.idle_age;
    if (diff > age_tolerance(r.close.idle_age, close.idle_age)) continue;
    set_verdict(r, CloseVerdict::idle_timeout);
    confirmed = true;
  }
  if (confirmed) {  // the upstream's timeout got shorter: what it kept before says nothing now
    survived_.reset();
    proven_reuse_.reset();
  }
  return confirmed;
}

void IdleTimeoutEstimator::on_connect_refused(TimePoint at) {
  bool changed = false;
  for (size_t back = 0; back < size_; ++back) {
    Record& r = record(back);
    if (at - r.close.at > kRestartConfirmWindow) break;
    if (r.verdict == CloseVerdict::idle_timeout || r.verdict == CloseVerdict::suspect) {
      set_verdict(r, CloseVerdict::restart_confirmed);
      changed = true;
    }
  }
  if (!changed) return;
  recompute();
  ++revision_;
}

// --- survivals --------------------------------------------------------------------------------

void IdleTimeoutEstimator::on_sentinel_survived(Millis idle_age) {
  survived_ = survived_ ? std::max(*survived_, idle_age) : idle_age;
  disprove_below(idle_age);
  ++revision_;
}

void IdleTimeoutEstimator::on_reuse_succeeded(Millis idle_age, uint32_t requests_before) {
  if (!proven_reuse_ || idle_age > *proven_reuse_) proven_reuse_ = idle_age;
  if (requests_before > max_requests_before_reuse_) max_requests_before_reuse_ = requests_before;
  if (idle_age > disproof_threshold_) {  // rare: a learned or suspect close was wrong
    disprove_below(idle_age);
    ++revision_;
  }
}

void IdleTimeoutEstimator::disprove_below(Millis idle_age) {
  for (size_t back = 0; back < size_; ++back) {
    Record& r = record(back);
    if (r.verdict != CloseVerdict::idle_timeout && r.verdict != CloseVerdict::suspect) continue;
    const Millis age = r.close.idle_age;
    if (age + age_tolerance(age, age) < idle_age) set_verdict(r, CloseVerdict::disproven);
  }
  recompute();
}

void IdleTimeoutEstimator::recompute() {
  learned_close_.reset();
  suspect_.reset();
  disproof_threshold_ = Millis::max();
  for (size_t back = 0; back < size_; ++back) {
    const Record& r = record(back);
    const Millis age = r.close.idle_age;
    std::optional<Millis>* target = nullptr;
    if (r.verdict == CloseVerdict::idle_timeout) target = &learned_close_;
    if (r.verdict == CloseVerdict::suspect) target = &suspect_;
    if (target == nullptr) continue;
    if (!*target || age < **target) *target = age;
    disproof_threshold_ = std::min(disproof_threshold_, age + age_tolerance(age, age));
  }
}

void IdleTimeoutEstimator::set_verdict(Record& r, CloseVerdict verdict) {
  if (r.verdict == verdict) return;
  r.verdict = verdict;
  ++verdict_counts_[static_cast<size_t>(verdict)];
}

IdleTimeoutEstimator::Record& IdleTimeoutEstimator::record(size_t back) {
  return history_[(next_ + kHistory - 1 - back) % kHistory];
}
const IdleTimeoutEstimator::Record& IdleTimeoutEstimator::record(size_t back) const {
  return history_[(next_ + kHistory - 1 - back) % kHistory];
}

std::optional<IdleClose> IdleTimeoutEstimator::last_close() const {
  if (size_ == 0) return std::nullopt;
  return record(0).close;
}
std::optional<CloseVerdict> IdleTimeoutEstimator::last_verdict() const {
  if (size_ == 0) return std::nullopt;
  return record(0).verdict;
}

// --- limits -------------------------------------------------------------------------------------

Millis IdleTimeoutEstimator::margin_for(Millis limit) const {
  auto ratio = Millis(static_cast<Millis::rep>(settings_.margin_ratio * limit.count()));
  return std::max(settings_.margin_min, ratio);
}

Millis IdleTimeoutEstimator::age_tolerance(Millis a, Millis b) const {
  return std::max(kMinAgeTolerance, std::max(a, b) / 10);
}

Millis IdleTimeoutEstimator::minus_margin(Millis x) const {
  return std::max(Millis(0), x - margin_for(x));
}

std::optional<Millis> IdleTimeoutEstimator::proven() const {
  std::optional<Millis> proven = survived_;
  if (proven_reuse_ && (!proven || *proven_reuse_ > *proven)) proven = proven_reuse_;
  return proven;
}

std::optional<Millis> IdleTimeoutEstimator::upstream_estimate() const {
  // Asked several times per request: compared in place, not copied into a list first.
  std::optional<Millis> estimate = settings_.configured;
  for (const std::optional<Millis>* known : {&hint_, &learned_close_}) {
    if (*known && (!estimate || **known < *estimate)) estimate = *known;
  }
  return estimate;
}

bool IdleTimeoutEstimator::learned_binds() const {
  return upstream_estimate() && source() == IdleLimitSource::learned;
}

Millis IdleTimeoutEstimator::effective_limit() const {
  if (auto estimate = upstream_estimate()) return minus_margin(*estimate);
  Millis limit = settings_.initial_limit;
  if (survived_) limit = std::max(limit, minus_margin(*survived_));
  return limit;
}

Millis IdleTimeoutEstimator::non_replayable_limit() const {
  Millis limit = effective_limit();
  if (suspect_) limit = std::min(limit, minus_margin(*suspect_));
  if (upstream_estimate()) return limit;
  std::optional<Millis> proven_age = proven();
  if (!proven_age) return Millis(0);
  return std::min(limit, minus_margin(*proven_age));
}

IdleLimitSource IdleTimeoutEstimator::source() const {
  if (auto estimate = upstream_estimate()) {
    if (settings_.configured == estimate) return IdleLimitSource::configured;
    if (hint_ == estimate) return IdleLimitSource::hint;
    return IdleLimitSource::learned;
  }
  if (survived_ && minus_margin(*survived_) > settings_.initial_limit) {
    return IdleLimitSource::learned;
  }
  return IdleLimitSource::default_initial;
}

bool IdleTimeoutEstimator::wants_sentinel() const {
  if (learned_binds()) {  // re-probe: a sentinel that outlives L disproves it
    if (!settings_.learn && !reuse_stopped()) return false;
    return *learned_close_ < settings_.max_horizon;
  }
  if (!settings_.learn || upstream_estimate()) return false;
  return !survived_ || *survived_ < settings_.max_horizon;
}

Millis IdleTimeoutEstimator::sentinel_horizon() const {
  if (learned_binds()) {
    const Millis learned = *learned_close_;
    Millis horizon = std::max(2 * learned, learned + settings_.margin_min);
    if (settings_.configured) horizon = std::min(horizon, *settings_.configured);
    if (hint_) horizon = std::min(horizon, *hint_);
    return std::min(horizon, settings_.max_horizon);
  }
  Millis base = std::max(settings_.initial_limit, survived_.value_or(Millis(0)));
  return std::min(2 * base, settings_.max_horizon);
}

// --- binary upgrade hand-off ------------------------------------------------------------------

IdleTimeoutEstimator::Evidence IdleTimeoutEstimator::evidence(TimePoint now) const {
  Evidence evidence;
  evidence.hint = hint_;
  evidence.survived = survived_;
  evidence.proven_reuse = proven_reuse_;
  evidence.request_cap = request_cap_;
  evidence.max_requests_before_reuse = max_requests_before_reuse_;
  for (size_t back = size_; back-- > 0;) {
    const Record& r = record(back);
    evidence.closes.push_back({std::chrono::duration_cast<Millis>(now - r.close.at),
                               r.close.idle_age, r.close.requests_done, r.verdict});
  }
  return evidence;
}

void IdleTimeoutEstimator::restore(const Evidence& evidence, TimePoint now) {
  hint_ = evidence.hint;
  survived_ = evidence.survived;
  proven_reuse_ = evidence.proven_reuse;
  request_cap_ = evidence.request_cap;
  max_requests_before_reuse_ = evidence.max_requests_before_reuse;
  next_ = size_ = 0;
  const size_t skip = evidence.closes.size() > kHistory ? evidence.closes.size() - kHistory : 0;
  for (size_t i = skip; i < evidence.closes.size(); ++i) {
    const auto& close = evidence.closes[i];
    if (close.verdict >= CloseVerdict::count_) continue;
    history_[next_] = Record{{now - close.ago, close.idle_age, close.requests_done},
                             close.verdict};
    next_ = (next_ + 1) % kHistory;
    size_ = std::min(size_ + 1, kHistory);
  }
  recompute();
  ++revision_;
}

}  // namespace needle::upstream
