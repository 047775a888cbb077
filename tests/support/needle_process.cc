#include "support/needle_process.h"

#include <signal.h>
#include <unistd.h>

#include <stdexcept>
#include <thread>

#include "support/time_scale.h"

namespace needle::test {
namespace {

using Clock = std::chrono::steady_clock;

template <typename Predicate>
bool poll_until(std::chrono::milliseconds timeout, Predicate done) {
  auto deadline = Clock::now() + scaled(timeout);
  for (;;) {
    if (done()) return true;
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

}  // namespace

NeedleProcess::NeedleProcess(std::string config_toml, int listen_port, NeedleOptions options)
    : port_(listen_port) {
  const std::string binary = NEEDLE_BINARY_PATH;
  if (::access(binary.c_str(), X_OK) != 0) {
    throw std::runtime_error("needle binary not found at " + binary +
                             ": build the `needle` target first");
  }
  config_path_ = dir_.file("needle.toml");
  write_text_file(config_path_, config_toml);
  ChildOptions child;
  child.name = "needle";
  child.output_dir = dir_.path();
  child.argv = {binary, "run", "-c", config_path_.string()};
  child.argv.insert(child.argv.end(), options.extra_args.begin(), options.extra_args.end());
  child.env = options.env;
  process_ = std::make_unique<ChildProcess>(child);
  auto deadline = Clock::now() + options.start_timeout;
  std::vector<int> ports{listen_port};
  ports.insert(ports.end(), options.also_wait_for.begin(), options.also_wait_for.end());
  for (int port : ports) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (!wait_for_port(port, std::max(left, std::chrono::milliseconds(0)), process_.get())) {
      std::string why = process_->running()
                            ? "did not listen on 127.0.0.1:" + std::to_string(port) + " in time"
                            : "exited before listening on 127.0.0.1:" + std::to_string(port);
      throw std::runtime_error("needle " + why + ": " + process_->describe() + "; config:\n" +
                               config_toml);
    }
  }
}

NeedleProcess::~NeedleProcess() = default;

std::unique_ptr<NeedleProcess> NeedleProcess::start(
    const std::function<std::string(int listen_port)>& config_for_port, NeedleOptions options,
    int attempts) {
  for (int attempt = 1;; ++attempt) {
    int port = free_port();
    try {
      return std::make_unique<NeedleProcess>(config_for_port(port), port, options);
    } catch (const std::runtime_error& e) {
      // A port taken meanwhile, or free_port() handing the listener the port a test already
      // chose for the admin endpoint ("admin.address ... is also listener[0]"): another port.
      const std::string_view what = e.what();
      const bool collision = what.find("in use") != std::string_view::npos ||
                             what.find("is also listener") != std::string_view::npos;
      if (!collision || attempt >= attempts) throw;
    }
  }
}

void NeedleProcess::rewrite_config(std::string_view config_toml) {
  // Written beside and renamed, so a reload never reads a half-written file.
  auto next = dir_.file("needle.toml.next");
  write_text_file(next, config_toml);
  std::filesystem::rename(next, config_path_);
}

void NeedleProcess::reload() {
  process_->terminate(SIGHUP);
}

void NeedleProcess::terminate(int sig) {
  process_->terminate(sig);
}

std::vector<std::string> NeedleProcess::access_log_lines() const {
  std::vector<std::string> lines;
  const std::string text = access_log();
  size_t start = 0;
  // A line still being written (no newline yet) is not counted.
  for (size_t nl = text.find('\n'); nl != std::string::npos; nl = text.find('\n', start)) {
    if (nl > start) lines.push_back(text.substr(start, nl - start));
    start = nl + 1;
  }
  return lines;
}

bool NeedleProcess::wait_for_access_log_lines(size_t n, std::chrono::milliseconds timeout) const {
  return poll_until(timeout, [&] { return access_log_lines().size() >= n; });
}

bool NeedleProcess::wait_for_log(std::string_view text, std::chrono::milliseconds timeout) const {
  return poll_until(timeout, [&] { return operational_log().find(text) != std::string::npos; });
}

}  // namespace needle::test
