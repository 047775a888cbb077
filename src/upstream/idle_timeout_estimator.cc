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

IdleTimeoutEstimator::IdleTimeoutEstimator(const Settings& settings) : settings_(settings) {}

void IdleTimeoutEstimator::on_hint(Millis hint) { hint_ = std::max(hint, Millis(0)); }

void IdleTimeoutEstimator::on_idle_close(Millis idle_age) {
  if (idle_age < kMinPlausibleIdleClose) {
    ++implausible_closes_;
    return;
  }
  learned_close_ = learned_close_ ? std::min(*learned_close_, idle_age) : idle_age;
}

void IdleTimeoutEstimator::on_sentinel_survived(Millis idle_age) {
  survived_ = survived_ ? std::max(*survived_, idle_age) : idle_age;
}

void IdleTimeoutEstimator::on_reuse_succeeded(Millis idle_age) {
  proven_reuse_ = proven_reuse_ ? std::max(*proven_reuse_, idle_age) : idle_age;
}

Millis IdleTimeoutEstimator::margin_for(Millis limit) const {
  auto ratio = Millis(static_cast<Millis::rep>(settings_.margin_ratio * limit.count()));
  return std::max(settings_.margin_min, ratio);
}

Millis IdleTimeoutEstimator::minus_margin(Millis x) const {
  return std::max(Millis(0), x - margin_for(x));
}

std::optional<Millis> IdleTimeoutEstimator::upstream_estimate() const {
  // Asked several times per request: compared in place, not copied into a list first.
  std::optional<Millis> estimate = settings_.configured;
  for (const std::optional<Millis>* known : {&hint_, &learned_close_}) {
    if (*known && (!estimate || **known < *estimate)) estimate = *known;
  }
  return estimate;
}

Millis IdleTimeoutEstimator::effective_limit() const {
  if (auto estimate = upstream_estimate()) return minus_margin(*estimate);
  Millis limit = settings_.initial_limit;
  if (survived_) limit = std::max(limit, minus_margin(*survived_));
  return limit;
}

Millis IdleTimeoutEstimator::non_replayable_limit() const {
  if (upstream_estimate()) return effective_limit();
  std::optional<Millis> proven = survived_;
  if (proven_reuse_ && (!proven || *proven_reuse_ > *proven)) proven = proven_reuse_;
  if (!proven) return Millis(0);
  return std::min(effective_limit(), minus_margin(*proven));
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
  if (!settings_.learn || upstream_estimate()) return false;
  return !survived_ || *survived_ < settings_.max_horizon;
}

Millis IdleTimeoutEstimator::sentinel_horizon() const {
  Millis base = std::max(settings_.initial_limit, survived_.value_or(Millis(0)));
  return std::min(2 * base, settings_.max_horizon);
}

}  // namespace needle::upstream
