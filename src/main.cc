// needle: the binary is only this file; everything else is a library the tests link.
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "base/log.h"
#include "config/config.h"
#include "doctor/doctor_command.h"
#include "server/server.h"
#include "server/upgrade.h"

namespace {

int print_errors(const std::vector<needle::config::ConfigError>& errors) {
  for (const auto& error : errors) std::fprintf(stderr, "%s\n", error.to_string().c_str());
  std::fprintf(stderr, "needle: %zu configuration error(s)\n", errors.size());
  // Started by a SIGUSR2 upgrade: the old process logs why and keeps serving.
  if (!errors.empty()) {
    needle::server::report_upgrade_failure(fmt::format(
        "{} configuration error(s), the first: {}", errors.size(), errors.front().to_string()));
  }
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"needle: an HTTP/1.1 reverse proxy that never turns an idle keep-alive close into "
               "a 502"};
  app.require_subcommand(1);

  std::string config_path;
  std::string listen;
  std::vector<std::string> upstreams;
  unsigned workers = 0;
  std::string admin;
  std::string log_level = "info";
  std::string access_log;
  auto* run = app.add_subcommand("run", "run the proxy");
  run->add_option("-c,--config", config_path, "TOML config file");
  run->add_option("--listen", listen, "quick mode: listen address, e.g. 127.0.0.1:8080");
  run->add_option("--upstream", upstreams, "quick mode: upstream HOST:PORT (repeatable)");
  run->add_option("--workers", workers, "quick mode: worker threads (default: cores)");
  run->add_option("--admin", admin, "quick mode: admin address (default 127.0.0.1:9901, or off)");
  run->add_option("--access-log", access_log, "access log: stdout, off or a file (overrides config)");
  run->add_option("--log-level", log_level, "debug, info, warn or error")
      ->check(CLI::IsMember({"debug", "info", "warn", "error"}));

  std::string check_path;
  auto* check = app.add_subcommand("check", "validate a config file and exit");
  check->add_option("-c,--config", check_path, "TOML config file")->required();

  needle::doctor::DoctorOptions doctor_options;
  auto* doctor = app.add_subcommand(
      "doctor", "measure an upstream's idle keep-alive timeout and compare it with the proxy's");
  needle::doctor::add_doctor_options(*doctor, doctor_options);

  app.add_subcommand("version", "print the version");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }

  if (app.got_subcommand("version")) {
    std::printf("needle %s\n", NEEDLE_VERSION);
    return 0;
  }
  if (app.got_subcommand("check")) {
    auto loaded = needle::config::load_config_file(check_path);
    if (!loaded.config) return print_errors(loaded.errors);
    std::printf("%s: ok (%zu listener(s), %zu route(s), %zu cluster(s))\n", check_path.c_str(),
                loaded.config->listeners.size(), loaded.config->routes.size(),
                loaded.config->clusters.size());
    return 0;
  }
  if (app.got_subcommand("doctor")) return needle::doctor::run_doctor(doctor_options);

  // run
  using needle::log::Level;
  needle::log::set_level(log_level == "debug"  ? Level::debug
                         : log_level == "warn" ? Level::warn
                         : log_level == "error" ? Level::error
                                                : Level::info);
  needle::config::LoadResult loaded;
  if (!config_path.empty()) {
    if (!listen.empty() || !upstreams.empty()) {
      std::fprintf(stderr, "needle run: use either -c FILE or --listen/--upstream, not both\n");
      return 2;
    }
    loaded = needle::config::load_config_file(config_path);
  } else {
    if (listen.empty() || upstreams.empty()) {
      std::fprintf(stderr,
                   "needle run: give -c FILE, or --listen ADDR and --upstream HOST:PORT\n");
      return 2;
    }
    loaded = needle::config::quick_config(listen, upstreams, workers, admin);
  }
  if (!loaded.config) return print_errors(loaded.errors);
  if (!access_log.empty()) loaded.config->server.access_log = access_log;
  auto config = std::make_shared<const needle::config::Config>(std::move(*loaded.config));
  needle::server::Server server(config, config_path, access_log);
  return server.run();
}
