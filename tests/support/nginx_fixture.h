#pragma once
// nginx as a real peer: an app server returning fixed bodies, or a reference proxy. The whole
// instance lives in a TempDir: nginx.conf (self-contained: daemon off, pid, error log and temp
// paths inside the dir, `user root;` when run as root), error.log, and optionally access.log
// with "$connection $connection_requests $status $request" per request, so tests can count the
// connections a proxy opened to it.
#include <chrono>
#include <cstddef>
#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "support/child_process.h"
#include "support/free_port.h"

namespace needle::test {

struct NginxOptions {
  int workers = 1;
  bool log_connections = false;  // access.log with $connection $connection_requests
  std::chrono::milliseconds start_timeout{10000};
};

// One access.log line (log_connections).
struct NginxAccessLine {
  long connection = 0;           // nginx's connection serial number
  long connection_requests = 0;  // 1 for the first request on that connection
  int status = 0;
  std::string request;  // "GET /12b HTTP/1.1"
};

// An app server's fixed responses; bodies over 2 KiB are written to files and served with
// alias (nginx caps the length of a config parameter).
struct NginxAppServer {
  struct Route {
    std::string path;  // exact match
    std::string body;
    int status = 200;
  };
  std::vector<Route> routes;
  std::string keepalive_timeout = "75s";  // nginx's default
  int keepalive_requests = 1000;          // nginx's default
};

class NginxFixture {
 public:
  // http_config is the inside of the http {} block; every "@PORT@" becomes the listen port.
  // Throws std::runtime_error (with nginx's output) if nginx is missing or does not start.
  explicit NginxFixture(std::string http_config, NginxOptions options = {});
  // An app server (see NginxAppServer).
  explicit NginxFixture(const NginxAppServer& app, NginxOptions options = {});
  ~NginxFixture();

  // server {} blocks for an app server (files for large bodies are written into dir).
  static std::string app_server_config(const NginxAppServer& app, const std::filesystem::path& dir);
  // A reference proxy to 127.0.0.1:upstream_port with pooled upstream connections.
  static std::string proxy_config(int upstream_port, int upstream_keepalive = 32);

  int port() const { return port_; }
  const std::filesystem::path& dir() const { return dir_.path(); }
  std::filesystem::path config_path() const { return dir_.file("nginx.conf"); }
  std::string error_log() const { return read_text_file(dir_.file("error.log")); }
  ChildProcess& process() { return *process_; }

  std::vector<NginxAccessLine> access_log() const;
  size_t distinct_connections() const;  // in access_log()
  bool wait_for_access_log_lines(size_t n, std::chrono::milliseconds timeout) const;
  // SIGHUP: nginx re-reads nginx.conf (rewrite it first with write_text_file(config_path())).
  void reload();

 private:
  void start(const std::string& http_config, const NginxOptions& options);

  TempDir dir_{"needle-nginx"};
  std::unique_ptr<ChildProcess> process_;
  int port_ = 0;
};

// /usr/sbin/nginx, or throws telling the reader to run scripts/install-deps.sh.
std::string nginx_binary();

}  // namespace needle::test
