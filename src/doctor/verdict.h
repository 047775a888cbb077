#pragma once
// needle doctor's judgement: from what the probe measured (the upstream's real idle close, its
// Keep-Alive hint, its Server header) and the idle limits of the proxies in front, decide per
// proxy whether a request can meet the upstream's idle close (the 502 race of DESIGN.md), and
// say how to fix it in plain words. Pure logic: no sockets, no clock, no config file.
//
// The rule, for a proxy that reuses idle connections up to T (nginx, HAProxy, a cloud LB: none of
// them honour the Keep-Alive hint):
//   safe   = close - margin(close), margin(x) = max(100 ms, 10% of x)  (needle's default margin)
//   OK       iff T < safe
//   MISMATCH otherwise; the fix is T below `safe`, or the upstream's close above T/0.9.
// For a needle cluster the limit is the one its IdleTimeoutEstimator uses before it has learned
// anything: U = min(idle_timeout, hint), and needle itself stops reusing at U - margin(U), so
//   OK       iff U - margin(U) <= safe   (i.e. U <= close)
// With no idle_timeout needle learns the close (verdict "adapts"); it still warns when the hint
// or initial_idle_limit it would trust until then is above the real close.
// When no probe saw a close within max-wait W: any T below W is OK; otherwise inconclusive.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/clock.h"

namespace needle::doctor {

// How the upstream ended an idle connection.
enum class CloseKind {
  fin,    // read returned 0: an orderly close
  rst,    // ECONNRESET: an abortive close
  data,   // bytes arrived on the idle connection (e.g. an unsolicited 408): as dead as a close
  none,   // still open when max-wait ran out
  mixed,  // (summary only) the probes disagree
};
std::string_view close_kind_name(CloseKind kind);  // "FIN", "RST", "data", "none", "mixed"

// One probe connection, from the end of its response.
struct ProbeSample {
  std::optional<Millis> idle_close;  // nullopt: still open at max-wait
  CloseKind kind = CloseKind::none;
  std::string stray;  // kind == data: the first bytes, printable
};

// What the probe saw: the input of the judgement, the output of the probe.
struct Measurement {
  std::string url;
  std::string target;  // "host:port" as probed
  std::string path;
  int status = 0;                         // of the probe's response
  std::string server;                     // Server header, "" when absent
  std::optional<Millis> keep_alive_hint;  // "Keep-Alive: timeout=N"
  bool connection_close = false;          // the upstream will not keep the connection
  Millis max_wait{120'000};
  std::vector<ProbeSample> samples;  // one per probe connection that got a response
  unsigned probes_failed = 0;        // connections that failed before a response
};

struct CloseSummary {
  unsigned closed = 0;                     // samples with a close
  unsigned open = 0;                       // samples still open at max-wait
  std::optional<Millis> min, median, max;  // over closed samples
  CloseKind kind = CloseKind::none;        // of the closed samples; none if none closed
};
CloseSummary summarize(const std::vector<ProbeSample>& samples);

// needle's margin: max(margin_min, ratio * limit).
Millis idle_margin(Millis limit, Millis margin_min = Millis(100), double ratio = 0.10);

// A proxy whose idle limit is compared with the upstream's close.
struct ProxyLimit {
  enum class Kind { generic, needle_cluster };
  Kind kind = Kind::generic;
  std::string label;                   // "--proxy-idle-timeout", "cluster app"
  std::optional<Millis> idle_timeout;  // generic: the proxy's idle timeout (required);
                                       // needle: the cluster's idle_timeout, if configured
  // needle_cluster only (the ClusterConfig fields of the same names):
  std::string cluster;
  Millis initial_idle_limit{1500};
  Millis idle_margin_min{100};
  double idle_margin_ratio = 0.10;
  bool learn_idle_timeout = true;
  bool matches_url = false;  // one of the cluster's hosts is the probed host:port
};

enum class VerdictKind {
  ok,            // the proxy stops reusing idle connections before the upstream closes them
  adapts,        // needle with no idle_timeout: it learns the close
  mismatch,      // a request can meet the upstream's idle close: 502s
  inconclusive,  // the proxy keeps connections longer than the probe waited
};
std::string_view verdict_name(VerdictKind kind);  // "ok", "adapts", "mismatch", "inconclusive"

struct Verdict {
  std::string proxy;  // ProxyLimit::label
  ProxyLimit::Kind proxy_kind = ProxyLimit::Kind::generic;
  VerdictKind kind = VerdictKind::ok;
  std::optional<Millis> proxy_limit;  // the idle age up to which the proxy reuses (compared)
  std::string summary;                // one sentence
  std::vector<std::string> fixes;     // plain words; empty when nothing needs fixing
  std::vector<std::string> warnings;  // ok/adapts verdicts that still deserve attention
};

struct Diagnosis {
  CloseSummary close;
  std::optional<Millis> safe_limit;   // close - margin(close); nullopt without a close
  bool hint_exceeds_close = false;    // the hint lies: the upstream closes earlier
  std::vector<std::string> warnings;  // about the upstream itself
  std::vector<std::string> notes;
  std::vector<Verdict> verdicts;  // one per ProxyLimit, same order

  VerdictKind overall() const;  // the worst verdict (ok < adapts < inconclusive < mismatch)
  int exit_status() const;      // 0 ok/adapts/no proxy given, 1 mismatch, 2 inconclusive
};

Diagnosis diagnose(const Measurement& measurement, const std::vector<ProxyLimit>& proxies);

// Human spelling of a measured duration: "750ms", "6.0s", "75s".
std::string human_duration(Millis d);
// The largest round value strictly below `limit`, for advice: whole seconds above 2 s, else
// 100 ms steps; nullopt when nothing positive is below it.
std::optional<Millis> round_down_below(Millis limit);
// The smallest whole-second value strictly above `limit` (100 ms steps below 2 s).
Millis round_up_above(Millis limit);

}  // namespace needle::doctor
