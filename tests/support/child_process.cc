#include "support/child_process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <map>
#include <stdexcept>
#include <string_view>
#include <thread>

#include "support/free_port.h"
#include "support/time_scale.h"

extern char** environ;

namespace needle::test {
namespace {

using Clock = std::chrono::steady_clock;

std::string tail(std::string text, size_t max) {
  if (text.size() > max) text = "..." + text.substr(text.size() - max);
  return text;
}

}  // namespace

std::string find_in_path(const std::string& program) {
  if (program.find('/') != std::string::npos) {
    return ::access(program.c_str(), X_OK) == 0 ? program : std::string();
  }
  const char* path = std::getenv("PATH");
  std::string_view dirs = path && *path ? path : "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin";
  while (!dirs.empty()) {
    size_t colon = dirs.find(':');
    std::string dir(dirs.substr(0, colon));
    dirs = colon == std::string_view::npos ? std::string_view{} : dirs.substr(colon + 1);
    std::string candidate = (dir.empty() ? std::string(".") : dir) + "/" + program;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return {};
}

std::string describe_wait_status(std::optional<int> status) {
  if (!status) return "running";
  if (WIFEXITED(*status)) return "exited with status " + std::to_string(WEXITSTATUS(*status));
  if (WIFSIGNALED(*status)) {
    int sig = WTERMSIG(*status);
    const char* name = ::sigabbrev_np(sig);
    return "killed by signal " + std::to_string(sig) +
           (name ? std::string(" (SIG") + name + ")" : "");
  }
  return "wait status " + std::to_string(*status);
}

ChildProcess::ChildProcess(ChildOptions options) : options_(std::move(options)) {
  if (options_.argv.empty()) throw std::runtime_error("ChildProcess: empty argv");
  if (options_.output_dir.empty()) throw std::runtime_error("ChildProcess: no output_dir");
  stdout_path_ = options_.output_dir / (options_.name + ".stdout");
  stderr_path_ = options_.output_dir / (options_.name + ".stderr");

  // Everything the child needs is built before fork: after it, only async-signal-safe calls.
  std::map<std::string, std::string> env;
  for (char** e = environ; e && *e; ++e) {
    std::string_view kv(*e);
    size_t eq = kv.find('=');
    if (eq != std::string_view::npos) env[std::string(kv.substr(0, eq))] = kv.substr(eq + 1);
  }
  for (const auto& [key, value] : options_.env) env[key] = value;
  std::vector<std::string> env_strings;
  for (const auto& [key, value] : env) env_strings.push_back(key + "=" + value);
  std::vector<char*> envp;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);

  std::vector<std::string> args = options_.argv;
  std::string program = find_in_path(args[0]);
  if (program.empty()) program = args[0];  // execve reports ENOENT
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  std::string out_path = stdout_path_.string();
  std::string err_path = stderr_path_.string();
  std::string cwd = options_.cwd.string();

  int report[2];  // the child writes errno here if it fails before exec; CLOEXEC closes it
  if (::pipe2(report, O_CLOEXEC) != 0) {
    throw std::runtime_error(std::string("ChildProcess: pipe2: ") + std::strerror(errno));
  }
  pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) {
    int err = errno;
    ::close(report[0]);
    ::close(report[1]);
    throw std::runtime_error(std::string("ChildProcess: fork: ") + std::strerror(err));
  }
  if (pid == 0) {
    auto fail = [&](int step) {
      int codes[2] = {step, errno};
      ssize_t ignored = ::write(report[1], codes, sizeof codes);
      (void)ignored;
      ::_exit(127);
    };
    ::setpgid(0, 0);
    if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) fail(1);
    if (::getppid() != parent) ::_exit(127);  // the parent died before prctl took effect
    int in = ::open("/dev/null", O_RDONLY);
    int out = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644);
    int err = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644);
    if (in < 0 || out < 0 || err < 0) fail(2);
    if (::dup2(in, 0) < 0 || ::dup2(out, 1) < 0 || ::dup2(err, 2) < 0) fail(3);
    if (!cwd.empty() && ::chdir(cwd.c_str()) != 0) fail(4);
    // Dispositions and the mask are inherited across exec; give the program the defaults.
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; ++sig) ::sigaction(sig, &dfl, nullptr);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::execve(program.c_str(), argv.data(), envp.data());
    fail(5);
  }
  ::close(report[1]);
  int codes[2] = {0, 0};
  ssize_t n;
  do {
    n = ::read(report[0], codes, sizeof codes);
  } while (n < 0 && errno == EINTR);
  ::close(report[0]);
  pid_ = pid;
  if (n > 0) {
    int status = 0;
    ::waitpid(pid, &status, 0);
    pid_ = -1;
    static const char* steps[] = {"", "prctl", "open stdio", "dup2", "chdir", "execve"};
    throw std::runtime_error("ChildProcess: cannot start " + program + " (" +
                             steps[codes[0] > 0 && codes[0] <= 5 ? codes[0] : 0] +
                             "): " + std::strerror(codes[1]));
  }
}

