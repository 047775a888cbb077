#pragma once
// `needle doctor URL [--proxy-idle-timeout T | -c needle.toml] [--json] [--max-wait W]`:
// measure the upstream's real idle keep-alive close from the outside (idle_probe.h) and judge
// the proxies in front of it (verdict.h). main.cc only registers the options and calls
// run_doctor(); tests call diagnose_target() or run_doctor() in-process.
//
// Exit status: 0 ok (or needle adapts, or nothing to compare), 1 mismatch, 2 probe or usage
// error (refused, unresolvable, bad URL, bad config) or an inconclusive probe.
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "base/clock.h"
#include "doctor/verdict.h"

namespace needle::doctor {

struct DoctorOptions {
  std::string url;  // positional: http://HOST:PORT/PATH
  std::optional<Millis>
      proxy_idle_timeout;            // --proxy-idle-timeout 75s: a proxy (any kind) in front
  std::string config_path;           // -c needle.toml: compare needle's clusters
  std::string cluster;               // --cluster NAME: with -c, only this cluster
  bool json = false;                 // --json: one JSON object on stdout
  Millis max_wait{120'000};          // --max-wait: give up waiting for the idle close
  unsigned probes = 4;               // --probes: parallel probe connections
  Millis connect_timeout{5'000};     // --connect-timeout
  Millis response_timeout{10'000};   // --response-timeout: request -> whole response
  std::vector<std::string> headers;  // -H "Name: value" (repeatable), added to the GET
  // --chain URL URL [URL...] (chain.h): the hops of a request path, front first; then `url` is
  // unused and --proxy-idle-timeout may be a list, one per front hop ("60s,75s", "-": unknown).
  std::vector<std::string> chain;
  std::string proxy_idle_timeout_text;  // --proxy-idle-timeout as given
};

// Registers the positional URL and the flags above on `subcommand`; values land in `options`.
void add_doctor_options(CLI::App& subcommand, DoctorOptions& options);

// Everything doctor found, before printing.
struct DoctorRun {
  std::optional<Measurement> measurement;
  std::optional<Diagnosis> diagnosis;
  std::vector<std::string> context;  // how the compared proxies were chosen
  std::string error;                 // usage or probe error; then exit_status is 2
  int exit_status = 2;
};

// Probes and judges; prints nothing. Blocks for up to max-wait (plus connect and response).
DoctorRun diagnose_target(const DoctorOptions& options);

// Prints the report (text, or JSON with --json) to `out`, errors and progress to `err`, and
// returns the exit status.
int run_doctor(const DoctorOptions& options, std::FILE* out, std::FILE* err);
int run_doctor(const DoctorOptions& options);  // stdout, stderr

}  // namespace needle::doctor
