#pragma once
// Counters of the 5xx webhook notifier, as read by the metrics page (AlertNotifier::stats()).
#include <cstdint>

namespace needle::observe {

struct AlertStats {
  uint64_t events = 0;          // requests accepted by notify()
  uint64_t events_sent = 0;     // events in batches the webhook acknowledged (2xx)
  uint64_t events_dropped = 0;  // events never delivered: queue full or delivery gave up
  uint64_t batches_sent = 0;    // batches acknowledged with 2xx
  uint64_t batches_failed = 0;  // batches dropped after the last try failed
  uint64_t post_errors = 0;     // failed tries (connect error, timeout, non-2xx), retried or not
};

}  // namespace needle::observe
