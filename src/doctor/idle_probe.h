#pragma once
// The measurement half of needle doctor, done from the outside as an operator would by hand:
// open N fresh connections in parallel, send `GET PATH` (HTTP/1.1, Connection: keep-alive) on
// each, read the whole response (ResponseParser: Content-Length, chunked or until-close), then
// leave the connection idle and time when the upstream closes it, from the end of the response:
// read() == 0 is a FIN, ECONNRESET an RST, bytes are "data". Each connection has its own thread
// blocked in poll(), so the close is timestamped within the scheduler's wake-up latency (well
// under a millisecond on an idle machine; the contract is 50 ms).
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "base/clock.h"
#include "doctor/target_url.h"
#include "doctor/verdict.h"

namespace needle::doctor {

struct ProbeOptions {
  TargetUrl url;
  std::vector<std::pair<std::string, std::string>> headers;  // extra request header fields
  unsigned connections = 4;
  Millis max_wait{120'000};  // per connection, from the end of its response
  Millis connect_timeout{5'000};
  Millis response_timeout{10'000};  // request written -> response complete
};

struct ProbeOutcome {
  std::optional<Measurement> measurement;  // set when at least one connection got a response
  std::string error;                       // otherwise: the first failure, in plain words
};

// Blocks until every connection has seen its close or max-wait has passed.
// Measurement::url is left empty for the caller.
ProbeOutcome run_idle_probe(const ProbeOptions& options);

}  // namespace needle::doctor
