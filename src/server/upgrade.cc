#include "server/upgrade.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <sstream>

#include <fmt/format.h>

#include "base/log.h"

extern char** environ;

namespace needle::server {
namespace {

constexpr int kListenFdsStart = 3;  // sd_listen_fds(3)
constexpr char kPidEntry[] = "LISTEN_PID=";

bool is_handed_over_variable(std::string_view entry) {
  for (std::string_view name : {"LISTEN_PID=", "LISTEN_FDS=", "LISTEN_FDNAMES=",
                                "NEEDLE_UPGRADE_READY_FD=", "NEEDLE_UPGRADE_STATE="}) {
    if (entry.starts_with(name)) return true;
  }
  return false;
}

// Only async-signal-safe calls between fork() and execve(): the parent has other threads.
[[noreturn]] void exec_child(const ProgramImage& image, char* const* argv, char* const* envp,
                             char* pid_entry, const std::vector<int>& high_fds) {
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  for (size_t i = 0; i < high_fds.size(); ++i) {
    // dup2 clears close-on-exec on the target; the high copies close at exec.
    if (::dup2(high_fds[i], kListenFdsStart + static_cast<int>(i)) < 0) ::_exit(126);
  }
  char digits[24];
  int n = 0;
  for (pid_t pid = ::getpid(); pid > 0; pid /= 10) digits[n++] = static_cast<char>('0' + pid % 10);
  char* out = pid_entry + sizeof(kPidEntry) - 1;
  while (n > 0) *out++ = digits[--n];
  *out = '\0';
  ::execve(image.path.c_str(), argv, envp);
  ::_exit(127);
}

std::mutex ready_fd_mutex;
int ready_fd = -1;
bool ready_fd_taken = false;

void take_ready_fd_locked() {
  if (ready_fd_taken) return;
  ready_fd_taken = true;
  const char* text = std::getenv(kUpgradeReadyFdEnv);
  if (text != nullptr) {
    int fd = -1;
    const std::string_view view(text);
    auto [end, ec] = std::from_chars(view.data(), view.data() + view.size(), fd);
    if (ec == std::errc() && fd > 2 && ::fcntl(fd, F_SETFD, FD_CLOEXEC) == 0) ready_fd = fd;
  }
  ::unsetenv(kUpgradeReadyFdEnv);
}

void write_report(std::string_view line) {
  std::lock_guard lock(ready_fd_mutex);
  take_ready_fd_locked();
  if (ready_fd < 0) return;
  std::string text(line);
  text += '\n';
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(ready_fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    done += static_cast<size_t>(n);
  }
  ::close(ready_fd);
  ready_fd = -1;
}

}  // namespace

ProgramImage capture_program_image() {
  ProgramImage image;
  std::error_code ec;
  char path[4096];
  const ssize_t n = ::readlink("/proc/self/exe", path, sizeof path - 1);
  if (n > 0) image.path.assign(path, static_cast<size_t>(n));
  std::ifstream cmdline("/proc/self/cmdline", std::ios::binary);
  std::string arg;
  while (std::getline(cmdline, arg, '\0')) image.argv.push_back(arg);
  return image;
}

Upgrade::Upgrade(asio::io_context& io, ProgramImage image)
    : io_(io), image_(std::move(image)), pipe_(io), timer_(io) {}

Upgrade::~Upgrade() {
  std::error_code ignored;
  pipe_.close(ignored);
}

std::error_code Upgrade::start(const std::vector<PassedSocket>& sockets,
                               const std::string& state_file, ReadyHandler on_ready,
                               FailedHandler on_failed) {
  if (image_.path.empty() || image_.argv.empty()) {
    return std::make_error_code(std::errc::no_such_file_or_directory);
  }
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) return {errno, std::system_category()};
  // Everything the child needs is built before fork(): the child only dup2()s and execs.
  const int passed = static_cast<int>(sockets.size());
  const int first_free = kListenFdsStart + passed + 1;
  std::vector<int> high_fds;
  std::string names;
  auto close_all = [&] {
    for (int fd : high_fds) ::close(fd);
    ::close(pipe_fds[0]);
    ::close(pipe_fds[1]);
  };
  for (const auto& socket : sockets) {
    const int copy = ::fcntl(socket.fd, F_DUPFD_CLOEXEC, first_free);
    if (copy < 0) {
      const int saved = errno;
      close_all();
      return {saved, std::system_category()};
    }
    high_fds.push_back(copy);
    if (!names.empty()) names += ':';
    names += socket.name;
  }
  const int ready_copy = ::fcntl(pipe_fds[1], F_DUPFD_CLOEXEC, first_free);
  if (ready_copy < 0) {
    const int saved = errno;
    close_all();
    return {saved, std::system_category()};
  }
  high_fds.push_back(ready_copy);

