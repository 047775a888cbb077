// The alert rules shipped in docs/alerts are checked and unit-tested by promtool, as part of the
// unit suite: a rule that does not parse, or no longer fires on the keep-alive race, fails here.
#include <gtest/gtest.h>

#include <string>

#include "promtool_runner.h"

namespace needle::observe {
namespace {

std::string source_path(const std::string& relative) {
  return std::string(NEEDLE_SOURCE_DIR) + "/" + relative;
}

TEST(RulesPromtool, CheckRulesAcceptsTheRulesFile) {
  const auto promtool = promtool::find();
  ASSERT_TRUE(promtool) << promtool::kMissing;
  const auto result =
      promtool::run(*promtool, "check rules '" + source_path("docs/alerts/needle.rules.yml") + "'");
  EXPECT_EQ(result.exit_code, 0) << result.output;
  EXPECT_NE(result.output.find("SUCCESS"), std::string::npos) << result.output;
}

TEST(RulesPromtool, RuleUnitTestsPass) {
  const auto promtool = promtool::find();
  ASSERT_TRUE(promtool) << promtool::kMissing;
  // promtool resolves rule_files relative to the test file's directory.
  const auto result = promtool::run(
      *promtool, "test rules '" + source_path("docs/alerts/needle.rules.test.yml") + "'");
  EXPECT_EQ(result.exit_code, 0) << result.output;
  EXPECT_NE(result.output.find("SUCCESS"), std::string::npos) << result.output;
}

TEST(RulesPromtool, CheckRulesRejectsABrokenRule) {
  // Proves the two tests above can fail.
  const auto promtool = promtool::find();
  ASSERT_TRUE(promtool) << promtool::kMissing;
  char path[] = "/tmp/needle_rules_XXXXXX.yml";
  const int fd = ::mkstemps(path, 4);
  ASSERT_GE(fd, 0);
  const std::string broken =
      "groups:\n- name: broken\n  rules:\n  - alert: X\n    expr: "
      "sum(rate(needle_requests_total[5m]) >\n";
  ASSERT_EQ(::write(fd, broken.data(), broken.size()), static_cast<ssize_t>(broken.size()));
  ::close(fd);
  const auto result = promtool::run(*promtool, std::string("check rules ") + path);
  ::unlink(path);
  EXPECT_NE(result.exit_code, 0) << result.output;
}

}  // namespace
}  // namespace needle::observe
