#include "base/duration.h"

#include <gtest/gtest.h>

namespace needle {
namespace {

TEST(ParseDuration, AcceptsUnits) {
  EXPECT_EQ(parse_duration("250ms"), Millis(250));
  EXPECT_EQ(parse_duration("5s"), Millis(5000));
  EXPECT_EQ(parse_duration("1.5s"), Millis(1500));
  EXPECT_EQ(parse_duration("2m"), Millis(120000));
  EXPECT_EQ(parse_duration("1h"), Millis(3600000));
}

TEST(ParseDuration, RejectsWhatItCannotReadExactly) {
  EXPECT_FALSE(parse_duration(""));
  EXPECT_FALSE(parse_duration("5"));      // no unit: never guessed
  EXPECT_FALSE(parse_duration("s"));
  EXPECT_FALSE(parse_duration("5 s"));
  EXPECT_FALSE(parse_duration("-5s"));
  EXPECT_FALSE(parse_duration("1.2.3s"));
  EXPECT_FALSE(parse_duration("5sec"));
}

TEST(FormatDuration, ShortestExactUnit) {
  EXPECT_EQ(format_duration(Millis(1500)), "1500ms");
  EXPECT_EQ(format_duration(Millis(5000)), "5s");
  EXPECT_EQ(format_duration(Millis(120000)), "2m");
  EXPECT_EQ(format_duration(Millis(0)), "0ms");
}

}  // namespace
}  // namespace needle