ChildProcess::~ChildProcess() {
  if (pid_ <= 0) return;
  if (!status_) {
    ::kill(-pid_, SIGTERM);
    ::kill(pid_, SIGTERM);
    if (!wait_exit(options_.kill_grace)) {
      ::kill(-pid_, SIGKILL);
      ::kill(pid_, SIGKILL);
      wait_exit(std::chrono::seconds(10));
    }
  }
  // Whatever is left in the group (nginx workers, npm's children) goes too.
  ::kill(-pid_, SIGKILL);
}

void ChildProcess::terminate(int sig) {
  if (pid_ > 0 && !status_) ::kill(pid_, sig);
}

std::optional<int> ChildProcess::wait_exit(std::chrono::milliseconds timeout) {
  if (status_ || pid_ <= 0) return status_;
  auto deadline = Clock::now() + scaled(timeout);
  for (;;) {
    int status = 0;
    pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      status_ = status;
      return status_;
    }
    if (r < 0 && errno != EINTR) {
      status_ = -1;  // not our child any more; treat as gone
      return status_;
    }
    if (Clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

std::string ChildProcess::stdout_text() const {
  return read_text_file(stdout_path_);
}
std::string ChildProcess::stderr_text() const {
  return read_text_file(stderr_path_);
}

std::string ChildProcess::describe() {
  auto status = wait_exit(std::chrono::milliseconds(0));
  return options_.name + " (pid " + std::to_string(pid_) + "): " + describe_wait_status(status) +
         "; stderr: " + tail(stderr_text(), 2000) + "; stdout: " + tail(stdout_text(), 1000);
}

bool wait_for_port(int port, std::chrono::milliseconds timeout, ChildProcess* child) {
  auto deadline = Clock::now() + scaled(timeout);
  for (;;) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0) {
      sockaddr_in addr{};
      addr.sin_family = AF_INET;
      addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      addr.sin_port = htons(static_cast<uint16_t>(port));
      int r = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
      ::close(fd);
      if (r == 0) return true;
    }
    if (child && !child->running()) return false;
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

StartedServer start_on_free_port(const std::function<ChildOptions(int port)>& prepare,
                                 std::chrono::milliseconds timeout,
                                 const std::function<bool(ChildProcess&, int port)>& ready,
                                 const std::function<std::string()>& diagnostics, int attempts) {
  std::string last_failure;
  for (int attempt = 0; attempt < attempts; ++attempt) {
    int port = free_port();
    auto child = std::make_unique<ChildProcess>(prepare(port));
    bool ok = ready ? ready(*child, port) : wait_for_port(port, timeout, child.get());
    if (ok && child->running()) return StartedServer{std::move(child), port};
    child->terminate(SIGKILL);
    child->wait_exit(std::chrono::seconds(5));
    std::string extra = diagnostics ? diagnostics() : std::string();
    last_failure = child->describe() + (extra.empty() ? "" : "; log: " + tail(extra, 2000));
    bool in_use = (child->stderr_text() + extra).find("in use") != std::string::npos;
    if (!in_use) break;
  }
  throw std::runtime_error("could not start server: " + last_failure);
}

}  // namespace needle::test
