// The upgrade state file (server/state_handoff.h): what one process writes the next one reads
// back into an estimator that then decides like the one it came from; anything else is ignored.
#include "server/state_handoff.h"

#include <gtest/gtest.h>

#include "base/clock.h"

namespace needle::server {
namespace {

using upstream::CloseVerdict;
using upstream::IdleClose;
using upstream::IdleTimeoutEstimator;

TimePoint at(int ms) { return TimePoint{} + std::chrono::hours(1) + Millis(ms); }

TEST(StateHandoff, EstimatorEvidenceSurvivesTheRoundTrip) {
  IdleTimeoutEstimator old_one(IdleTimeoutEstimator::Settings{});
  old_one.on_hint(Millis(7000));
  old_one.on_reuse_succeeded(Millis(900), 3);
  old_one.on_sentinel_survived(Millis(1200));
  old_one.on_idle_close({at(0), Millis(4000), 1});     // learned
  old_one.on_idle_close({at(5000), Millis(300), 1});   // far below proven: a suspect
  ASSERT_EQ(old_one.learned(), Millis(4000));
  ASSERT_EQ(old_one.suspect(), Millis(300));

  UpgradeState state;
  state.workers.push_back({HostLearnedState{
      "app", "127.0.0.1:3000", {old_one.evidence(at(6000)), Millis(2500)}}});
  const std::string text = render_upgrade_state(state);
  std::string why;
  auto parsed = parse_upgrade_state(text, &why);
  ASSERT_TRUE(parsed.has_value()) << why << "\n" << text;
  ASSERT_EQ(parsed->workers.size(), 1u);
  ASSERT_EQ(parsed->workers[0].size(), 1u);
  const auto& host = parsed->workers[0][0];
  EXPECT_EQ(host.cluster, "app");
  EXPECT_EQ(host.host, "127.0.0.1:3000");
  EXPECT_EQ(host.state.ejection_left, Millis(2500));

  IdleTimeoutEstimator new_one(IdleTimeoutEstimator::Settings{});
  new_one.restore(host.state.evidence, at(100'000));
  EXPECT_EQ(new_one.hint(), Millis(7000));
  EXPECT_EQ(new_one.learned(), Millis(4000));
  EXPECT_EQ(new_one.suspect(), Millis(300));
  EXPECT_EQ(new_one.survived(), Millis(1200));
  EXPECT_EQ(new_one.effective_limit(), old_one.effective_limit());
  EXPECT_EQ(new_one.non_replayable_limit(), old_one.non_replayable_limit());
  EXPECT_EQ(new_one.source(), old_one.source());
  EXPECT_EQ(new_one.last_verdict(), CloseVerdict::suspect);
  // The closes kept their distance in time: a second suspect of agreeing age now confirms the
  // first, as it would have in the old process.
  new_one.on_idle_close({at(100'000 + 1000), Millis(310), 1});
  old_one.on_idle_close({at(6000 + 1000), Millis(310), 1});
  EXPECT_EQ(new_one.learned(), old_one.learned());
  EXPECT_EQ(new_one.effective_limit(), old_one.effective_limit());
}

TEST(StateHandoff, AnythingButAVersionOneStateIsRefused) {
  std::string why;
  EXPECT_FALSE(parse_upgrade_state("", &why).has_value());
  EXPECT_EQ(why, "not JSON");
  EXPECT_FALSE(parse_upgrade_state("{\"version\":1,\"workers\":[[{\"cluster\":", &why));
  EXPECT_FALSE(parse_upgrade_state("{\"version\":2,\"workers\":[]}", &why).has_value());
  EXPECT_EQ(why, "version is not 1");
  EXPECT_FALSE(parse_upgrade_state("{\"version\":1,\"workers\":[{}]}", &why).has_value());
  EXPECT_FALSE(parse_upgrade_state(
      "{\"version\":1,\"workers\":[[{\"cluster\":\"a\",\"host\":\"h\",\"closes\":"
      "[{\"ago_ms\":1,\"idle_age_ms\":2,\"requests_done\":1,\"verdict\":\"made_up\"}]}]]}",
      &why));
  std::string deep(100, '[');
  EXPECT_FALSE(parse_upgrade_state(deep, &why).has_value());
  auto empty = parse_upgrade_state("{\"version\":1,\"workers\":[]}", &why);
  ASSERT_TRUE(empty.has_value());
  EXPECT_TRUE(empty->workers.empty());
}

}  // namespace
}  // namespace needle::server
