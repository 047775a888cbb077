#pragma once
// HAProxy as a reference proxy for benchmark parity: haproxy.cfg written into a TempDir,
// `haproxy -f haproxy.cfg -db` (foreground, no daemon) on a free port.
#include <chrono>
#include <filesystem>
#include <memory>
#include <string>

#include "support/child_process.h"
#include "support/free_port.h"

namespace needle::test {

struct HaproxyOptions {
  std::chrono::milliseconds start_timeout{10000};
};

class HaproxyFixture {
 public:
  // config: a whole haproxy.cfg; every "@PORT@" becomes the listen port. Throws
  // std::runtime_error (with haproxy's output) if haproxy is missing or does not start.
  explicit HaproxyFixture(std::string config, HaproxyOptions options = {});
  ~HaproxyFixture();

  // A proxy to 127.0.0.1:upstream_port, nbthread threads, `http-reuse always`.
  static std::string proxy_config(int upstream_port, int nbthread = 1);

  int port() const { return port_; }
  const std::filesystem::path& dir() const { return dir_.path(); }
  ChildProcess& process() { return *process_; }

 private:
  TempDir dir_{"needle-haproxy"};
  std::unique_ptr<ChildProcess> process_;
  int port_ = 0;
};

}  // namespace needle::test
