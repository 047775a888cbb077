#pragma once
// Shared helpers for the proxy_*_test.cc end-to-end tests: generated needle configs, access-log
// field lookups, /proc readings of the needle child, and a streaming client for bodies too
// large to hold twice.
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <llhttp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdint>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "support/http_client.h"
#include "support/needle_process.h"
#include "support/time_scale.h"

namespace needle::test::proxy {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

inline std::string quoted_addr(int port) { return "\"127.0.0.1:" + std::to_string(port) + "\""; }

// One cluster named `name` holding `upstream_ports`, with extra `key = value` lines.
struct ClusterSpec {
  std::string name = "app";
  std::vector<int> upstream_ports;
  std::string extra;  // raw TOML lines inside [cluster.NAME]
};

struct RouteSpec {
  std::string host;  // empty: any
  std::string path_prefix = "/";
  std::string cluster = "app";
};

// A complete needle.toml: workers = 1, access log to stdout, admin off unless admin_port > 0.
struct ConfigSpec {
  std::string server_extra;  // raw TOML lines inside [server]
  std::string listener_extra;  // raw TOML after the listener's address (e.g. a [listener.tls])
  std::vector<RouteSpec> routes{RouteSpec{}};
  std::vector<ClusterSpec> clusters;
  int admin_port = 0;

