#include "proxy/request_id.h"

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
  static constexpr char kHex[] = "0123456789abcdef";
  const uint64_t words[2] = {splitmix64(state_a_), splitmix64(state_b_)};
  out.resize(32);
  for (int w = 0; w < 2; ++w) {
    for (int i = 0; i < 16; ++i) {
      out[w * 16 + i] = kHex[(words[w] >> (60 - 4 * i)) & 0xf];
    }
  }
}

}  // namespace needle::proxy
