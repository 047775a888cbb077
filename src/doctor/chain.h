#pragma once
// `needle doctor --chain URL URL [URL...]`: a request path of several hops (a gateway, needle,
// the application), each hop pooling idle keep-alive connections to the next. For every hop
// pair, the front hop must stop reusing an idle connection before the back hop closes it, or a
// request meets the close and the front hop answers 502 (DESIGN.md "The race-free pool"; needle
// as the back hop: docs/architecture.md "Downstream close races").
//
// Each hop's idle close is measured from the outside, all hops in parallel (idle_probe.h: the
// URL's listener as the front hop's pool reaches it). Each front hop's pool idle timeout comes
// from `--proxy-idle-timeout 60s,75s` (one per front hop, in order; "-" for unknown) or, for
// the hop that is needle (its URL's port is a listener of `-c needle.toml`), from the config's
// cluster that lists the next hop (verdict.h "needle clusters"). Each pair is judged by
// diagnose() (verdict.h) on the back hop's measurement and the front hop's limit.
//
// Exit status: 1 if any pair is a mismatch (a hop closes before the one in front of it),
// otherwise 2 if a probe failed, a pair's pool timeout is unknown or a verdict inconclusive,
// otherwise 0.
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "base/clock.h"
#include "doctor/verdict.h"

namespace needle::doctor {

struct DoctorOptions;

// One hop: its URL, what its probe measured (or why it failed), and the idle timeout of its pool
// to the next hop (none for the last hop).
struct ChainHop {
  std::string url;
  std::optional<Measurement> measurement;
  std::string probe_error;         // set iff !measurement
  bool is_needle = false;          // its port is a listener of -c needle.toml
  std::optional<ProxyLimit> pool;  // toward the next hop; nullopt: unknown or last hop
  std::string pool_source;         // "--proxy-idle-timeout", "config needle.toml: cluster app"
};

// One front/back pair (hops i and i+1).
struct ChainPair {
  size_t front = 0;                    // index of the front hop; the back hop is front + 1
  std::optional<Diagnosis> diagnosis;  // set when both the limit and the measurement are known
  std::string problem;                 // otherwise: why no verdict
  std::vector<std::string> fixes;  // the verdict's, with needle's own knob for a needle back hop
};

struct ChainRun {
  std::vector<ChainHop> hops;
  std::vector<ChainPair> pairs;
  std::string error;  // usage error (bad list, bad config); exit 2
  int exit_status = 2;
};

// Parses "60s,75s,-" into one entry per front hop; nullopt entries are "-". Empty on error.
std::optional<std::vector<std::optional<Millis>>> parse_idle_timeout_list(const std::string& text);

// Resolves limits, probes every hop in parallel and judges each pair; prints nothing.
ChainRun diagnose_chain(const DoctorOptions& options);
// The table and the fixes.
std::string format_chain_text(const ChainRun& run);
// Prints the report to `out` (errors and progress to `err`); returns the exit status.
int run_chain(const DoctorOptions& options, std::FILE* out, std::FILE* err);

}  // namespace needle::doctor
