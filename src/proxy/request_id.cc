#include "proxy/request_id.h"

#include <random>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

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
  const uint64_t words[2] = {splitmix64(state_a_), splitmix64(state_b_)};
  out.resize(32);
  char* digits = out.data();
#if defined(__SSE2__)
  // All 32 digits at once: each byte split into its two nibbles, interleaved high first, and
  // mapped to '0'..'9' / 'a'..'f'.
  const __m128i bytes = _mm_set_epi64x(static_cast<long long>(words[1]),
                                       static_cast<long long>(words[0]));
  const __m128i low_nibbles = _mm_set1_epi8(0x0f);
  const __m128i hi = _mm_and_si128(_mm_srli_epi16(bytes, 4), low_nibbles);
  const __m128i lo = _mm_and_si128(bytes, low_nibbles);
  auto to_hex = [](__m128i nibbles) {
    const __m128i letter = _mm_cmpgt_epi8(nibbles, _mm_set1_epi8(9));
    const __m128i offset = _mm_add_epi8(_mm_set1_epi8('0'),
                                        _mm_and_si128(letter, _mm_set1_epi8('a' - '0' - 10)));
    return _mm_add_epi8(nibbles, offset);
  };
  _mm_storeu_si128(reinterpret_cast<__m128i*>(digits), to_hex(_mm_unpacklo_epi8(hi, lo)));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(digits + 16), to_hex(_mm_unpackhi_epi8(hi, lo)));
#else
  static constexpr char kHex[] = "0123456789abcdef";
  for (const uint64_t word : words) {
    for (int shift = 0; shift < 64; shift += 8) {
      const unsigned byte = (word >> shift) & 0xff;
      *digits++ = kHex[byte >> 4];
      *digits++ = kHex[byte & 0xf];
    }
  }
#endif
}

}  // namespace needle::proxy
