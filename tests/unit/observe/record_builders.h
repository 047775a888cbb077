#pragma once
// Builders of RequestRecords for the observe unit tests.
#include <chrono>
#include <string>

#include "observe/request_record.h"

namespace needle::observe::test_records {

using namespace std::chrono_literals;

inline AttemptRecord attempt(std::string upstream, int status, Cause cause, bool reused = false,
                             Duration duration = 5ms) {
  AttemptRecord a;
  a.upstream = std::move(upstream);
  a.status = status;
  a.cause = cause;
  a.reused = reused;
  a.duration = duration;
  return a;
}

inline RequestRecord request(int status, Cause cause = Cause::none, std::string route = "/api",
                             std::string cluster = "app") {
  RequestRecord r;
  r.start_wall = std::chrono::system_clock::time_point(std::chrono::milliseconds(1714566896789));
  r.duration = 12345us;
  r.request_id = "req-1";
  r.client_address = "10.0.0.7:51234";
  r.method = "GET";
  r.host = "example.com";
  r.path = "/api/users?id=1";
  r.status = status;
  r.cause = cause;
  r.route = std::move(route);
  r.cluster = std::move(cluster);
  r.bytes_in = 10;
  r.bytes_out = 200;
  r.worker = 1;
  return r;
}

}  // namespace needle::observe::test_records
