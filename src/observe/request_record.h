#pragma once
// Everything known about one proxied request, filled by the proxy as it goes and handed to the
// access log, metrics and the alerter when the request ends. Plain data; no behaviour.
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/cause.h"
#include "base/clock.h"

namespace needle::observe {

// One try at the upstream (the first attempt and each retry).
struct AttemptRecord {
  std::string upstream;          // "127.0.0.1:3000"
  uint64_t connection_id = 0;    // 0 when no connection was obtained
  bool reused = false;           // pooled connection (vs freshly opened)
  uint32_t reuse_count = 0;      // exchanges the connection had served before this one
  Millis idle_age{0};            // idle time at checkout (0 for fresh connections)
  uint64_t bytes_written = 0;    // request bytes sent upstream (head + body framing)
  uint64_t bytes_read = 0;       // response bytes received from upstream
  Duration duration{0};
  int status = 0;                // upstream status, 0 if none arrived
  Cause cause = Cause::none;
  std::string retry_decision;    // why it was (or was not) retried; empty for the last success
};

// The client connection's TLS handshake (issue 18), for requests on a TLS listener. Owned by
// the session, which outlives the record's formatting (on_request_done formats at once).
struct TlsFacts {
  std::string version;  // "TLSv1.3"
  std::string cipher;
  std::string sni;      // empty: the client sent none
  bool resumed = false;
};

// The tunnel a 101 opened (docs/access-log.md `tunnel`); the request's record is written when
// the tunnel ends.
struct TunnelRecord {
  bool opened = false;
  uint64_t bytes_from_client = 0;  // relayed client -> upstream after the 101
  uint64_t bytes_to_client = 0;    // relayed upstream -> client after the 101 head
  Duration duration{0};            // from the 101 to the end of the tunnel
  std::string_view closed_by;      // static text: client, upstream, idle_timeout, drain
};

struct RequestRecord {
  std::chrono::system_clock::time_point start_wall;
  TimePoint start{};
  Duration duration{0};
  std::string request_id;
  std::string client_address;
  std::string method;
  std::string host;
  std::string path;
  int status = 0;                // status sent to the client (0: none could be sent)
  uint64_t bytes_in = 0;         // request body bytes from the client
  uint64_t bytes_out = 0;        // response bytes to the client (head + body)
  std::string route;             // route index/prefix that matched, empty if none
  std::string cluster;
  Cause cause = Cause::none;     // final cause; always set for 5xx and for aborted requests
  std::string detail;            // free-text detail for errors (e.g. "connect: Connection refused")
  std::vector<AttemptRecord> attempts;
  unsigned worker = 0;
  const TlsFacts* tls = nullptr;  // null: plain HTTP
  TunnelRecord tunnel;

  // Back to a fresh record, keeping the strings' and the vector's capacity: a session reuses
  // one record for all its requests, so a warm session allocates nothing for it.
  void reset() {
    start_wall = {};
    start = {};
    duration = Duration{0};
    request_id.clear();
    client_address.clear();
    method.clear();
    host.clear();
    path.clear();
    status = 0;
    bytes_in = bytes_out = 0;
    route.clear();
    cluster.clear();
    cause = Cause::none;
    detail.clear();
    attempts.clear();
    worker = 0;
    tls = nullptr;
    tunnel = TunnelRecord{};
  }
};

}  // namespace needle::observe
