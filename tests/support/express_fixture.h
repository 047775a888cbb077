#pragma once
// The Express app of the 502 story (examples/app/server.js) as a real upstream: `node
// server.js` on a free port, with Node's default keep-alive (5 s, enforced about 1 s late) or
// KEEP_ALIVE_TIMEOUT_MS. Readiness is the app's "app listening" line, not a probe connection,
// so the app's connection count holds only the test's traffic.
#include <chrono>
#include <cstddef>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "support/child_process.h"
#include "support/free_port.h"

namespace needle::test {

struct ExpressOptions {
  std::optional<int> keep_alive_timeout_ms;  // server.keepAliveTimeout; Node's default if unset
  std::chrono::milliseconds start_timeout{20000};
};

// GET /stats: traffic apart from the observation itself (see server.js).
struct AppStats {
  size_t connections = 0;  // TCP connections accepted (stats-only ones left out)
  size_t requests = 0;     // requests other than /stats
  size_t open = 0;         // connections open now, the one asking included
};

class ExpressFixture {
 public:
  // Throws std::runtime_error with the app's output if node is missing or the app won't start.
  explicit ExpressFixture(ExpressOptions options = {});
  ~ExpressFixture();

  int port() const { return port_; }
  std::optional<AppStats> stats() const;
  std::string output() const { return process_->stdout_text(); }  // one line per request
  ChildProcess& process() { return *process_; }

 private:
  TempDir dir_{"needle-express"};
  std::unique_ptr<ChildProcess> process_;
  int port_ = 0;
};

// examples/app in the source tree.
std::filesystem::path example_app_dir();
// Runs `npm install --no-audit --no-fund` in examples/app if node_modules is missing, under
// an exclusive file lock so parallel tests install once. Throws std::runtime_error on failure.
void ensure_example_app_dependencies();

}  // namespace needle::test