  std::string render(int listen_port) const {
    std::string t = "[server]\nworkers = 1\naccess_log = \"stdout\"\n" + server_extra + "\n";
    t += "[[listener]]\naddress = " + quoted_addr(listen_port) + "\n" + listener_extra + "\n";
    t += "[admin]\naddress = " + (admin_port > 0 ? quoted_addr(admin_port) : "\"off\"") + "\n";
    for (const auto& r : routes) {
      t += "[[route]]\n";
      if (!r.host.empty()) t += "host = \"" + r.host + "\"\n";
      t += "path_prefix = \"" + r.path_prefix + "\"\ncluster = \"" + r.cluster + "\"\n";
    }
    for (const auto& c : clusters) {
      t += "[cluster." + c.name + "]\nhosts = [";
      for (size_t i = 0; i < c.upstream_ports.size(); ++i) {
        if (i) t += ", ";
        t += quoted_addr(c.upstream_ports[i]);
      }
      t += "]\n" + c.extra + "\n";
    }
    return t;
  }
};

inline std::unique_ptr<NeedleProcess> start_needle(const ConfigSpec& spec,
                                                   NeedleOptions options = {}) {
  if (spec.admin_port > 0) options.also_wait_for.push_back(spec.admin_port);
  return NeedleProcess::start([spec](int port) { return spec.render(port); }, options);
}

// One upstream cluster "app" on `upstream_port`, with extra server and cluster lines.
inline std::unique_ptr<NeedleProcess> start_needle_for(int upstream_port,
                                                       std::string server_extra = {},
                                                       std::string cluster_extra = {}) {
  ConfigSpec spec;
  spec.server_extra = std::move(server_extra);
  spec.clusters.push_back(ClusterSpec{"app", {upstream_port}, std::move(cluster_extra)});
  return start_needle(spec);
}

// The raw JSON text of field `key` in a flat access-log line (the first occurrence, which is the
// request-level one because attempts come last): `"status":502` -> "502", strings unquoted.
inline std::string json_field(const std::string& line, std::string_view key) {
  const std::string needle = "\"" + std::string(key) + "\":";
  const size_t at = line.find(needle);
  if (at == std::string::npos) return {};
  size_t p = at + needle.size();
  if (p < line.size() && line[p] == '"') {
    std::string out;
    for (++p; p < line.size() && line[p] != '"'; ++p) {
      if (line[p] == '\\' && p + 1 < line.size()) ++p;
      out.push_back(line[p]);
    }
    return out;
  }
  size_t e = p;
  while (e < line.size() && line[e] != ',' && line[e] != '}') ++e;
  return line.substr(p, e - p);
}

// Waits for n access-log lines and returns the last n (or all there are on timeout).
inline std::vector<std::string> wait_log_lines(const NeedleProcess& needle, size_t n,
                                               milliseconds timeout = milliseconds(3000)) {
  needle.wait_for_access_log_lines(n, timeout);
  return needle.access_log_lines();
}

// VmRSS of a process in KiB (0 if unreadable).
inline long rss_kib(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return 0;
}

// Number of open file descriptors of a process (-1 if unreadable).
inline int fd_count(pid_t pid) {
  DIR* dir = opendir(("/proc/" + std::to_string(pid) + "/fd").c_str());
  if (!dir) return -1;
  int n = 0;
  while (dirent* e = readdir(dir)) {
    if (e->d_name[0] != '.') ++n;
  }
  closedir(dir);
  return n;
}

// Polls pred every 20 ms until it holds or timeout (scaled, support/time_scale.h) passes.
template <typename Pred>
bool eventually(Pred pred, milliseconds timeout) {
  const auto deadline = Clock::now() + scaled(timeout);
  for (;;) {
    if (pred()) return true;
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(milliseconds(20));
  }
}

// FNV-1a, 64 bit: a checksum that can be computed piece by piece.
struct Fnv64 {
  uint64_t h = 1469598103934665603ull;
  void update(std::string_view s) {
    for (unsigned char c : s) {
      h ^= c;
      h *= 1099511628211ull;
    }
  }
};

// Deterministic pseudo-random bytes for piece `index` of a body (same input -> same bytes).
inline void fill_piece(std::string& piece, size_t index, size_t size) {
  piece.resize(size);
  uint64_t x = 0x9e3779b97f4a7c15ull * (index + 1);
  for (size_t i = 0; i < size; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    piece[i] = static_cast<char>(x);
  }
}

// A streaming exchange on a raw socket: the request body is generated piece by piece while a
// reader thread parses the response with llhttp, hashing the body instead of keeping it.
struct StreamedResult {
  bool ok = false;
  std::string error;
  int status = 0;
  uint64_t body_size = 0;
  uint64_t body_hash = 0;
  bool chunked_response = false;
};

class StreamingExchange {
 public:
  // head: the request head through the blank line; body_size bytes follow in `piece` pieces,
  // framed as chunks when chunked. Returns what the reader saw.
  static StreamedResult run(int port, const std::string& head, uint64_t body_size,
                            size_t piece_size, bool chunked, uint64_t* sent_hash,
                            milliseconds timeout) {
    StreamedResult result;
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      result.error = "connect failed";
      if (fd >= 0) ::close(fd);
      return result;
    }
    const auto deadline = Clock::now() + timeout;
    std::thread reader([&] { read_response(fd, deadline, result); });
    bool sent = send_all(fd, head, deadline);
    Fnv64 hash;
    std::string piece;
    uint64_t left = body_size;
    for (size_t i = 0; sent && left > 0; ++i) {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(left, piece_size));
      fill_piece(piece, i, n);
      hash.update(piece);
      if (chunked) {
        char size_line[32];
        std::snprintf(size_line, sizeof(size_line), "%zx\r\n", n);
        sent = send_all(fd, size_line, deadline);
        sent = sent && send_all(fd, piece, deadline) && send_all(fd, "\r\n", deadline);
      } else {
        sent = send_all(fd, piece, deadline);
      }
      left -= n;
    }
    if (sent && chunked) sent = send_all(fd, "0\r\n\r\n", deadline);
    reader.join();
    ::close(fd);
    if (sent_hash) *sent_hash = hash.h;
    if (!sent && result.error.empty()) result.error = "send failed";
    return result;
  }

 private:
  static bool send_all(int fd, std::string_view bytes, Clock::time_point deadline) {
    while (!bytes.empty()) {
      pollfd p{fd, POLLOUT, 0};
      const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now()).count();
      if (left <= 0 || ::poll(&p, 1, static_cast<int>(left)) <= 0) return false;
      const ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      bytes.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }

  struct ReadState {
    StreamedResult* result;
    Fnv64 hash;
    bool complete = false;
    bool in_final = false;
  };

  static void read_response(int fd, Clock::time_point deadline, StreamedResult& result) {
    llhttp_settings_t settings;
    llhttp_settings_init(&settings);
    settings.on_headers_complete = [](llhttp_t* p) -> int {
      auto* s = static_cast<ReadState*>(p->data);
      s->result->status = llhttp_get_status_code(p);
      s->in_final = s->result->status >= 200;
      s->result->chunked_response = (p->flags & F_CHUNKED) != 0;
      return 0;
    };
    settings.on_body = [](llhttp_t* p, const char* at, size_t len) -> int {
      auto* s = static_cast<ReadState*>(p->data);
      s->hash.update(std::string_view(at, len));
      s->result->body_size += len;
      return 0;
    };
    settings.on_message_complete = [](llhttp_t* p) -> int {
      auto* s = static_cast<ReadState*>(p->data);
      if (s->in_final) s->complete = true;
      return 0;
    };
    llhttp_t parser;
    llhttp_init(&parser, HTTP_RESPONSE, &settings);
    ReadState state{&result, Fnv64{}};
    parser.data = &state;
    std::vector<char> buf(64 * 1024);
    while (!state.complete) {
      pollfd p{fd, POLLIN, 0};
      const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now()).count();
      if (left <= 0 || ::poll(&p, 1, static_cast<int>(left)) <= 0) {
        result.error = "response timeout";
        return;
      }
      const ssize_t n = ::recv(fd, buf.data(), buf.size(), 0);
      if (n <= 0) {
        result.error = n == 0 ? "eof before response end" : "recv error";
        return;
      }
      const auto err = llhttp_execute(&parser, buf.data(), static_cast<size_t>(n));
      if (err == HPE_PAUSED_UPGRADE) break;
      if (err != HPE_OK) {
        result.error = std::string("parse error: ") + llhttp_get_error_reason(&parser);
        return;
      }
    }
    result.body_hash = state.hash.h;
    result.ok = true;
  }
};

}  // namespace needle::test::proxy
