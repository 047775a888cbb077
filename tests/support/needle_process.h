#pragma once
// The real needle binary (NEEDLE_BINARY_PATH) under test: the given TOML is written to
// needle.toml in a TempDir, `needle run -c needle.toml` is started, and the fixture waits until
// the listener port accepts. stdout is the access log (one JSON object per line), stderr the
// operational log; both are captured to files in the TempDir.
#include <chrono>
#include <csignal>
#include <cstddef>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "support/child_process.h"
#include "support/free_port.h"

namespace needle::test {

struct NeedleOptions {
  std::vector<std::string> extra_args;                   // after `run -c FILE`
  std::vector<std::pair<std::string, std::string>> env;  // added to the environment
  std::vector<int> also_wait_for;                        // e.g. the admin port
  std::chrono::milliseconds start_timeout{10000};
};

class NeedleProcess {
 public:
  // config_toml must make needle listen on 127.0.0.1:listen_port. Throws std::runtime_error
  // with needle's output if the binary is missing, exits, or does not listen in time.
  NeedleProcess(std::string config_toml, int listen_port, NeedleOptions options = {});
  ~NeedleProcess();
  // Picks the listen port with free_port() and retries on a fresh one (up to `attempts`)
  // when needle reports the address in use; config_for_port(port) returns the TOML.
  static std::unique_ptr<NeedleProcess> start(
      const std::function<std::string(int listen_port)>& config_for_port,
      NeedleOptions options = {}, int attempts = 3);

  int port() const { return port_; }
  const std::filesystem::path& config_path() const { return config_path_; }
  // Replaces needle.toml (then call reload()).
  void rewrite_config(std::string_view config_toml);
  void reload();                      // SIGHUP
  void terminate(int sig = SIGTERM);  // SIGTERM: graceful drain
  std::optional<int> wait_exit(std::chrono::milliseconds timeout) {
    return process_->wait_exit(timeout);
  }

  std::string access_log() const { return process_->stdout_text(); }
  std::vector<std::string> access_log_lines() const;  // complete, non-empty lines
  std::string operational_log() const { return process_->stderr_text(); }
  bool wait_for_access_log_lines(size_t n, std::chrono::milliseconds timeout) const;
  // Waits until the operational log contains text (e.g. "reloaded").
  bool wait_for_log(std::string_view text, std::chrono::milliseconds timeout) const;
  ChildProcess& process() { return *process_; }

 private:
  TempDir dir_{"needle-proc"};
  std::filesystem::path config_path_;
  std::unique_ptr<ChildProcess> process_;
  int port_ = 0;
};

}  // namespace needle::test
