#pragma once
// The TLS clients of the integration tests are the real ones: curl and `openssl s_client`,
// run through the shell with a time limit (tests/support/time_scale.h), output captured.
#include <array>
#include <cstdio>
#include <string>

#include <sys/wait.h>

#include "support/test_pki.h"
#include "support/time_scale.h"

namespace needle::test {

struct CommandOutput {
  int status = -1;     // the shell's exit status
  std::string output;  // stdout and stderr
};

inline CommandOutput run_shell(const std::string& command, int seconds = 10) {
  const std::string limited = "timeout " +
                              std::to_string((scaled_ms(seconds * 1000LL) + 999) / 1000) +
                              " sh -c '" + command + "' 2>&1";
  CommandOutput result;
  FILE* pipe = ::popen(limited.c_str(), "r");
  if (pipe == nullptr) return result;
  std::array<char, 4096> chunk;
  size_t n;
  while ((n = std::fread(chunk.data(), 1, chunk.size(), pipe)) > 0)
    result.output.append(chunk.data(), n);
  const int status = ::pclose(pipe);
  result.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

// `openssl s_client` to 127.0.0.1:port sending one GET (Connection: close) and reading to the
// end; `options` adds flags such as "-servername api.example.com -tls1_3".
inline CommandOutput s_client_get(int port, const std::string& options) {
  const auto& pki = tls::testing::TestPki::get();
  return run_shell(
      "printf \"GET / HTTP/1.1\\r\\nHost: t\\r\\nConnection: close\\r\\n\\r\\n\" | "
      "openssl s_client -connect 127.0.0.1:" +
      std::to_string(port) + " -CAfile " + pki.ca() + " -ign_eof " + options);
}

}  // namespace needle::test