  std::vector<std::string> env;
  for (char** entry = environ; *entry != nullptr; ++entry) {
    if (!is_handed_over_variable(*entry)) env.emplace_back(*entry);
  }
  env.push_back(fmt::format("LISTEN_FDS={}", passed));
  env.push_back("LISTEN_FDNAMES=" + names);
  env.push_back(fmt::format("{}={}", kUpgradeReadyFdEnv, kListenFdsStart + passed));
  if (!state_file.empty()) env.push_back(fmt::format("{}={}", kUpgradeStateEnv, state_file));
  std::string pid_entry(kPidEntry);
  pid_entry.append(24, ' ');  // digits written by the child
  std::vector<char*> envp;
  for (auto& entry : env) envp.push_back(entry.data());
  envp.push_back(pid_entry.data());
  envp.push_back(nullptr);
  std::vector<std::string> args = image_.argv;
  std::vector<char*> argv;
  for (auto& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);

  const pid_t pid = ::fork();
  if (pid < 0) {
    const int saved = errno;
    close_all();
    return {saved, std::system_category()};
  }
  if (pid == 0) exec_child(image_, argv.data(), envp.data(), pid_entry.data(), high_fds);

  for (int fd : high_fds) ::close(fd);
  ::close(pipe_fds[1]);
  child_ = pid;
  report_.clear();
  on_ready_ = std::move(on_ready);
  on_failed_ = std::move(on_failed);
  pipe_.assign(pipe_fds[0]);
  read_report();
  timer_.expires_after(kReadyTimeout);
  timer_.async_wait([this](std::error_code ec) {
    if (ec || !in_progress()) return;
    ::kill(child_, SIGKILL);
    finish_failed(fmt::format("not ready within {} s (killed)", kReadyTimeout.count()));
  });
  return {};
}

void Upgrade::read_report() {
  pipe_.async_read_some(asio::buffer(read_buffer_), [this](std::error_code ec, size_t n) {
    if (!in_progress()) return;
    report_.append(read_buffer_, n);
    const size_t newline = report_.find('\n');
    if (newline != std::string::npos) {
      const std::string line = report_.substr(0, newline);
      if (line == "ready") {
        timer_.cancel();
        std::error_code ignored;
        pipe_.close(ignored);
        const pid_t child = std::exchange(child_, -1);
        on_ready_(child);
        return;
      }
      finish_failed(line.starts_with("failed: ") ? line.substr(8) : line);
      return;
    }
    if (ec) {
      finish_failed("exited before it was ready");
      return;
    }
    read_report();
  });
}

void Upgrade::finish_failed(std::string reason) {
  timer_.cancel();
  std::error_code ignored;
  pipe_.close(ignored);
  reap(std::move(reason), 100);
}

// The child is gone or going (it reported a failure, or closed the pipe): reap it, every 20 ms
// for up to 2 s, then kill it (a process that lost its pipe will never be the server).
void Upgrade::reap(std::string reason, int polls_left) {
  int status = 0;
  const pid_t done = ::waitpid(child_, &status, WNOHANG);
  if (done == 0 && polls_left > 0) {
    timer_.expires_after(std::chrono::milliseconds(20));
    timer_.async_wait([this, reason = std::move(reason), polls_left](std::error_code ec) mutable {
      if (!ec) reap(std::move(reason), polls_left - 1);
    });
    return;
  }
  if (done == 0) {
    ::kill(child_, SIGKILL);
    ::waitpid(child_, &status, 0);
  }
  const pid_t child = std::exchange(child_, -1);
  on_failed_(child, fmt::format("{} ({})", reason, describe_exit(status)));
}

void take_upgrade_ready_fd() {
  std::lock_guard lock(ready_fd_mutex);
  take_ready_fd_locked();
}

void report_upgrade_ready() { write_report("ready"); }

void report_upgrade_failure(std::string_view reason) {
  std::string line = "failed: ";
  for (char c : reason) line += c == '\n' ? ' ' : c;
  write_report(line);
}

std::string describe_exit(int wait_status) {
  if (WIFEXITED(wait_status)) return fmt::format("exited with status {}", WEXITSTATUS(wait_status));
  if (WIFSIGNALED(wait_status)) return fmt::format("killed by signal {}", WTERMSIG(wait_status));
  return "running";
}

}  // namespace needle::server
