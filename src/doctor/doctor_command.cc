#include "doctor/doctor_command.h"

#include <cctype>

#include <fmt/format.h>

#include "base/duration.h"
#include "config/config.h"
#include "doctor/chain.h"
#include "doctor/idle_probe.h"
#include "doctor/report.h"
#include "doctor/target_url.h"
#include "http/message.h"

namespace needle::doctor {

namespace {

CLI::Validator duration_validator() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        if (parse_duration(text)) return {};
        return fmt::format("expected a duration like \"75s\" or \"250ms\", got \"{}\"", text);
      },
      "DURATION");
}

CLI::Validator url_validator() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        auto parsed = parse_target_url(text);
        return parsed.url ? std::string() : parsed.error;
      },
      "URL");
}

CLI::Validator header_validator() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        const size_t colon = text.find(':');
        if (colon == std::string::npos || colon == 0) return "expected \"Name: value\"";
        for (size_t i = 0; i < colon; ++i) {
          const unsigned char c = static_cast<unsigned char>(text[i]);
          if (c <= 0x20 || c >= 0x7f) return "invalid header name";
        }
        for (unsigned char c : text) {
          if (c == '\r' || c == '\n') return "header must be one line";
        }
        return {};
      },
      "HEADER");
}

void add_duration(CLI::App& app, const std::string& name, std::optional<Millis>& into,
                  const std::string& help) {
  app.add_option_function<std::string>(
         name, [&into](const std::string& text) { into = parse_duration(text); }, help)
      ->check(duration_validator());
}

void add_duration(CLI::App& app, const std::string& name, Millis& into, const std::string& help,
                  const std::string& default_text) {
  app.add_option_function<std::string>(
         name, [&into](const std::string& text) { into = *parse_duration(text); }, help)
      ->check(duration_validator())
      ->default_str(default_text);
}

bool host_matches(const config::HostPort& hp, const TargetUrl& url) {
  return hp.port == url.port && http::iequals(hp.host, url.host);
}

ProxyLimit cluster_limit(const config::ClusterConfig& c, const TargetUrl& url) {
  ProxyLimit p;
  p.kind = ProxyLimit::Kind::needle_cluster;
  p.label = "cluster " + c.name;
  p.cluster = c.name;
  p.idle_timeout = c.idle_timeout;
  p.initial_idle_limit = c.initial_idle_limit;
  p.idle_margin_min = c.idle_margin_min;
  p.idle_margin_ratio = c.idle_margin_ratio;
  p.learn_idle_timeout = c.learn_idle_timeout;
  for (const auto& hp : c.hosts) p.matches_url = p.matches_url || host_matches(hp, url);
  return p;
}

std::string join_names(const std::vector<ProxyLimit>& limits) {
  std::string out;
  for (const auto& p : limits) out += (out.empty() ? "" : ", ") + p.cluster;
  return out;
}

// The clusters of the config file to compare, or an error.
std::string clusters_from_config(const DoctorOptions& o, const TargetUrl& url,
                                 std::vector<ProxyLimit>& limits,
                                 std::vector<std::string>& context) {
  auto loaded = config::load_config_file(o.config_path);
  if (!loaded.config) {
    std::string error =
        fmt::format("{}: {} configuration error(s)", o.config_path, loaded.errors.size());
    for (const auto& e : loaded.errors) error += "\n  " + e.to_string();
    return error;
  }
  const config::Config& cfg = *loaded.config;
  if (!o.cluster.empty()) {
    const config::ClusterConfig* c = cfg.find_cluster(o.cluster);
    if (!c) return fmt::format("{}: no cluster named \"{}\"", o.config_path, o.cluster);
    limits.push_back(cluster_limit(*c, url));
    context.push_back(
        fmt::format("config {}: comparing cluster {} (--cluster)", o.config_path, o.cluster));
    return {};
  }
  std::vector<ProxyLimit> matching, all;
  for (const auto& c : cfg.clusters) {
    all.push_back(cluster_limit(c, url));
    if (all.back().matches_url) matching.push_back(all.back());
  }
  if (all.empty()) return fmt::format("{}: no clusters to compare", o.config_path);
  if (!matching.empty()) {
    const size_t skipped = all.size() - matching.size();
    context.push_back(fmt::format("config {}: comparing cluster(s) {} (listing {}){}",
                                  o.config_path, join_names(matching), url.authority(),
                                  skipped ? fmt::format("; {} other(s) skipped", skipped) : ""));
    limits.insert(limits.end(), matching.begin(), matching.end());
  } else {
    context.push_back(fmt::format("config {}: no cluster lists {}; comparing all: {}",
                                  o.config_path, url.authority(), join_names(all)));
    limits.insert(limits.end(), all.begin(), all.end());
  }
  return {};
}

std::pair<std::string, std::string> split_header(const std::string& text) {
  const size_t colon = text.find(':');
  std::string name = text.substr(0, colon);
  std::string value = text.substr(colon + 1);
  const size_t b = value.find_first_not_of(" \t");
  const size_t e = value.find_last_not_of(" \t");
  value = b == std::string::npos ? std::string() : value.substr(b, e - b + 1);
  return {name, value};
}

}  // namespace

