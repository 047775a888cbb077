// Generated X-Request-Id values: 32 lowercase hex digits, a fresh value each call, and the
// in-place form writes the same shape into a reused string.
#include <set>
#include <string>

#include <gtest/gtest.h>

#include "proxy/request_id.h"

namespace needle::proxy {
namespace {

bool is_lower_hex(const std::string& s) {
  for (const char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

TEST(RequestIdGenerator, ThirtyTwoLowercaseHexDigits) {
  RequestIdGenerator generator;
  for (int i = 0; i < 100; ++i) {
    const std::string id = generator.next();
    ASSERT_EQ(id.size(), 32u) << id;
    EXPECT_TRUE(is_lower_hex(id)) << id;
  }
}

TEST(RequestIdGenerator, ValuesDoNotRepeatAndUseEveryDigit) {
  RequestIdGenerator generator;
  std::set<std::string> seen;
  std::set<char> digits;
  for (int i = 0; i < 10000; ++i) {
    const std::string id = generator.next();
    EXPECT_TRUE(seen.insert(id).second) << "repeated " << id;
    digits.insert(id.begin(), id.end());
  }
  EXPECT_EQ(digits.size(), 16u);  // a broken digit table would leave some out
}

TEST(RequestIdGenerator, InPlaceFormOverwritesTheWholeString) {
  RequestIdGenerator generator;
  std::string out = "a much longer previous value that must not survive in any part";
  generator.next(out);
  EXPECT_EQ(out.size(), 32u);
  EXPECT_TRUE(is_lower_hex(out)) << out;
  const std::string first = out;
  generator.next(out);
  EXPECT_NE(out, first);
}

TEST(RequestIdGenerator, TwoGeneratorsDoNotShareASequence) {
  RequestIdGenerator a, b;  // seeded from the OS each
  EXPECT_NE(a.next(), b.next());
}

}  // namespace
}  // namespace needle::proxy
