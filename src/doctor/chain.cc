#include "doctor/chain.h"

#include <algorithm>
#include <cmath>
#include <thread>

#include <fmt/format.h>

#include "base/duration.h"
#include "config/config.h"
#include "doctor/doctor_command.h"
#include "doctor/idle_probe.h"
#include "doctor/target_url.h"
#include "http/message.h"

namespace needle::doctor {
namespace {

using namespace std::chrono_literals;

bool same_host(const std::string& a, const std::string& b) {
  return http::iequals(a, b) ||
         ((a == "localhost" || a == "127.0.0.1") && (b == "localhost" || b == "127.0.0.1"));
}

// Whether `url` reaches one of needle's listeners (a wildcard listener matches any host).
bool is_needle_listener(const config::Config& cfg, const TargetUrl& url) {
  for (const auto& l : cfg.listeners) {
    if (l.address.port != url.port) continue;
    if (l.address.host == "0.0.0.0" || l.address.host == "::" ||
        same_host(l.address.host, url.host)) {
      return true;
    }
  }
  return false;
}

// needle's pool toward `next`: the cluster listing it, else the first cluster.
ProxyLimit needle_pool_limit(const config::Config& cfg, const TargetUrl& next, std::string& source,
                             const std::string& config_path) {
  const config::ClusterConfig* chosen = cfg.clusters.empty() ? nullptr : &cfg.clusters.front();
  bool listed = false;
  for (const auto& c : cfg.clusters) {
    for (const auto& hp : c.hosts) {
      if (hp.port == next.port && same_host(hp.host, next.host)) {
        chosen = &c;
        listed = true;
      }
    }
    if (listed) break;
  }
  ProxyLimit p;
  p.kind = ProxyLimit::Kind::needle_cluster;
  p.cluster = chosen->name;
  p.label = "cluster " + chosen->name;
  p.idle_timeout = chosen->idle_timeout;
  p.initial_idle_limit = chosen->initial_idle_limit;
  p.idle_margin_min = chosen->idle_margin_min;
  p.idle_margin_ratio = chosen->idle_margin_ratio;
  p.learn_idle_timeout = chosen->learn_idle_timeout;
  p.matches_url = listed;
  source = fmt::format("config {}: cluster {}{}", config_path, chosen->name,
                       listed ? "" : " (no cluster lists the next hop: the first one)");
  return p;
}

// The smallest back-hop close that keeps a front hop reusing up to `t` safe
// (close - max(100 ms, 10% close) > t; verdict.h).
Millis close_needed_above(Millis t) {
  if (t < 900ms) return t + 101ms;
  return Millis(static_cast<long long>(std::floor(static_cast<double>(t.count()) / 0.9)) + 1);
}

// A needle back hop's own knob replaces the generic application advice.
std::vector<std::string> pair_fixes(const ChainHop& back, const Verdict& verdict) {
  std::vector<std::string> fixes;
  for (const auto& fix : verdict.fixes) {
    if (back.is_needle && fix.rfind("app side:", 0) == 0) continue;
    fixes.push_back(fix);
  }
  if (back.is_needle && verdict.kind == VerdictKind::mismatch && verdict.proxy_limit) {
    const Millis needed = round_up_above(close_needed_above(*verdict.proxy_limit));
    fixes.push_back(fmt::format(
        "needle side: raise [server] client_idle_timeout above {} (e.g. \"{}\"); needle counts "
        "the requests that meet its idle close in needle_downstream_close_races_total",
        human_duration(*verdict.proxy_limit), format_duration(needed)));
  }
  return fixes;
}

std::string close_text(const ChainHop& hop) {
  if (!hop.measurement) return "probe failed";
  const CloseSummary close = summarize(hop.measurement->samples);
  if (hop.measurement->connection_close) return "Connection: close";
  if (!close.min) return "none within " + human_duration(hop.measurement->max_wait);
  return fmt::format("{} ({})", human_duration(*close.min), close_kind_name(close.kind));
}

std::string pool_text(const ChainHop& hop, bool last) {
  if (last) return "-";
  if (!hop.pool) return "unknown";
  if (hop.pool->kind == ProxyLimit::Kind::needle_cluster) {
    return hop.pool->idle_timeout ? "idle_timeout " + human_duration(*hop.pool->idle_timeout)
                                  : std::string("learned");
  }
  return human_duration(*hop.pool->idle_timeout);
}

std::string pad(std::string text, size_t width) {
  if (text.size() < width) text.append(width - text.size(), ' ');
  return text;
}

}  // namespace

std::optional<std::vector<std::optional<Millis>>> parse_idle_timeout_list(const std::string& text) {
  std::vector<std::optional<Millis>> out;
  size_t start = 0;
  for (;;) {
    const size_t comma = text.find(',', start);
    std::string item = text.substr(start, comma == std::string::npos ? comma : comma - start);
    item.erase(0, item.find_first_not_of(' '));
    item.erase(item.find_last_not_of(' ') + 1);
    if (item == "-") {
      out.emplace_back();
    } else if (auto d = parse_duration(item)) {
      out.emplace_back(*d);
    } else {
      return std::nullopt;
    }
    if (comma == std::string::npos) return out;
    start = comma + 1;
  }
}

ChainRun diagnose_chain(const DoctorOptions& o) {
  ChainRun run;
  std::vector<TargetUrl> urls;
  for (const auto& text : o.chain) {
    auto parsed = parse_target_url(text);
    if (!parsed.url) {
      run.error = fmt::format("invalid URL \"{}\": {}", text, parsed.error);
      return run;
    }
    urls.push_back(*parsed.url);
    run.hops.emplace_back().url = text;
  }
  if (urls.size() < 2) {
    run.error = "--chain needs at least two URLs (the front hop first)";
    return run;
  }
  // Pool limits: the list first, then needle's config for its own hop where the list says "-".
  if (!o.proxy_idle_timeout_text.empty()) {
    auto list = parse_idle_timeout_list(o.proxy_idle_timeout_text);
    if (!list || list->size() != urls.size() - 1) {
      run.error = fmt::format(
          "--proxy-idle-timeout with --chain takes one value per front hop ({}), \"-\" for "
          "unknown",
          urls.size() - 1);
      return run;
    }
    for (size_t i = 0; i < list->size(); ++i) {
      if (!(*list)[i]) continue;
      ProxyLimit p;
      p.label = fmt::format("hop {}", i + 1);
      p.idle_timeout = (*list)[i];
      run.hops[i].pool = p;
      run.hops[i].pool_source = "--proxy-idle-timeout";
    }
  }
  if (!o.config_path.empty()) {
    auto loaded = config::load_config_file(o.config_path);
    if (!loaded.config) {
      run.error = fmt::format("{}: {} configuration error(s)", o.config_path, loaded.errors.size());
      for (const auto& e : loaded.errors) run.error += "\n  " + e.to_string();
      return run;
    }
    for (size_t i = 0; i < urls.size(); ++i) {
      if (!is_needle_listener(*loaded.config, urls[i])) continue;
      run.hops[i].is_needle = true;
      if (i + 1 < urls.size() && !run.hops[i].pool && !loaded.config->clusters.empty()) {
        run.hops[i].pool =
            needle_pool_limit(*loaded.config, urls[i + 1], run.hops[i].pool_source, o.config_path);
      }
    }
  }

  // Every hop at once: the chain takes as long as its slowest close.
  std::vector<ProbeOutcome> outcomes(urls.size());
  std::vector<std::thread> probes;
  for (size_t i = 0; i < urls.size(); ++i) {
    probes.emplace_back([&, i] {
      ProbeOptions probe;
      probe.url = urls[i];
      probe.connections = o.probes;
      probe.max_wait = o.max_wait;
      probe.connect_timeout = o.connect_timeout;
      probe.response_timeout = o.response_timeout;
      outcomes[i] = run_idle_probe(probe);
    });
  }
  for (auto& t : probes) t.join();
  for (size_t i = 0; i < urls.size(); ++i) {
    if (outcomes[i].measurement) {
      run.hops[i].measurement = std::move(outcomes[i].measurement);
      run.hops[i].measurement->url = run.hops[i].url;
    } else {
      run.hops[i].probe_error = outcomes[i].error;
    }
  }

  bool mismatch = false, unsure = false;
  for (size_t i = 0; i + 1 < run.hops.size(); ++i) {
    const ChainHop& front = run.hops[i];
    const ChainHop& back = run.hops[i + 1];
    ChainPair pair;
    pair.front = i;
    if (!back.measurement) {
      pair.problem = "hop " + std::to_string(i + 2) + "'s probe failed: " + back.probe_error;
    } else if (!front.pool) {
      pair.problem = fmt::format(
          "hop {}'s pool idle timeout is unknown: give it in --proxy-idle-timeout (position {}), "
          "or -c needle.toml if hop {} is needle",
          i + 1, i + 1, i + 1);
    } else {
      pair.diagnosis = diagnose(*back.measurement, {*front.pool});
      pair.fixes = pair_fixes(back, pair.diagnosis->verdicts.front());
      const VerdictKind kind = pair.diagnosis->verdicts.front().kind;
      mismatch = mismatch || kind == VerdictKind::mismatch;
      unsure = unsure || kind == VerdictKind::inconclusive;
    }
    unsure = unsure || !pair.problem.empty();
    run.pairs.push_back(std::move(pair));
  }
  run.exit_status = mismatch ? 1 : unsure ? 2 : 0;
  return run;
}

std::string format_chain_text(const ChainRun& run) {
  std::string out = fmt::format("needle doctor --chain: {} hops, front first\n\n", run.hops.size());
  out += pad("hop", 5) + pad("url", 34) + pad("idle close", 22) + pad("keep-alive hint", 17) +
         "pool idle timeout to the next hop\n";
  for (size_t i = 0; i < run.hops.size(); ++i) {
    const ChainHop& hop = run.hops[i];
    const bool last = i + 1 == run.hops.size();
    std::string hint = "-";
    if (hop.measurement && hop.measurement->keep_alive_hint) {
      hint = "timeout=" + std::to_string(hop.measurement->keep_alive_hint->count() / 1000);
    }
    std::string pool = pool_text(hop, last);
    if (!last && hop.pool) pool += " (" + hop.pool_source + ")";
    out += pad(std::to_string(i + 1) + (hop.is_needle ? "*" : ""), 5) + pad(hop.url, 34) +
           pad(close_text(hop), 22) + pad(hint, 17) + pool + "\n";
  }
  if (std::any_of(run.hops.begin(), run.hops.end(),
                  [](const ChainHop& h) { return h.is_needle; })) {
    out += "(* needle, from -c)\n";
  }
  out += "\n" + pad("pair", 9) + pad("front reuses up to", 20) + pad("back closes at", 16) +
         pad("safe limit", 12) + "verdict\n";
  for (const ChainPair& pair : run.pairs) {
    const std::string name = fmt::format("{} -> {}", pair.front + 1, pair.front + 2);
    if (!pair.diagnosis) {
      out += pad(name, 9) + pad("?", 20) + pad("?", 16) + pad("?", 12) + "unknown\n";
      continue;
    }
    const Diagnosis& d = *pair.diagnosis;
    const Verdict& v = d.verdicts.front();
    out += pad(name, 9) +
           pad(v.proxy_limit ? human_duration(*v.proxy_limit) : std::string("-"), 20) +
           pad(d.close.min ? human_duration(*d.close.min) : std::string("none"), 16) +
           pad(d.safe_limit ? human_duration(*d.safe_limit) : std::string("-"), 12) +
           std::string(v.kind == VerdictKind::mismatch ? "MISMATCH" : verdict_name(v.kind)) + "\n";
  }
  for (const ChainPair& pair : run.pairs) {
    out += fmt::format("\nhop {} -> hop {}: ", pair.front + 1, pair.front + 2);
    if (!pair.diagnosis) {
      out += pair.problem + "\n";
      continue;
    }
    const Verdict& v = pair.diagnosis->verdicts.front();
    out += v.summary + "\n";
    for (const auto& fix : pair.fixes) out += "  fix: " + fix + "\n";
    for (const auto& warning : v.warnings) out += "  warning: " + warning + "\n";
  }
  for (size_t i = 0; i < run.hops.size(); ++i) {
    if (!run.hops[i].probe_error.empty()) {
      out += fmt::format("\nhop {}: probe failed: {}\n", i + 1, run.hops[i].probe_error);
    }
  }
  const char* result = run.exit_status == 1 ? "MISMATCH: a hop closes idle connections before "
                                              "the one in front of it stops reusing them"
                       : run.exit_status == 2
                           ? "INCOMPLETE: not every pair could be judged"
                           : "OK: every hop stops reusing before the next closes";
  out += fmt::format("\nresult: {} (exit {})\n", result, run.exit_status);
  return out;
}

int run_chain(const DoctorOptions& o, std::FILE* out, std::FILE* err) {
  if (o.json) {
    std::fprintf(err, "needle doctor: --json is not supported with --chain\n");
    return 2;
  }
  std::fprintf(err,
               "needle doctor: probing %zu hops in parallel with %u connection(s) each; waiting "
               "up to %s for their idle closes\n",
               o.chain.size(), o.probes, human_duration(o.max_wait).c_str());
  const ChainRun run = diagnose_chain(o);
  if (!run.error.empty()) {
    std::fprintf(err, "needle doctor: %s\n", run.error.c_str());
    return 2;
  }
  const std::string text = format_chain_text(run);
  std::fwrite(text.data(), 1, text.size(), out);
  std::fflush(out);
  return run.exit_status;
}

}  // namespace needle::doctor
