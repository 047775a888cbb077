#pragma once
// Zero-downtime binary upgrade (SIGUSR2; docs/decisions/0009-binary-upgrade.md). The running
// process starts the binary on disk as a child with its listening sockets passed by the
// LISTEN_FDS protocol (sd_listen_fds(3)), a readiness pipe and the learned-state file; the child
// loads its config, listens on the inherited sockets and reports "ready" (or "failed: why") on
// the pipe. Only after "ready" does the old process stop accepting and drain.
//
// Parent side: Upgrade (one at a time, on the control thread). Child side: report_upgrade_ready
// and report_upgrade_failure, no-ops when this process was not started by an upgrade.
#include <sys/types.h>

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include <asio/io_context.hpp>
#include <asio/posix/stream_descriptor.hpp>
#include <asio/steady_timer.hpp>

namespace needle::server {

// Environment of an upgraded child (besides LISTEN_PID, LISTEN_FDS, LISTEN_FDNAMES).
inline constexpr const char* kUpgradeReadyFdEnv = "NEEDLE_UPGRADE_READY_FD";
inline constexpr const char* kUpgradeStateEnv = "NEEDLE_UPGRADE_STATE";

// The binary and argv this process was started with, captured at start: /proc/self/exe's path
// then (an upgrade installs the new binary under the same path), /proc/self/cmdline.
struct ProgramImage {
  std::string path;
  std::vector<std::string> argv;
};
ProgramImage capture_program_image();

struct PassedSocket {
  int fd = -1;       // stays owned by the caller
  std::string name;  // LISTEN_FDNAMES entry: "listener" or "admin"
};

class Upgrade {
 public:
  using ReadyHandler = std::function<void(pid_t child)>;
  using FailedHandler = std::function<void(pid_t child, std::string reason)>;

  Upgrade(asio::io_context& io, ProgramImage image);
  ~Upgrade();
  bool in_progress() const { return child_ > 0; }
  pid_t child() const { return child_; }

  // Starts the new process. Exactly one of on_ready / on_failed runs later on `io` (after a
  // "ready" line; or the child failed, died, or stayed silent for kReadyTimeout: it is then
  // killed and reaped). An error here means no child was started.
  std::error_code start(const std::vector<PassedSocket>& sockets, const std::string& state_file,
                        ReadyHandler on_ready, FailedHandler on_failed);

  static constexpr std::chrono::seconds kReadyTimeout{60};

 private:
  void read_report();
  void finish_failed(std::string reason);
  void reap(std::string reason, int polls_left);

  asio::io_context& io_;
  ProgramImage image_;
  asio::posix::stream_descriptor pipe_;
  asio::steady_timer timer_;
  pid_t child_ = -1;
  std::string report_;  // what the child wrote on the pipe so far
  char read_buffer_[256];
  ReadyHandler on_ready_;
  FailedHandler on_failed_;
};

// Child side. The first call takes NEEDLE_UPGRADE_READY_FD from the environment (and marks it
// close-on-exec); both write one line and close the pipe; later calls do nothing.
void take_upgrade_ready_fd();
void report_upgrade_ready();
void report_upgrade_failure(std::string_view reason);

// "exited with status N" / "killed by signal N".
std::string describe_exit(int wait_status);

}  // namespace needle::server
