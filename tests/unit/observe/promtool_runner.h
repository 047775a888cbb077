#pragma once
// Runs Debian's promtool from a unit test. A missing promtool is a failure, never a skip: the
// alert rules and the exposition format are only proven by it.
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <optional>
#include <sstream>
#include <string>

namespace needle::observe::promtool {

struct Result {
  int exit_code = -1;
  std::string output;  // stdout and stderr
};

inline std::optional<std::string> find() {
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path ? path : "");
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    const std::string candidate = (dir.empty() ? "." : dir) + "/promtool";
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  if (::access("/usr/bin/promtool", X_OK) == 0) return std::string("/usr/bin/promtool");
  return std::nullopt;
}

inline constexpr const char* kMissing =
    "promtool not found (expected /usr/bin/promtool from Debian's `prometheus` package): "
    "run scripts/install-deps.sh";

// `args` is passed to the shell after the promtool path; keep it to trusted test strings.
inline Result run(const std::string& promtool, const std::string& args) {
  Result result;
  const std::string command = promtool + " " + args + " 2>&1";
  FILE* pipe = ::popen(command.c_str(), "r");
  if (!pipe) return result;
  char buffer[4096];
  size_t n;
  while ((n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) result.output.append(buffer, n);
  const int status = ::pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

}  // namespace needle::observe::promtool
