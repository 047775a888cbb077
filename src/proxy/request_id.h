#pragma once
// X-Request-Id values for requests that arrive without one: 32 hex digits (128 bits) from a
// per-worker generator seeded from the OS; unique enough to find a request across logs, cheap
// enough to make per request (no syscall, no lock).
#include <cstdint>
#include <string>

namespace needle::proxy {

class RequestIdGenerator {
 public:
  RequestIdGenerator();
  std::string next();
  // The same, written into `out` (its capacity reused: no allocation once warm).
  void next(std::string& out);

 private:
  uint64_t state_a_;
  uint64_t state_b_;
};

}  // namespace needle::proxy
