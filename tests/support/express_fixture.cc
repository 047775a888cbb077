#include "support/express_fixture.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <stdexcept>
#include <thread>

#include "support/http_client.h"

namespace needle::test {
namespace {

using Clock = std::chrono::steady_clock;

bool dependencies_present(const std::filesystem::path& app) {
  // ws: the WebSocket tests' upstream and client (tests/support/ws/).
  return std::filesystem::exists(app / "node_modules" / "express" / "package.json") &&
         std::filesystem::exists(app / "node_modules" / "ws" / "package.json");
}

// The unsigned integer after "key": in a flat JSON object such as /stats returns.
std::optional<size_t> json_number(const std::string& json, const std::string& key) {
  size_t at = json.find("\"" + key + "\"");
  if (at == std::string::npos) return std::nullopt;
  at = json.find(':', at + key.size() + 2);
  if (at == std::string::npos) return std::nullopt;
  at = json.find_first_not_of(" \t", at + 1);
  if (at == std::string::npos || json[at] < '0' || json[at] > '9') return std::nullopt;
  size_t value = 0;
  for (; at < json.size() && json[at] >= '0' && json[at] <= '9'; ++at) {
    value = value * 10 + static_cast<size_t>(json[at] - '0');
  }
  return value;
}

}  // namespace

std::filesystem::path example_app_dir() {
  return std::filesystem::path(NEEDLE_SOURCE_DIR) / "examples" / "app";
}

void ensure_example_app_dependencies() {
  const auto app = example_app_dir();
  if (dependencies_present(app)) return;
  // The lock lives outside the source tree so it is never committed.
  int lock = ::open("/tmp/needle-example-app-npm.lock", O_CREAT | O_RDWR | O_CLOEXEC, 0666);
  if (lock < 0) throw std::runtime_error("cannot open the npm install lock file");
  ::flock(lock, LOCK_EX);
  struct Unlock {
    int fd;
    ~Unlock() {
      ::flock(fd, LOCK_UN);
      ::close(fd);
    }
  } unlock{lock};
  if (dependencies_present(app)) return;  // another test installed them while we waited
  TempDir out("needle-npm");
  ChildOptions options;
  options.name = "npm-install";
  options.output_dir = out.path();
  options.cwd = app;
  options.argv = {"npm", "install", "--no-audit", "--no-fund"};
  std::unique_ptr<ChildProcess> started;
  try {
    started = std::make_unique<ChildProcess>(options);
  } catch (const std::runtime_error& e) {
    throw std::runtime_error(std::string(e.what()) + " (run scripts/install-deps.sh)");
  }
  ChildProcess& npm = *started;
  auto status = npm.wait_exit(std::chrono::minutes(5));
  if (!status || !WIFEXITED(*status) || WEXITSTATUS(*status) != 0 || !dependencies_present(app)) {
    throw std::runtime_error("npm install in " + app.string() + " failed: " + npm.describe() +
                             " (run scripts/install-deps.sh)");
  }
}

ExpressFixture::ExpressFixture(ExpressOptions options) {
  ensure_example_app_dependencies();
  const auto server_js = example_app_dir() / "server.js";
  if (find_in_path("node").empty()) {
    throw std::runtime_error("node is not installed: run scripts/install-deps.sh");
  }
  auto started = start_on_free_port(
      [&](int port) {
        ChildOptions child;
        child.name = "express";
        child.output_dir = dir_.path();
        child.cwd = example_app_dir();
        child.argv = {"node", server_js.string()};
        child.env = {{"PORT", std::to_string(port)}};
        if (options.keep_alive_timeout_ms) {
          child.env.emplace_back("KEEP_ALIVE_TIMEOUT_MS",
                                 std::to_string(*options.keep_alive_timeout_ms));
        }
        return child;
      },
      options.start_timeout,
      [&](ChildProcess& child, int) {
        auto deadline = Clock::now() + options.start_timeout;
        while (Clock::now() < deadline && child.running()) {
          if (child.stdout_text().find("app listening") != std::string::npos) return true;
          std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        return false;
      });
  process_ = std::move(started.process);
  port_ = started.port;
}

ExpressFixture::~ExpressFixture() = default;

std::optional<AppStats> ExpressFixture::stats() const {
  auto response = get(port_, "/stats");
  if (!response || response->status != 200) return std::nullopt;
  auto connections = json_number(response->body, "connections");
  auto requests = json_number(response->body, "requests");
  auto open = json_number(response->body, "open");
  if (!connections || !requests || !open) return std::nullopt;
  return AppStats{*connections, *requests, *open};
}

}  // namespace needle::test
