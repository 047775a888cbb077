#include "doctor/report.h"

#include <cctype>

#include <fmt/format.h>

#include "base/json_writer.h"

namespace needle::doctor {

namespace {

std::string upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

std::string ms_and_s(Millis d) {
  return fmt::format("{} ms ({:.3f} s)", d.count(), static_cast<double>(d.count()) / 1000.0);
}

// A tiny JSON object/array builder over base/json_writer.h: enough for one flat report.
class JsonOut {
 public:
  JsonOut& begin_object() { return open('{'); }
  JsonOut& end_object() { return close('}'); }
  JsonOut& begin_array() { return open('['); }
  JsonOut& end_array() { return close(']'); }
  JsonOut& key(std::string_view k) {
    comma();
    json::append_string(out_, k);
    out_ += ':';
    after_key_ = true;
    return *this;
  }
  JsonOut& str(std::string_view v) {
    comma();
    json::append_string(out_, v);
    return *this;
  }
  JsonOut& num(long long v) { return raw(fmt::format("{}", v)); }
  JsonOut& boolean(bool v) { return raw(v ? "true" : "false"); }
  JsonOut& null() { return raw("null"); }
  JsonOut& opt_ms(const std::optional<Millis>& v) { return v ? num(v->count()) : null(); }
  JsonOut& opt_str(std::string_view v) { return v.empty() ? null() : str(v); }
  JsonOut& strings(const std::vector<std::string>& items) {
    begin_array();
    for (const auto& s : items) str(s);
    return end_array();
  }
  std::string take() { return std::move(out_); }

 private:
  JsonOut& open(char c) {
    comma();
    out_ += c;
    first_ = true;
    return *this;
  }
  JsonOut& close(char c) {
    out_ += c;
    first_ = false;
    return *this;
  }
  JsonOut& raw(std::string_view v) {
    comma();
    out_ += v;
    return *this;
  }
  void comma() {
    if (after_key_) {
      after_key_ = false;
      return;
    }
    if (!first_ && !out_.empty()) out_ += ',';
    first_ = false;
  }

  std::string out_;
  bool first_ = true;
  bool after_key_ = false;
};

}  // namespace

std::string format_text(const Measurement& m, const Diagnosis& d,
                        const std::vector<std::string>& context) {
  std::string out;
  auto line = [&](std::string_view label, const std::string& value) {
    out += fmt::format("{:<16} {}\n", label, value);
  };
  out += fmt::format("needle doctor: {}\n", m.url);
  line("probe", fmt::format("GET {} on {} -> HTTP {}, {} connection(s)", m.path, m.target, m.status,
                            m.samples.size()));
  line("server", m.server.empty() ? std::string("(no Server header)") : m.server);
  line("keep-alive hint", m.keep_alive_hint
                              ? fmt::format("timeout={} ({})", m.keep_alive_hint->count() / 1000,
                                            human_duration(*m.keep_alive_hint))
                              : std::string("none"));
  if (m.connection_close) line("connection", "close (the upstream does not keep it alive)");

  const CloseSummary& c = d.close;
  if (c.min) {
    line("idle close", fmt::format("{} by {} (min of {} closed)", ms_and_s(*c.min),
                                   close_kind_name(c.kind), c.closed));
    line("", fmt::format("median {} ms, max {} ms{}", c.median->count(), c.max->count(),
                         c.open > 0 ? fmt::format("; {} still open at max-wait", c.open) : ""));
    line("safe limit",
         fmt::format("a proxy must stop reusing idle connections before {} "
                     "(close - margin {})",
                     human_duration(*d.safe_limit), human_duration(*c.min - *d.safe_limit)));
  } else if (!m.connection_close) {
    line("idle close",
         fmt::format("no idle close within max-wait (>= {})", human_duration(m.max_wait)));
  }

  for (const std::string& note : context) out += fmt::format("{}\n", note);
  if (d.verdicts.empty()) {
    out += "\nno proxy idle timeout given (--proxy-idle-timeout or -c): nothing compared\n";
  }
  for (const Verdict& v : d.verdicts) {
    out += fmt::format("\nvs {}: {}\n", v.proxy, upper(verdict_name(v.kind)));
    out += fmt::format("  {}\n", v.summary);
    for (const auto& w : v.warnings) out += fmt::format("  warning: {}\n", w);
    for (const auto& f : v.fixes) out += fmt::format("  fix: {}\n", f);
  }
  if (!d.warnings.empty()) {
    out += "\nwarnings:\n";
    for (const auto& w : d.warnings) out += fmt::format("  - {}\n", w);
  }
  if (!d.notes.empty()) {
    out += "\nnotes:\n";
    for (const auto& n : d.notes) out += fmt::format("  - {}\n", n);
  }
  out += fmt::format("\nresult: {} (exit {})\n", upper(verdict_name(d.overall())), d.exit_status());
  return out;
}

std::string format_json(const Measurement& m, const Diagnosis& d,
                        const std::vector<std::string>& context) {
  JsonOut j;
  j.begin_object();
  j.key("url").str(m.url);
  j.key("target").str(m.target);
  j.key("path").str(m.path);
  j.key("status").num(m.status);
  j.key("server").opt_str(m.server);
  j.key("keep_alive_hint_ms").opt_ms(m.keep_alive_hint);
  j.key("connection_close").boolean(m.connection_close);
  j.key("probes").num(static_cast<long long>(m.samples.size()));
  j.key("probes_failed").num(m.probes_failed);
  j.key("max_wait_ms").num(m.max_wait.count());
  const CloseSummary& c = d.close;
  j.key("idle_close").begin_object();
  j.key("closed").num(c.closed);
  j.key("open").num(c.open);
  j.key("min_ms").opt_ms(c.min);
  j.key("median_ms").opt_ms(c.median);
  j.key("max_ms").opt_ms(c.max);
  j.key("kind").str(close_kind_name(c.kind));
  j.key("within_max_wait").boolean(c.closed > 0);
  j.end_object();
  j.key("samples").begin_array();
  for (const ProbeSample& s : m.samples) {
    j.begin_object();
    j.key("idle_close_ms").opt_ms(s.idle_close);
    j.key("kind").str(close_kind_name(s.kind));
    if (!s.stray.empty()) j.key("stray").str(s.stray);
    j.end_object();
  }
  j.end_array();
  j.key("safe_limit_ms").opt_ms(d.safe_limit);
  j.key("hint_exceeds_close").boolean(d.hint_exceeds_close);
  j.key("comparisons").begin_array();
  for (const Verdict& v : d.verdicts) {
    j.begin_object();
    j.key("proxy").str(v.proxy);
    j.key("proxy_kind").str(v.proxy_kind == ProxyLimit::Kind::generic ? "generic" : "needle");
    j.key("proxy_limit_ms").opt_ms(v.proxy_limit);
    j.key("verdict").str(verdict_name(v.kind));
    j.key("summary").str(v.summary);
    j.key("fixes").strings(v.fixes);
    j.key("warnings").strings(v.warnings);
    j.end_object();
  }
  j.end_array();
  j.key("context").strings(context);
  j.key("warnings").strings(d.warnings);
  j.key("notes").strings(d.notes);
  j.key("verdict").str(verdict_name(d.overall()));
  j.key("exit_status").num(d.exit_status());
  j.end_object();
  return j.take() + "\n";
}

std::string format_error_json(const std::string& url, const std::string& error) {
  JsonOut j;
  j.begin_object();
  j.key("url").str(url);
  j.key("verdict").str("error");
  j.key("error").str(error);
  j.key("exit_status").num(2);
  j.end_object();
  return j.take() + "\n";
}

}  // namespace needle::doctor
