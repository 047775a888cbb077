#pragma once
// Shared by the libFuzzer drivers: how an input is cut into the reads a socket would deliver.
// The cut points come from a hash of the input (not from prefix bytes), so the seed corpus is
// plain HTTP and a crash file is the message itself; any mutation moves the cuts too.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>
#include <vector>

namespace needle::fuzz {

inline uint64_t fnv1a(std::string_view s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

// 1 to 3 consecutive pieces covering `in` exactly (some may be empty).
inline std::vector<std::string_view> split_input(std::string_view in, uint64_t h) {
  std::vector<std::string_view> pieces;
  const size_t count = 1 + h % 3;
  h /= 3;
  size_t at = 0;
  for (size_t i = 1; i < count; ++i) {
    const size_t left = in.size() - at;
    const size_t len = left == 0 ? 0 : (h % (left + 1));
    h /= (left + 1) | 1;
    h ^= h >> 17;
    pieces.push_back(in.substr(at, len));
    at += len;
  }
  pieces.push_back(in.substr(at));
  return pieces;
}

}  // namespace needle::fuzz

// Invariant check that survives -DNDEBUG (RelWithDebInfo): a violation is a crash for libFuzzer.
#define FUZZ_CHECK(cond)                                                                  \
  do {                                                                                    \
    if (!(cond)) {                                                                        \
      std::fprintf(stderr, "FUZZ_CHECK failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
      std::abort();                                                                       \
    }                                                                                     \
  } while (0)
