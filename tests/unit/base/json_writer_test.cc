// The JSON output helpers (base/json_writer.h) shared by the access log, metrics pages, alert
// batches and doctor's report.
#include "base/json_writer.h"

#include <chrono>
#include <string>

#include <gtest/gtest.h>

namespace needle::json {
namespace {

using namespace std::chrono_literals;

TEST(JsonWriter, EscapesQuotesBackslashesAndEveryControlByte) {
  EXPECT_EQ(quote("a\"b\\c"), R"("a\"b\\c")");
  EXPECT_EQ(quote("\n\r\t\b\f"), R"("\n\r\t\b\f")");
  EXPECT_EQ(quote(std::string("\x00\x01\x1f\x7f", 4)), R"("\u0000\u0001\u001f\u007f")");
  for (int c = 0; c < 0x20; ++c) {
    const std::string quoted = quote(std::string(1, static_cast<char>(c)));
    EXPECT_EQ(quoted[1], '\\') << c;  // never a raw control byte
  }
}

TEST(JsonWriter, PassesValidUtf8Through) {
  EXPECT_EQ(quote("caf\xc3\xa9"), "\"caf\xc3\xa9\"");            // 2 bytes
  EXPECT_EQ(quote("\xe2\x82\xac"), "\"\xe2\x82\xac\"");          // U+20AC, 3 bytes
  EXPECT_EQ(quote("\xf0\x9f\x98\x80"), "\"\xf0\x9f\x98\x80\"");  // U+1F600, 4 bytes
  EXPECT_EQ(quote("\xf4\x8f\xbf\xbf"), "\"\xf4\x8f\xbf\xbf\"");  // U+10FFFF
}

TEST(JsonWriter, EscapesInvalidUtf8BytesOneByOne) {
  EXPECT_EQ(quote("\xff"), R"("\u00ff")");
  EXPECT_EQ(quote("a\x80z"), R"("a\u0080z")");                            // lone continuation
  EXPECT_EQ(quote("\xc0\xaf"), R"("\u00c0\u00af")");                      // overlong '/'
  EXPECT_EQ(quote("\xe0\x80\xaf"), R"("\u00e0\u0080\u00af")");            // overlong 3-byte
  EXPECT_EQ(quote("\xed\xa0\x80"), R"("\u00ed\u00a0\u0080")");            // UTF-16 surrogate
  EXPECT_EQ(quote("\xf4\x90\x80\x80"), R"("\u00f4\u0090\u0080\u0080")");  // > U+10FFFF
  EXPECT_EQ(quote("\xc3"), R"("\u00c3")");              // truncated at the end
  EXPECT_EQ(quote("\xe2\x82z"), R"("\u00e2\u0082z")");  // truncated mid-string
  EXPECT_EQ(quote("\xc3\xa9\xff\xc3\xa9"), "\"\xc3\xa9\\u00ff\xc3\xa9\"");
}

TEST(JsonWriter, FormatsRfc3339UtcWithMilliseconds) {
  using std::chrono::system_clock;
  EXPECT_EQ(format_time(system_clock::time_point(1714566896789ms)),
            "2024-05-01T12:34:56.789Z");
  EXPECT_EQ(format_time(system_clock::time_point(0ms)), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(format_time(system_clock::time_point(5ms)), "1970-01-01T00:00:00.005Z");
}

TEST(JsonWriter, AppendsToWhatIsThere) {
  std::string out = "{\"k\":";
  append_string(out, "v\n");
  EXPECT_EQ(out, R"({"k":"v\n")");
}

}  // namespace
}  // namespace needle::json
