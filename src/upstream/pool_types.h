#pragma once
// Vocabulary shared by the socket-free PoolCore and the Asio HostPool (connection_pool.h):
// why connections leave the pool, what the pool counts, how it is configured, and what an
// exchange reports when it hands a connection back. No Asio here, so core tests need no sockets.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>

#include "base/clock.h"
#include "config/config.h"
#include "tls/client_tls_context.h"
#include "upstream/idle_timeout_estimator.h"

namespace needle::upstream {

enum class EvictReason : uint8_t {
  upstream_closed_idle,   // idle watch saw FIN/RST
  stray_bytes_idle,       // idle watch saw bytes nobody asked for
  checkout_probe_failed,  // MSG_PEEK at checkout saw EOF/error/data
  idle_limit,             // reached the effective idle limit
  max_age,                // max_connection_age
  max_requests,           // max_requests_per_connection
  learned_request_cap,    // the upstream was seen closing every connection after this many
  max_idle,               // pool already holds max_idle_per_host idle connections
  not_reusable,           // exchange ended without a clean, complete, keep-alive response
  draining,               // pool drained (shutdown / reload)
  sentinel_done,          // sentinel closed by the upstream or reached its horizon
  count_                  // number of reasons (array size)
};
std::string_view evict_reason_name(EvictReason reason);

struct PoolCounters {
  uint64_t opened = 0;           // successful connects
  uint64_t connect_failures = 0;
  uint64_t reused = 0;           // checkouts of an idle connection
  uint64_t probes_skipped = 0;   // of those, handed out without a checkout probe (quiet_unprobed)
  uint64_t tls_resumed = 0;      // of the opened, TLS connections whose handshake resumed
  uint64_t evicted[static_cast<size_t>(EvictReason::count_)] = {};
  uint64_t evicted_for(EvictReason reason) const { return evicted[static_cast<size_t>(reason)]; }
};

struct PoolSettings {
  Millis connect_timeout = Millis(5000);
  size_t max_idle = 1024;
  uint32_t max_requests_per_connection = 0;  // 0 = unlimited
  Millis max_connection_age = Millis(0);     // 0 = unlimited
  IdleTimeoutEstimator::Settings idle;
  uint32_t eject_after_connect_failures = 5; // 0 = never eject
  Millis eject_duration = Millis(5000);
  // A released connection's idle watch is armed once it has been idle at least this long and
  // less than twice this long (HostPool::defer_idle_watch). Not in the config file: tests set it.
  Millis idle_watch_delay = Millis(10);
  // A connection idle for less than this may be handed out without the checkout probe when the
  // reactor has seen no event on it since its last response left the receive queue empty
  // (checkout_probe in host_pool.cc says why that is safe); older ones are always probed. Far below
  // any upstream's idle timeout (the shortest in the wild is about 1 s), so a close that the
  // probe would catch and the reactor has not yet reported is never an idle-timeout close.
  // Not in the config file; 0 probes every checkout (DESIGN.md rule 2 as first written).
  Millis probe_exempt_idle = Millis(100);
  // [cluster.NAME.tls]: connections speak TLS (the handshake follows the TCP connect, under its
  // own connect_timeout). One context per cluster per worker, shared by its hosts' pools; null
  // with tls_required set means the context could not be built: every connect fails.
  bool tls_required = false;
  std::shared_ptr<const tls::ClientTlsContext> tls;
  static PoolSettings from_cluster(const config::ClusterConfig& cluster);
};

// What the exchange learned about the connection; the reuse predicate (one function in the pool)
// decides from this whether the connection goes back to the idle list.
struct ReleaseInfo {
  bool response_complete = false;    // response fully read, framing intact
  bool upstream_keep_alive = false;  // no Connection: close, HTTP/1.1 or 1.0 keep-alive
  std::optional<Millis> keep_alive_hint;
};

// What a peek at an idle socket found (recv(MSG_PEEK | MSG_DONTWAIT) of one byte).
enum class IdleSocketState : uint8_t {
  quiet,        // EAGAIN: nothing to read, still open
  closed,       // EOF (FIN) or an error such as ECONNRESET
  stray_bytes,  // bytes nobody asked for: the connection is out of sync
  // Not peeked at, and known to be as quiet as a peek at the last event harvest: no event since
  // its last response was read to an empty receive queue, or since its last quiet peek
  // (HostPool's checkout only).
  quiet_unprobed,
};

}  // namespace needle::upstream
