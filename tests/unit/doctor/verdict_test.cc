// needle doctor's judgement, from measured values only (no sockets): the cases of the 502 story
// (Express behind a 75 s proxy), the safe ones, the probe that saw no close, and a lying hint.
#include "doctor/verdict.h"

#include <gtest/gtest.h>

namespace needle::doctor {
namespace {

using namespace std::chrono_literals;
// Substring check with the haystack in the failure message (no gmock dependency).
#define EXPECT_CONTAINS(haystack, needle) \
  EXPECT_NE(std::string(haystack).find(needle), std::string::npos) << (haystack)

Measurement measured(std::vector<Millis> closes, std::optional<Millis> hint,
                     CloseKind kind = CloseKind::fin, std::string server = "") {
  Measurement m;
  m.url = "http://127.0.0.1:3000/hello";
  m.target = "127.0.0.1:3000";
  m.path = "/hello";
  m.status = 200;
  m.server = std::move(server);
  m.keep_alive_hint = hint;
  m.max_wait = 120s;
  for (Millis c : closes) m.samples.push_back(ProbeSample{c, kind, {}});
  return m;
}

Measurement never_closed(Millis max_wait, size_t probes = 4) {
  Measurement m = measured({}, std::nullopt);
  m.max_wait = max_wait;
  for (size_t i = 0; i < probes; ++i)
    m.samples.push_back(ProbeSample{std::nullopt, CloseKind::none, {}});
  return m;
}

ProxyLimit proxy(Millis idle_timeout) {
  ProxyLimit p;
  p.label = "--proxy-idle-timeout";
  p.idle_timeout = idle_timeout;
  return p;
}

ProxyLimit needle_cluster(std::optional<Millis> idle_timeout) {
  ProxyLimit p;
  p.kind = ProxyLimit::Kind::needle_cluster;
  p.label = "cluster app";
  p.cluster = "app";
  p.idle_timeout = idle_timeout;
  return p;
}

std::string all_fixes(const Verdict& v) {
  std::string out;
  for (const auto& f : v.fixes) out += f + "\n";
  return out;
}

// Node 20 / Express defaults: keepAliveTimeout 5 s (hint timeout=5), the close comes ~1 s later.
const std::vector<Millis> kNodeCloses = {6004ms, 6005ms, 6006ms, 6010ms};

TEST(DoctorVerdict, NodeDefaultsBehindA75sProxyIsAMismatchWithBothFixes) {
  const Diagnosis d = diagnose(measured(kNodeCloses, 5s), {proxy(75s)});
  ASSERT_EQ(d.verdicts.size(), 1u);
  const Verdict& v = d.verdicts[0];
  EXPECT_EQ(v.kind, VerdictKind::mismatch);
  EXPECT_EQ(d.exit_status(), 1);
  EXPECT_EQ(d.safe_limit, 6004ms - 600ms);
  EXPECT_CONTAINS(v.summary, "75s");
  EXPECT_CONTAINS(v.summary, "6.004s");
  ASSERT_EQ(v.fixes.size(), 2u);
  // Proxy side: below the safe limit 5.404 s, as whole seconds; needle plans with the hint.
  EXPECT_CONTAINS(v.fixes[0], "below 5.404s");
  EXPECT_CONTAINS(v.fixes[0], "`keepalive_timeout 5s;` in the upstream block");
  EXPECT_CONTAINS(v.fixes[0], "timeout http-keep-alive 5s");
  EXPECT_CONTAINS(v.fixes[0], "idle_timeout = \"5s\"");
  EXPECT_CONTAINS(v.fixes[0], "leave it unset and needle learns it");
  // App side: Node recognised (no Server header, a hint), a value that passes the same rule.
  EXPECT_CONTAINS(v.fixes[1], "above 83.334s (e.g. 84s)");
  EXPECT_CONTAINS(v.fixes[1], "server.keepAliveTimeout = 84000");
  EXPECT_CONTAINS(v.fixes[1], "headersTimeout");
  // The suggested app value really is safe for the 75 s proxy by the doctor's own rule.
  const Diagnosis fixed = diagnose(measured({84000ms}, 84s), {proxy(75s)});
  EXPECT_EQ(fixed.verdicts[0].kind, VerdictKind::ok);
  // Node's hint is below its real close: noted, not warned.
  EXPECT_FALSE(d.hint_exceeds_close);
  EXPECT_TRUE(d.warnings.empty());
}

TEST(DoctorVerdict, Hint5sVersusProxy4sIsOk) {
  for (Millis close : {5000ms, 6004ms}) {
    const Diagnosis d = diagnose(measured({close, close}, 5s), {proxy(4s)});
    EXPECT_EQ(d.verdicts[0].kind, VerdictKind::ok) << close.count();
    EXPECT_TRUE(d.verdicts[0].fixes.empty());
    EXPECT_EQ(d.exit_status(), 0);
  }
}

TEST(DoctorVerdict, TheMarginIsNeedlesMaxOf100msAnd10Percent) {
  // close 5 s: safe below 4.5 s.
  EXPECT_EQ(diagnose(measured({5000ms}, 5s), {proxy(4499ms)}).verdicts[0].kind, VerdictKind::ok);
  EXPECT_EQ(diagnose(measured({5000ms}, 5s), {proxy(4500ms)}).verdicts[0].kind,
            VerdictKind::mismatch);
  // close 700 ms: the 100 ms floor applies, safe below 600 ms.
  EXPECT_EQ(diagnose(measured({700ms}, std::nullopt), {proxy(599ms)}).verdicts[0].kind,
            VerdictKind::ok);
  EXPECT_EQ(diagnose(measured({700ms}, std::nullopt), {proxy(600ms)}).verdicts[0].kind,
            VerdictKind::mismatch);
  EXPECT_EQ(idle_margin(75s), 7500ms);
  EXPECT_EQ(idle_margin(700ms), 100ms);
}

TEST(DoctorVerdict, NoCloseWithinMaxWaitIsOkForAnyProxyTimeoutBelowIt) {
  const Measurement m = never_closed(120s);
  for (Millis t : {1000ms, 60000ms, 75000ms, 119999ms}) {
    const Diagnosis d = diagnose(m, {proxy(t)});
    EXPECT_EQ(d.verdicts[0].kind, VerdictKind::ok) << t.count();
    EXPECT_EQ(d.exit_status(), 0);
  }
  EXPECT_FALSE(diagnose(m, {}).safe_limit);
  const Diagnosis longer = diagnose(m, {proxy(600s)});
  EXPECT_EQ(longer.verdicts[0].kind, VerdictKind::inconclusive);
  EXPECT_EQ(longer.exit_status(), 2);
  EXPECT_CONTAINS(longer.verdicts[0].summary, "--max-wait 667s");
}

TEST(DoctorVerdict, AHintLargerThanTheRealCloseIsFlagged) {
  // nginx with `keepalive_timeout 5s 75s;`: promises 75 s, closes at 5 s.
  const Measurement m = measured({5001ms, 5002ms}, 75s, CloseKind::fin, "nginx/1.22.1");
  const Diagnosis d = diagnose(m, {needle_cluster(std::nullopt), proxy(60s)});
  EXPECT_TRUE(d.hint_exceeds_close);
  ASSERT_EQ(d.warnings.size(), 1u);
  EXPECT_CONTAINS(d.warnings[0], "hint lies");
  EXPECT_CONTAINS(d.warnings[0], "75s");
  EXPECT_CONTAINS(d.warnings[0], "5.001s");
  // needle without idle_timeout adapts, but warns: until it learns it trusts the hint.
  const Verdict& n = d.verdicts[0];
  EXPECT_EQ(n.kind, VerdictKind::adapts);
  EXPECT_CONTAINS(n.summary, "needle adapts: configured none, hint 75s, learned");
  ASSERT_EQ(n.warnings.size(), 1u);
  EXPECT_CONTAINS(n.warnings[0], "67.5s");
  EXPECT_CONTAINS(all_fixes(n), "idle_timeout = \"5s\"` in [cluster.app]");
  // The 60 s proxy is a mismatch; the fix names nginx's own knob on the app side.
  EXPECT_EQ(d.verdicts[1].kind, VerdictKind::mismatch);
  EXPECT_CONTAINS(all_fixes(d.verdicts[1]), "nginx: `keepalive_timeout 67s;`");
  EXPECT_EQ(d.exit_status(), 1);
}

TEST(DoctorVerdict, NeedleClusterPlansWithMinOfIdleTimeoutAndHint) {
  // idle_timeout 5 s for Express: reuse up to 4.5 s, close at 6 s.
  Diagnosis d = diagnose(measured(kNodeCloses, 5s), {needle_cluster(5s)});
  EXPECT_EQ(d.verdicts[0].kind, VerdictKind::ok);
  EXPECT_EQ(d.verdicts[0].proxy_limit, 4500ms);
  EXPECT_TRUE(d.verdicts[0].warnings.empty());

  // idle_timeout 75 s with Node's hint: needle is saved by the hint, but the config is wrong.
  d = diagnose(measured(kNodeCloses, 5s), {needle_cluster(75s)});
  EXPECT_EQ(d.verdicts[0].kind, VerdictKind::ok);
  EXPECT_EQ(d.verdicts[0].proxy_limit, 4500ms);
  ASSERT_EQ(d.verdicts[0].warnings.size(), 1u);
  EXPECT_CONTAINS(d.verdicts[0].warnings[0], "safe only because");

  // idle_timeout 75 s, no hint (gunicorn, 2 s): a mismatch.
  d = diagnose(measured({2001ms, 2002ms}, std::nullopt, CloseKind::fin, "gunicorn"),
               {needle_cluster(75s)});
  EXPECT_EQ(d.verdicts[0].kind, VerdictKind::mismatch);
  EXPECT_EQ(d.exit_status(), 1);
  EXPECT_CONTAINS(all_fixes(d.verdicts[0]), "idle_timeout = \"2s\"` in [cluster.app]");
  EXPECT_CONTAINS(all_fixes(d.verdicts[0]), "gunicorn: `--keep-alive 76`");
}

TEST(DoctorVerdict, NeedleWithoutIdleTimeoutAdaptsAndWarnsWhenItsFirstGuessIsTooLong) {
  // gunicorn 2 s: initial_idle_limit 1.5 s is below the safe 1.8 s: no warning.
  Diagnosis d = diagnose(measured({2000ms}, std::nullopt), {needle_cluster(std::nullopt)});
  EXPECT_EQ(d.verdicts[0].kind, VerdictKind::adapts);
  EXPECT_CONTAINS(d.verdicts[0].summary, "configured none, hint none, learned");
  EXPECT_TRUE(d.verdicts[0].warnings.empty());
  EXPECT_EQ(d.exit_status(), 0);
  // An upstream closing at 1 s: the first guess is too long until needle has learned.
  d = diagnose(measured({1000ms}, std::nullopt), {needle_cluster(std::nullopt)});
  EXPECT_EQ(d.verdicts[0].kind, VerdictKind::adapts);
  ASSERT_EQ(d.verdicts[0].warnings.size(), 1u);
  EXPECT_CONTAINS(d.verdicts[0].warnings[0], "initial_idle_limit 1.5s");
  EXPECT_CONTAINS(all_fixes(d.verdicts[0]), "idle_timeout = \"1s\"");
}

TEST(DoctorVerdict, ConnectionCloseMeansNothingToRace) {
  Measurement m = measured({0ms}, std::nullopt);
  m.connection_close = true;
  const Diagnosis d = diagnose(m, {proxy(75s), needle_cluster(std::nullopt)});
  EXPECT_EQ(d.verdicts[0].kind, VerdictKind::ok);
  EXPECT_EQ(d.verdicts[1].kind, VerdictKind::ok);
  EXPECT_TRUE(d.warnings.empty());
  EXPECT_EQ(d.exit_status(), 0);
}

TEST(DoctorVerdict, ImmediateCloseWithoutConnectionCloseIsWarned) {
  const Diagnosis d = diagnose(measured({2ms}, std::nullopt), {});
  ASSERT_EQ(d.warnings.size(), 1u);
  EXPECT_CONTAINS(d.warnings[0], "not an idle timeout");
}

TEST(DoctorVerdict, NoProxyGivenStillReportsTheSafeLimit) {
  const Diagnosis d = diagnose(measured({700ms, 701ms}, std::nullopt, CloseKind::rst), {});
  EXPECT_TRUE(d.verdicts.empty());
  EXPECT_EQ(d.safe_limit, 600ms);
  EXPECT_EQ(d.close.kind, CloseKind::rst);
  EXPECT_EQ(d.exit_status(), 0);
}

TEST(DoctorVerdict, SummaryTakesMinMedianMaxAndKind) {
  std::vector<ProbeSample> s = {{700ms, CloseKind::fin, {}},
                                {720ms, CloseKind::fin, {}},
                                {702ms, CloseKind::rst, {}},
                                {std::nullopt, CloseKind::none, {}},
                                {710ms, CloseKind::fin, {}}};
  const CloseSummary c = summarize(s);
  EXPECT_EQ(c.closed, 4u);
  EXPECT_EQ(c.open, 1u);
  EXPECT_EQ(c.min, 700ms);
  EXPECT_EQ(c.median, 706ms);  // (702 + 710) / 2
  EXPECT_EQ(c.max, 720ms);
  EXPECT_EQ(c.kind, CloseKind::mixed);
  EXPECT_EQ(summarize({{5ms, CloseKind::rst, {}}}).kind, CloseKind::rst);
  EXPECT_EQ(summarize({}).kind, CloseKind::none);
}

TEST(DoctorVerdict, RoundingForAdvice) {
  EXPECT_EQ(round_down_below(5404ms), 5000ms);
  EXPECT_EQ(round_down_below(5000ms), 4000ms);  // strictly below
  EXPECT_EQ(round_down_below(1800ms), 1700ms);
  EXPECT_EQ(round_down_below(100ms), std::nullopt);
  EXPECT_EQ(round_up_above(83334ms), 84000ms);
  EXPECT_EQ(round_up_above(75000ms), 76000ms);
  EXPECT_EQ(round_up_above(700ms), 800ms);
  EXPECT_EQ(human_duration(6004ms), "6.004s");
  EXPECT_EQ(human_duration(75000ms), "75s");
  EXPECT_EQ(human_duration(700ms), "700ms");
  EXPECT_EQ(human_duration(5400ms), "5.4s");
}

}  // namespace
}  // namespace needle::doctor
