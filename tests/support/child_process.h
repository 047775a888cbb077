#pragma once
// A child process for integration tests: argv plus environment additions, stdin from
// /dev/null, stdout and stderr captured to files, its own process group, and SIGKILL if the
// test process dies (PR_SET_PDEATHSIG), so no peer outlives a crashed or timed-out test.
#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace needle::test {

struct ChildOptions {
  std::vector<std::string> argv;  // argv[0] without a '/' is looked up in $PATH
  std::vector<std::pair<std::string, std::string>> env;  // added to (or replacing in) environ
  std::filesystem::path output_dir;            // <name>.stdout and <name>.stderr are written here
  std::string name = "child";                  // for file names and messages
  std::filesystem::path cwd;                   // empty: the test's working directory
  std::chrono::milliseconds kill_grace{2000};  // destructor: SIGTERM, this long, then SIGKILL
};

// Owns one child. Not thread-safe: one owner thread.
// The destructor sends SIGTERM to the child's process group, waits up to kill_grace, then
// SIGKILLs the group, and always reaps the child.
class ChildProcess {
 public:
  // Throws std::runtime_error if the program cannot be started (exec failure is reported too).
  explicit ChildProcess(ChildOptions options);
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }
  const std::string& name() const { return options_.name; }

  // Sends sig to the child only (not its group); no-op once it has been reaped.
  void terminate(int sig);
  // The raw wait status (use WIFEXITED/WEXITSTATUS...) once the child has exited, or nullopt
  // if it is still running after timeout. A zero timeout polls.
  std::optional<int> wait_exit(std::chrono::milliseconds timeout);
  bool running() { return !wait_exit(std::chrono::milliseconds(0)).has_value(); }

  const std::filesystem::path& stdout_path() const { return stdout_path_; }
  const std::filesystem::path& stderr_path() const { return stderr_path_; }
  std::string stdout_text() const;
  std::string stderr_text() const;
  // "nginx (pid 123): exited with status 1; stderr: ..." for failure messages.
  std::string describe();

 private:
  ChildOptions options_;
  std::filesystem::path stdout_path_;
  std::filesystem::path stderr_path_;
  pid_t pid_ = -1;
  std::optional<int> status_;
};

// The program's path: as given if it has a '/', else the first executable in $PATH; "" if none.
std::string find_in_path(const std::string& program);

// "exited with status N" / "killed by signal N (SIGTERM)" / "running".
std::string describe_wait_status(std::optional<int> status);

// Connects to 127.0.0.1:port until it accepts or timeout passes. If child is given, gives up
// as soon as the child has exited. Returns true when the port accepted a connection.
bool wait_for_port(int port, std::chrono::milliseconds timeout, ChildProcess* child = nullptr);

// A server started on a port picked with free_port().
struct StartedServer {
  std::unique_ptr<ChildProcess> process;
  int port = 0;
};

// Starts prepare(port)'s child and waits until ready(child, port) (default: the port accepts)
// or timeout. If the child exits first complaining (stderr or diagnostics()) that the address
// is in use, it retries on a fresh port, up to `attempts` times. Throws std::runtime_error
// with the child's output when it cannot be started.
StartedServer start_on_free_port(const std::function<ChildOptions(int port)>& prepare,
                                 std::chrono::milliseconds timeout,
                                 const std::function<bool(ChildProcess&, int port)>& ready = {},
                                 const std::function<std::string()>& diagnostics = {},
                                 int attempts = 3);

}  // namespace needle::test
