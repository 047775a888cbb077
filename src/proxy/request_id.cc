#include "proxy/request_id.h"

#include <array>
#include <random>

namespace needle::proxy {
namespace {
uint64_t splitmix64(uint64_t& x) {
  uint64_t z = (x += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}
}  // namespace

RequestIdGenerator::RequestIdGenerator() {
  std::random_device rd;
  state_a_ = (uint64_t{rd()} << 32) ^ rd();
  state_b_ = (uint64_t{rd()} << 32) ^ rd();
}

std::string RequestIdGenerator::next() {
  std::string id;
  next(id);
  return id;
}

void RequestIdGenerator::next(std::string& out) {
  // Two hex digits per table lookup: the id costs ~16 loads, not 32 shifts and masks.
  static constexpr auto kHexPairs = [] {
    constexpr char kHex[] = "0123456789abcdef";
    std::array<char, 512> pairs{};
    for (int b = 0; b < 256; ++b) {
      pairs[2 * b] = kHex[b >> 4];
      pairs[2 * b + 1] = kHex[b & 0xf];
    }
    return pairs;
  }();
  const uint64_t words[2] = {splitmix64(state_a_), splitmix64(state_b_)};
  out.resize(32);
  char* digits = out.data();
  for (const uint64_t word : words) {
    for (int shift = 56; shift >= 0; shift -= 8) {
      const unsigned byte = (word >> shift) & 0xff;
      *digits++ = kHexPairs[2 * byte];
      *digits++ = kHexPairs[2 * byte + 1];
    }
  }
}

}  // namespace needle::proxy