void add_doctor_options(CLI::App& sub, DoctorOptions& o) {
  // Required unless --chain is given (run_doctor checks).
  sub.add_option("url", o.url, "upstream to probe: http://HOST:PORT/PATH (plain HTTP)")
      ->check(url_validator());
  sub.add_option_function<std::string>(
         "--proxy-idle-timeout",
         [&o](const std::string& text) {
           o.proxy_idle_timeout_text = text;
           o.proxy_idle_timeout = parse_duration(text);  // nullopt for a --chain list
         },
         "idle timeout of the proxy in front (nginx keepalive_timeout, ALB idle timeout, "
         "...), e.g. 75s; with --chain, one per front hop: 60s,75s (\"-\": unknown)")
      ->check(CLI::Validator(
          [](std::string& text) -> std::string {
            if (parse_duration(text) || parse_idle_timeout_list(text)) return {};
            return fmt::format("expected a duration like \"75s\" (or, with --chain, a list "
                               "like \"60s,75s\"), got \"{}\"",
                               text);
          },
          "DURATION[,DURATION...]"));
  sub.add_option("--chain", o.chain,
                 "probe a chain of hops, front first: --chain http://gateway/ "
                 "http://needle:8080/ http://app:3000/ (see docs/doctor.md)")
      ->expected(2, 16)
      ->check(url_validator());
  sub.add_option("-c,--config", o.config_path, "needle config: compare each cluster's idle limit");
  sub.add_option("--cluster", o.cluster, "with -c: compare only this cluster");
  sub.add_flag("--json", o.json, "print one JSON object");
  add_duration(sub, "--max-wait", o.max_wait,
               "give up waiting for the upstream's idle close after this long", "120s");
  sub.add_option("--probes", o.probes, "parallel probe connections")
      ->check(CLI::Range(1u, 64u))
      ->capture_default_str();
  add_duration(sub, "--connect-timeout", o.connect_timeout, "connect timeout per probe", "5s");
  add_duration(sub, "--response-timeout", o.response_timeout, "time for the probe's whole response",
               "10s");
  sub.add_option("-H,--header", o.headers, "extra request header \"Name: value\" (repeatable)")
      ->allow_extra_args(false)  // one value per -H: the URL after it stays positional
      ->check(header_validator());
}

DoctorRun diagnose_target(const DoctorOptions& o) {
  DoctorRun run;
  auto parsed = parse_target_url(o.url);
  if (!parsed.url) {
    run.error = fmt::format("invalid URL \"{}\": {}", o.url, parsed.error);
    return run;
  }
  const TargetUrl& url = *parsed.url;
  if (o.max_wait <= Millis(0)) {
    run.error = "--max-wait must be positive";
    return run;
  }

  if (!o.proxy_idle_timeout_text.empty() && !o.proxy_idle_timeout) {
    run.error = "--proxy-idle-timeout takes a list only with --chain";
    return run;
  }
  std::vector<ProxyLimit> limits;
  if (o.proxy_idle_timeout) {
    ProxyLimit p;
    p.label = fmt::format("--proxy-idle-timeout {}", human_duration(*o.proxy_idle_timeout));
    p.idle_timeout = o.proxy_idle_timeout;
    limits.push_back(p);
  }
  if (!o.config_path.empty()) {
    run.error = clusters_from_config(o, url, limits, run.context);
    if (!run.error.empty()) return run;
  } else if (!o.cluster.empty()) {
    run.error = "--cluster needs -c FILE";
    return run;
  }

  ProbeOptions probe;
  probe.url = url;
  probe.connections = o.probes;
  probe.max_wait = o.max_wait;
  probe.connect_timeout = o.connect_timeout;
  probe.response_timeout = o.response_timeout;
  for (const auto& h : o.headers) probe.headers.push_back(split_header(h));
  ProbeOutcome outcome = run_idle_probe(probe);
  if (!outcome.measurement) {
    run.error = outcome.error;
    return run;
  }
  outcome.measurement->url = o.url;
  run.measurement = std::move(outcome.measurement);
  run.diagnosis = diagnose(*run.measurement, limits);
  run.exit_status = run.diagnosis->exit_status();
  return run;
}

int run_doctor(const DoctorOptions& o, std::FILE* out, std::FILE* err) {
  if (!o.chain.empty()) return run_chain(o, out, err);
  if (o.url.empty()) {
    std::fprintf(err, "needle doctor: give a URL to probe, or --chain URL URL...\n");
    return 2;
  }
  if (!o.json) {
    std::fprintf(err,
                 "needle doctor: probing %s with %u connection(s); waiting up to %s for the "
                 "upstream's idle close\n",
                 o.url.c_str(), o.probes, human_duration(o.max_wait).c_str());
  }
  const DoctorRun run = diagnose_target(o);
  if (!run.error.empty()) {
    if (o.json) {
      const std::string text = format_error_json(o.url, run.error);
      std::fwrite(text.data(), 1, text.size(), out);
    }
    std::fprintf(err, "needle doctor: %s\n", run.error.c_str());
    return 2;
  }
  const std::string text = o.json ? format_json(*run.measurement, *run.diagnosis, run.context)
                                  : format_text(*run.measurement, *run.diagnosis, run.context);
  std::fwrite(text.data(), 1, text.size(), out);
  std::fflush(out);
  return run.exit_status;
}

int run_doctor(const DoctorOptions& o) {
  return run_doctor(o, stdout, stderr);
}

}  // namespace needle::doctor
