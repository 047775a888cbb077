#include "upstream/dns_discovery.h"

#include <pthread.h>

#include <algorithm>
#include <map>
#include <memory>

#include <fmt/format.h>

#include "base/log.h"
#include "net/dns_resolver.h"

namespace needle::upstream {
namespace {

// One resolution's whole budget: c-ares tries each server twice, 500 ms per try.
constexpr Millis kResolveTimeout{2500};

std::string resolver_key(const config::DnsDiscoveryConfig& settings) {
  return settings.resolver ? settings.resolver->to_string() : std::string();
}

}  // namespace

DnsDiscovery::DnsDiscovery(OnChange on_change) : on_change_(std::move(on_change)) {}

DnsDiscovery::~DnsDiscovery() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void DnsDiscovery::set_targets(const config::Config& declared) {
  std::vector<Target> next;
  for (const auto& cluster : declared.clusters) {
    for (const auto& host : cluster.hosts) {
      if (host.host.empty() || is_literal_address(host.host)) continue;
      const bool listed = std::any_of(next.begin(), next.end(), [&](const Target& t) {
        return t.answer.cluster == cluster.name && t.answer.name == host.host;
      });
      if (listed) continue;
      Target target;
      target.answer.cluster = cluster.name;
      target.answer.name = host.host;
      target.settings = cluster.dns;
      target.stats.cluster = cluster.name;
      target.stats.name = host.host;
      next.push_back(std::move(target));
    }
  }
  bool any = false;
  {
    std::lock_guard lock(mutex_);
    for (auto& target : next) {
      for (auto& old : targets_) {
        if (old.answer.cluster != target.answer.cluster || old.answer.name != target.answer.name) {
          continue;
        }
        const bool resolver_changed = resolver_key(old.settings) != resolver_key(target.settings);
        target.answer = old.answer;
        target.stats = old.stats;
        target.tried = old.tried;
        // A new resolver is asked at once; otherwise the schedule stands.
        target.next_due = resolver_changed ? TimePoint{} : old.next_due;
      }
    }
    targets_ = std::move(next);
    any = !targets_.empty();
    if (any && !thread_.joinable()) thread_ = std::thread([this] { run(); });
  }
  wake_.notify_all();
}

bool DnsDiscovery::wait_first_round(Millis at_most) {
  std::unique_lock lock(mutex_);
  return tried_.wait_for(lock, at_most, [this] {
    return std::all_of(targets_.begin(), targets_.end(), [](const Target& t) { return t.tried; });
  });
}

ResolvedNames DnsDiscovery::answers() const {
  std::lock_guard lock(mutex_);
  ResolvedNames out;
  for (const auto& target : targets_) out.push_back(target.answer);
  return out;
}

std::vector<DnsTargetStats> DnsDiscovery::stats() const {
  std::lock_guard lock(mutex_);
  std::vector<DnsTargetStats> out;
  for (const auto& target : targets_) out.push_back(target.stats);
  return out;
}

Millis DnsDiscovery::refresh_after(const config::DnsDiscoveryConfig& settings, bool ok,
                                   std::optional<Millis> ttl) {
  if (settings.refresh) return *settings.refresh;
  if (!ok) return settings.refresh_min;
  return std::clamp(ttl.value_or(settings.refresh_min), settings.refresh_min, settings.refresh_max);
}

// The discovery thread. Resolutions run one at a time without the lock held; the target may
// have been dropped or replaced by set_targets() meanwhile, so it is looked up again by name.
void DnsDiscovery::run() {
  pthread_setname_np(pthread_self(), "needle-dns");
  std::map<std::string, std::unique_ptr<net::DnsResolver>> resolvers;  // by resolver address
  const Clock& clock = SteadyClock::instance();
  std::unique_lock lock(mutex_);
  while (!stop_) {
    const TimePoint now = clock.now();
    const Target* due = nullptr;
    TimePoint earliest = TimePoint::max();
    for (const auto& target : targets_) {
      if (target.next_due <= now) {
        due = &target;
        break;
      }
      earliest = std::min(earliest, target.next_due);
    }
    if (!due) {
      if (earliest == TimePoint::max()) {
        wake_.wait(lock);
      } else {
        wake_.wait_for(lock, earliest - now);
      }
      continue;
    }
    const std::string cluster = due->answer.cluster;
    const std::string name = due->answer.name;
    const config::DnsDiscoveryConfig settings = due->settings;
    lock.unlock();

    net::DnsAnswer answer;
    auto& resolver = resolvers[resolver_key(settings)];
    std::string setup_error;
    if (!resolver) resolver = net::DnsResolver::create(settings.resolver, &setup_error);
    if (resolver) {
      answer = resolver->resolve(name, kResolveTimeout);
    } else {
      answer.error = setup_error;
    }

    bool changed = false;
    lock.lock();
    for (auto& target : targets_) {
      if (target.answer.cluster != cluster || target.answer.name != name) continue;
      ++target.stats.resolutions;
      const Millis period = refresh_after(target.settings, answer.ok(), answer.ttl);
      target.next_due = clock.now() + period;
      target.stats.next_refresh = period;
      target.tried = true;
      if (!answer.ok()) {
        ++target.stats.failures;
        // The first failure of a streak and every tenth: a dead resolver must not flood the log.
        if (target.failure_streak++ % 10 == 0) {
          log::warn("dns",
                    "cluster {}: resolving {} failed: {}; keeping {} address(es) of the "
                    "last good answer ({} failure(s) so far); next try in {} ms",
                    cluster, name, answer.error, target.answer.addresses.size(),
                    target.stats.failures, period.count());
        }
        break;
      }
      if (target.failure_streak > 0) {
        log::info("dns", "cluster {}: resolving {} works again after {} failure(s)", cluster, name,
                  target.failure_streak);
        target.failure_streak = 0;
      }
      const AddressDiff diff = diff_addresses(target.answer.addresses, answer.addresses);
      if (diff.changed()) {
        log::info("dns", "cluster {}: {} -> [{}]: added [{}], draining [{}]; next in {} ms",
                  cluster, name, fmt::join(answer.addresses, ", "), fmt::join(diff.added, ", "),
                  fmt::join(diff.removed, ", "), period.count());
        target.answer.addresses = std::move(answer.addresses);
        target.stats.addresses = target.answer.addresses.size();
        changed = true;
      }
      break;
    }
    tried_.notify_all();
    if (changed && on_change_) {
      lock.unlock();
      on_change_();
      lock.lock();
    }
  }
}

}  // namespace needle::upstream
