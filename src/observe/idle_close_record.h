#pragma once
// What became of a client connection needle closed because it idled past client_idle_timeout
// (proxy/close_race_watch.h, docs/architecture.md "Downstream close races"). One record per
// such close, when its watch ends; counted by MetricsShard, labelled by listener.
#include <cstdint>
#include <string_view>

namespace needle::observe {

enum class IdleCloseOutcome : uint8_t {
  client_closed,  // the client answered needle's FIN with its own: the normal end
  quiet,          // the client neither closed nor sent anything within the watch time
  race_request,   // bytes arrived after needle's FIN: a request the client sent on the closing
                  // connection, which it answers with an error (a gateway's 502)
  race_reset,     // the client reset the connection after needle's FIN (docs/metrics.md)
  unwatched,      // closed at once: the worker was watching its maximum of closes already
  count_,
};

// "client_closed", "quiet", "request", "reset", "unwatched".
std::string_view idle_close_outcome_name(IdleCloseOutcome outcome);
// The race outcomes: the `signal` label of needle_downstream_close_races_total.
inline bool is_close_race(IdleCloseOutcome outcome) {
  return outcome == IdleCloseOutcome::race_request || outcome == IdleCloseOutcome::race_reset;
}

struct IdleCloseRecord {
  std::string_view listener;  // the listener's configured address, e.g. "0.0.0.0:8080"
  IdleCloseOutcome outcome = IdleCloseOutcome::client_closed;
};

}  // namespace needle::observe
