#include "doctor/verdict.h"

#include <algorithm>
#include <cctype>
#include <cmath>

#include <fmt/format.h>

#include "base/duration.h"

namespace needle::doctor {

namespace {

using namespace std::chrono_literals;

// The probe's resolution: closes closer than this to a value are "at" it.
constexpr Millis kTolerance = 50ms;
// A close this soon after a response is not an idle timeout (as IdleTimeoutEstimator).
constexpr Millis kImplausibleClose = 10ms;

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

long long ms(Millis d) {
  return d.count();
}

// The smallest upstream close that keeps a proxy reusing up to `t` safe by the rule
// close - max(100 ms, 10% close) > t.
Millis required_close(Millis t) {
  if (t < 900ms) return t + 101ms;
  return Millis(static_cast<long long>(std::floor(static_cast<double>(ms(t)) / 0.9)) + 1);
}

enum class ServerFamily { node, nginx, gunicorn, uvicorn, apache, unknown };

ServerFamily guess_family(const Measurement& m) {
  const std::string s = lower(m.server);
  if (s.find("nginx") != std::string::npos) return ServerFamily::nginx;
  if (s.find("gunicorn") != std::string::npos) return ServerFamily::gunicorn;
  if (s.find("uvicorn") != std::string::npos) return ServerFamily::uvicorn;
  if (s.find("apache") != std::string::npos) return ServerFamily::apache;
  // Node's http server sends no Server header but does send the Keep-Alive hint.
  if (s.empty() && m.keep_alive_hint) return ServerFamily::node;
  return ServerFamily::unknown;
}

std::string app_knobs(ServerFamily family, Millis value) {
  const long long seconds = (ms(value) + 999) / 1000;
  const std::string node = fmt::format(
      "Node/Express: `server.keepAliveTimeout = {};` (and `server.headersTimeout = {};`, above it)",
      ms(value), ms(value) + 1000);
  const std::string nginx = fmt::format("nginx: `keepalive_timeout {}s;`", seconds);
  const std::string gunicorn = fmt::format("gunicorn: `--keep-alive {}`", seconds);
  const std::string uvicorn = fmt::format("uvicorn: `--timeout-keep-alive {}`", seconds);
  const std::string apache = fmt::format("Apache: `KeepAliveTimeout {}`", seconds);
  const std::string go = fmt::format("Go: `http.Server{{IdleTimeout: {} * time.Second}}`", seconds);
  switch (family) {
    case ServerFamily::node:
      return node;
    case ServerFamily::nginx:
      return nginx;
    case ServerFamily::gunicorn:
      return gunicorn;
    case ServerFamily::uvicorn:
      return uvicorn;
    case ServerFamily::apache:
      return apache;
    case ServerFamily::unknown:
      break;
  }
  return fmt::format("{}; {}; {}; {}; {}; {}", node, nginx, gunicorn, uvicorn, apache, go);
}

// Fix on the application side: its idle close must exceed `above`.
std::string app_side_fix(const Measurement& m, Millis above) {
  const Millis value = round_up_above(above);
  return fmt::format(
      "app side: raise the application's idle keep-alive timeout above {} (e.g. {}); {}",
      human_duration(above), format_duration(value), app_knobs(guess_family(m), value));
}

// The largest round value at most `limit` (for needle's idle_timeout, which names the
// upstream's close itself: needle subtracts its margin).
std::optional<Millis> round_down_at_most(Millis limit) {
  return round_down_below(limit + 1ms);
}

std::string needle_idle_timeout_fix(const std::string& cluster, Millis upstream_close) {
  const std::string section = cluster.empty() ? "[cluster.NAME]" : "[cluster." + cluster + "]";
  const auto value = round_down_at_most(upstream_close);
  if (!value) return fmt::format("needle: `max_idle_per_host = 0` in {} (no reuse)", section);
  return fmt::format(
      "needle: `idle_timeout = \"{}\"` in {} (the upstream's close; needle subtracts its margin), "
      "or leave it unset and needle learns it",
      format_duration(*value), section);
}

// Fix on the proxy side: reuse must stop below `safe`.
std::string proxy_side_fix(Millis safe, Millis upstream_close) {
  const auto value = round_down_below(safe);
  if (!value) {
    return fmt::format(
        "proxy side: the upstream closes idle connections after {}: too soon to reuse them; turn "
        "upstream keep-alive off (nginx: no `keepalive` in the upstream block; HAProxy: "
        "`http-reuse never`; {})",
        human_duration(upstream_close), needle_idle_timeout_fix("", upstream_close));
  }
  const std::string v = format_duration(*value);
  return fmt::format(
      "proxy side: lower the proxy's idle timeout below {} (e.g. {}); nginx: `keepalive_timeout "
      "{};` in the upstream block; HAProxy: `timeout http-keep-alive {}` (and `pool-purge-delay "
      "{}` on the server line); Envoy: `common_http_protocol_options.idle_timeout: {}`; {}",
      human_duration(safe), v, v, v, v, v, needle_idle_timeout_fix("", upstream_close));
}

// The upstream's close a hint-honouring proxy should plan with: the real close, or the hint
// when it is the smaller one.
Millis planning_close(const Measurement& m, Millis close) {
  if (m.keep_alive_hint && *m.keep_alive_hint > 0ms && *m.keep_alive_hint < close) {
    return *m.keep_alive_hint;
  }
  return close;
}

Verdict judge_generic(const Measurement& m, const Diagnosis& d, const ProxyLimit& p) {
  Verdict v;
  v.proxy = p.label;
  v.proxy_kind = p.kind;
  v.proxy_limit = p.idle_timeout;
  if (!p.idle_timeout) {
    v.kind = VerdictKind::inconclusive;
    v.summary = "no idle timeout given for this proxy";
    return v;
  }
  const Millis t = *p.idle_timeout;
  if (m.connection_close) {
    v.summary =
        "the upstream closes the connection after every response (Connection: close): "
        "there is no idle connection to reuse";
    return v;
  }
  if (!d.close.min) {
    if (t < m.max_wait) {
      v.summary = fmt::format(
          "the upstream kept idle connections open for at least {} (max-wait); the proxy's {} is "
          "below that",
          human_duration(m.max_wait), human_duration(t));
      return v;
    }
    v.kind = VerdictKind::inconclusive;
    v.summary = fmt::format(
        "the proxy keeps idle connections up to {}, longer than this probe waited ({}): re-run "
        "with --max-wait {}",
        human_duration(t), human_duration(m.max_wait),
        format_duration(round_up_above(required_close(t))));
    return v;
  }
  const Millis close = *d.close.min;
  const Millis safe = *d.safe_limit;
  if (t < safe) {
    v.summary = fmt::format(
        "the proxy stops reusing idle connections at {}, before the upstream closes them at {} "
        "(safe below {})",
        human_duration(t), human_duration(close), human_duration(safe));
    return v;
  }
  v.kind = VerdictKind::mismatch;
  v.summary = fmt::format(
      "the proxy reuses idle connections for up to {}, but the upstream closes them after {}: a "
      "request sent on a connection idle longer than {} can meet the close and get a 502",
      human_duration(t), human_duration(close), human_duration(safe));
  v.fixes.push_back(proxy_side_fix(safe, planning_close(m, close)));
  v.fixes.push_back(app_side_fix(m, required_close(t)));
  return v;
}

Verdict judge_needle(const Measurement& m, const Diagnosis& d, const ProxyLimit& p) {
  Verdict v;
  v.proxy = p.label;
  v.proxy_kind = p.kind;
  auto margin = [&](Millis x) { return idle_margin(x, p.idle_margin_min, p.idle_margin_ratio); };
  const auto& hint = m.keep_alive_hint;
  const std::string hint_text = hint ? human_duration(*hint) : std::string("none");
  const std::string configured_text =
      p.idle_timeout ? human_duration(*p.idle_timeout) : std::string("none");

  if (m.connection_close) {
    v.summary =
        "the upstream closes the connection after every response (Connection: close): "
        "needle never reuses it";
    return v;
  }

  // The upstream close needle plans with before it has learned anything: min(C, H).
  std::optional<Millis> planned = p.idle_timeout;
  if (hint && (!planned || *hint < *planned)) planned = hint;
  const std::optional<Millis> close = d.close.min;

  if (!p.idle_timeout) {
    v.kind = VerdictKind::adapts;
    const Millis until_learned =
        planned ? std::max(Millis(0), *planned - margin(*planned)) : p.initial_idle_limit;
    v.proxy_limit = until_learned;
    const char* how_learned = planned ? " (from the idle closes its pool sees)"
                              : p.learn_idle_timeout
                                  ? " (a sentinel connection measures the close)"
                                  : " (learn_idle_timeout off: only from idle closes it sees)";
    v.summary = fmt::format(
        "needle adapts: configured none, hint {}, learned at runtime{}; until it has learned, it "
        "reuses idle connections up to {}{}",
        hint_text, how_learned, human_duration(until_learned),
        planned ? " (hint - margin)" : " (initial_idle_limit)");
    if (close && d.safe_limit && until_learned > *d.safe_limit) {
      v.warnings.push_back(fmt::format(
          "until needle has learned it, {} is above this upstream's safe limit {} (close {}): the "
          "first reused connections can meet the close",
          planned ? fmt::format("the hint's {}", human_duration(until_learned))
                  : fmt::format("initial_idle_limit {}", human_duration(until_learned)),
          human_duration(*d.safe_limit), human_duration(*close)));
      v.fixes.push_back(needle_idle_timeout_fix(p.cluster, *close));
    }
    return v;
  }

  const Millis u = *planned;
  const Millis reuse = std::max(Millis(0), u - margin(u));
  v.proxy_limit = reuse;
  const std::string how =
      hint && *hint < *p.idle_timeout
          ? fmt::format("min(idle_timeout {}, hint {}) - margin", configured_text, hint_text)
          : fmt::format("idle_timeout {} - margin", configured_text);
  if (!close) {
    if (u < m.max_wait) {
      v.summary = fmt::format(
          "needle reuses idle connections up to {} ({}); the upstream kept them open for at "
          "least {} (max-wait)",
          human_duration(reuse), how, human_duration(m.max_wait));
      return v;
    }
    v.kind = VerdictKind::inconclusive;
    v.summary = fmt::format(
        "needle plans with an upstream close of {}, longer than this probe waited ({}): re-run "
        "with --max-wait {}",
        human_duration(u), human_duration(m.max_wait), format_duration(round_up_above(u)));
    return v;
  }
  if (u <= *close + kTolerance) {
    v.summary = fmt::format(
        "needle reuses idle connections up to {} ({}), before the upstream closes them at {}",
        human_duration(reuse), how, human_duration(*close));
    if (*p.idle_timeout > *close + kTolerance) {
      v.warnings.push_back(fmt::format(
          "idle_timeout = {} is above the upstream's real close {}: needle is safe only because "
          "it also honours the Keep-Alive hint ({})",
          configured_text, human_duration(*close), hint_text));
      v.fixes.push_back(needle_idle_timeout_fix(p.cluster, planning_close(m, *close)));
    }
    return v;
  }
  v.kind = VerdictKind::mismatch;
  v.summary = fmt::format(
      "needle reuses idle connections up to {} ({}), but the upstream closes them after {}: a "
      "request sent on a connection idle longer than {} can meet the close and get a 502",
      human_duration(reuse), how, human_duration(*close),
      human_duration(std::max(Millis(0), *close - margin(*close))));
  v.fixes.push_back("proxy side: " + needle_idle_timeout_fix(p.cluster, planning_close(m, *close)));
  v.fixes.push_back(app_side_fix(m, u));
  return v;
}

int severity(VerdictKind kind) {
  switch (kind) {
    case VerdictKind::ok:
      return 0;
    case VerdictKind::adapts:
      return 1;
    case VerdictKind::inconclusive:
      return 2;
    case VerdictKind::mismatch:
      return 3;
  }
  return 3;
}

}  // namespace

std::string_view close_kind_name(CloseKind kind) {
  switch (kind) {
    case CloseKind::fin:
      return "FIN";
    case CloseKind::rst:
      return "RST";
    case CloseKind::data:
      return "data";
    case CloseKind::none:
      return "none";
    case CloseKind::mixed:
      return "mixed";
  }
  return "unknown";
}

std::string_view verdict_name(VerdictKind kind) {
  switch (kind) {
    case VerdictKind::ok:
      return "ok";
    case VerdictKind::adapts:
      return "adapts";
    case VerdictKind::mismatch:
      return "mismatch";
    case VerdictKind::inconclusive:
      return "inconclusive";
  }
  return "unknown";
}

CloseSummary summarize(const std::vector<ProbeSample>& samples) {
  CloseSummary s;
  std::vector<Millis> closes;
  for (const ProbeSample& sample : samples) {
    if (!sample.idle_close) {
      ++s.open;
      continue;
    }
    ++s.closed;
    closes.push_back(*sample.idle_close);
    if (s.closed == 1) {
      s.kind = sample.kind;
    } else if (s.kind != sample.kind) {
      s.kind = CloseKind::mixed;
    }
  }
  if (closes.empty()) return s;
  std::sort(closes.begin(), closes.end());
  s.min = closes.front();
  s.max = closes.back();
  const size_t n = closes.size();
  s.median = n % 2 == 1 ? closes[n / 2] : (closes[n / 2 - 1] + closes[n / 2]) / 2;
  return s;
}

Millis idle_margin(Millis limit, Millis margin_min, double ratio) {
  const auto scaled = Millis(static_cast<long long>(std::llround(ratio * ms(limit))));
  return std::max(margin_min, scaled);
}

std::string human_duration(Millis d) {
  const long long v = ms(d);
  if (v % 1000 == 0 && v != 0) return fmt::format("{}s", v / 1000);
  if (v < 1000) return fmt::format("{}ms", v);
  std::string frac = fmt::format("{:03}", v % 1000);
  while (!frac.empty() && frac.back() == '0') frac.pop_back();
  return fmt::format("{}.{}s", v / 1000, frac);
}

std::optional<Millis> round_down_below(Millis limit) {
  const long long v = ms(limit);
  if (v <= 0) return std::nullopt;
  const long long seconds = (v - 1) / 1000 * 1000;
  if (seconds >= 2000) return Millis(seconds);
  const long long tenths = (v - 1) / 100 * 100;
  if (tenths <= 0) return std::nullopt;
  return Millis(tenths);
}

Millis round_up_above(Millis limit) {
  const long long v = std::max(0LL, ms(limit));
  if (v >= 2000) return Millis((v / 1000 + 1) * 1000);
  return Millis((v / 100 + 1) * 100);
}

VerdictKind Diagnosis::overall() const {
  VerdictKind worst = VerdictKind::ok;
  for (const Verdict& v : verdicts) {
    if (severity(v.kind) > severity(worst)) worst = v.kind;
  }
  return worst;
}

int Diagnosis::exit_status() const {
  switch (overall()) {
    case VerdictKind::ok:
    case VerdictKind::adapts:
      return 0;
    case VerdictKind::mismatch:
      return 1;
    case VerdictKind::inconclusive:
      return 2;
  }
  return 2;
}

Diagnosis diagnose(const Measurement& m, const std::vector<ProxyLimit>& proxies) {
  Diagnosis d;
  d.close = summarize(m.samples);
  if (d.close.min) {
    d.safe_limit = std::max(Millis(0), *d.close.min - idle_margin(*d.close.min));
  }

  if (m.connection_close) {
    d.notes.push_back(
        "the upstream answered with Connection: close: it does not keep connections alive, so "
        "no proxy can race its idle close");
  } else if (d.close.min && *d.close.min < kImplausibleClose) {
    d.warnings.push_back(fmt::format(
        "the upstream closed the connection {} after the response without saying Connection: "
        "close: that is not an idle timeout; proxies will treat every reuse as a failure",
        human_duration(*d.close.min)));
  }

  const auto& hint = m.keep_alive_hint;
  if (hint && d.close.min && *hint > *d.close.min + kTolerance) {
    d.hint_exceeds_close = true;
    d.warnings.push_back(fmt::format(
        "the Keep-Alive hint lies: it promises {} but the upstream closes idle connections after "
        "{}; clients and proxies that trust the hint (needle does, until it learns) reuse "
        "connections the upstream is about to close",
        human_duration(*hint), human_duration(*d.close.min)));
  } else if (hint && d.close.min && *d.close.min > *hint + kTolerance) {
    d.notes.push_back(fmt::format(
        "the Keep-Alive hint ({}) is below the real close ({}): hint-honouring proxies stop "
        "early (Node adds about 1 s to keepAliveTimeout before it closes)",
        human_duration(*hint), human_duration(*d.close.min)));
  } else if (hint && !d.close.min && !m.connection_close && *hint < m.max_wait) {
    d.notes.push_back(fmt::format("the Keep-Alive hint says {}, yet no probe saw a close within {}",
                                  human_duration(*hint), human_duration(m.max_wait)));
  }

  if (d.close.closed > 0 && d.close.open > 0) {
    d.notes.push_back(fmt::format(
        "{} of {} probe connections were still open at max-wait; the earliest close is used",
        d.close.open, d.close.open + d.close.closed));
  }
  if (d.close.min && d.close.max &&
      *d.close.max - *d.close.min > std::max(kTolerance, *d.close.min / 10)) {
    d.notes.push_back(fmt::format(
        "the probes disagree (closes from {} to {}): the upstream's idle timer is coarse, or "
        "several processes with different timeouts serve it; the earliest close is used",
        human_duration(*d.close.min), human_duration(*d.close.max)));
  }
  if (d.close.kind == CloseKind::data || d.close.kind == CloseKind::mixed) {
    for (const ProbeSample& s : m.samples) {
      if (s.kind != CloseKind::data) continue;
      d.warnings.push_back(fmt::format(
          "the upstream sent bytes on an idle connection (\"{}\"): a proxy that reuses it reads "
          "them as the answer to its next request",
          s.stray));
      break;
    }
  }
  if (m.probes_failed > 0) {
    d.notes.push_back(
        fmt::format("{} probe connection(s) failed before a response; the others "
                    "were measured",
                    m.probes_failed));
  }

  for (const ProxyLimit& p : proxies) {
    d.verdicts.push_back(p.kind == ProxyLimit::Kind::generic ? judge_generic(m, d, p)
                                                             : judge_needle(m, d, p));
  }
  return d;
}

}  // namespace needle::doctor
