#pragma once
// Helpers for the race_*_test.cc end-to-end tests of the keep-alive close race (DESIGN.md "The
// race-free pool"): a generated needle.toml (workers = 1, access log on stdout, admin on a free
// port), access-log lines and /pools read as JSON (support/json_reader.h), an admin GET, and a
// bounded multi-client driver that sends GET/POST with scripted gaps and counts every failure.
#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <mutex>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "support/free_port.h"
#include "support/http_client.h"
#include "support/json_reader.h"
#include "support/needle_process.h"

namespace needle::test::race {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// ---- needle -----------------------------------------------------------------------------------

inline std::string addr(int port) { return "\"127.0.0.1:" + std::to_string(port) + "\""; }

// needle.toml: one worker, access log on stdout, admin on admin_port, route / -> cluster "app"
// holding `hosts`, plus raw `cluster_extra` lines (e.g. retry_non_idempotent = "never").
struct RaceConfig {
  std::vector<int> hosts;
  std::string cluster_extra;
  int admin_port = 0;

  std::string render(int listen_port) const {
    std::string t = "[server]\nworkers = 1\naccess_log = \"stdout\"\n";
    t += "[[listener]]\naddress = " + addr(listen_port) + "\n";
    t += "[admin]\naddress = " + (admin_port > 0 ? addr(admin_port) : "\"off\"") + "\n";
    t += "[[route]]\npath_prefix = \"/\"\ncluster = \"app\"\n";
    t += "[cluster.app]\nhosts = [";
    for (size_t i = 0; i < hosts.size(); ++i) t += (i ? ", " : "") + addr(hosts[i]);
    t += "]\n" + cluster_extra + "\n";
    return t;
  }
};

// Starts needle with the admin listener on a free port (cfg.admin_port is filled in).
inline std::unique_ptr<NeedleProcess> start_needle(RaceConfig& cfg) {
  if (cfg.admin_port == 0) cfg.admin_port = free_port();
  NeedleOptions options;
  options.also_wait_for.push_back(cfg.admin_port);
  RaceConfig copy = cfg;
  return NeedleProcess::start([copy](int port) { return copy.render(port); }, options);
}

// Every access-log line parsed (lines that do not parse are returned as null objects, which
// make the callers' field checks fail visibly).
inline std::vector<Json> access_log(const NeedleProcess& needle) {
  std::vector<Json> out;
  for (const auto& line : needle.access_log_lines()) {
    auto v = JsonReader::parse(line);
    out.push_back(v ? std::move(*v) : Json{});
  }
  return out;
}

// Waits (bounded) until n lines are in the access log (it is flushed every 100 ms).
inline std::vector<Json> wait_access_log(const NeedleProcess& needle, size_t n,
                                         milliseconds timeout = milliseconds(3000)) {
  needle.wait_for_access_log_lines(n, timeout);
  return access_log(needle);
}

// GET on the admin listener; the body, or "" on failure.
inline std::string admin_get(int admin_port, std::string_view path) {
  auto r = get(admin_port, path, {}, milliseconds(2000));
  return r && r->status == 200 ? r->body : std::string();
}

// The first pool in /pools (workers = 1 and one host in most tests), or the one for `host`.
inline std::optional<Json> pool_snapshot(int admin_port, std::string_view host = {}) {
  auto doc = JsonReader::parse(admin_get(admin_port, "/pools"));
  if (!doc) return std::nullopt;
  for (const Json& worker : doc->operator[]("workers").items) {
    for (const Json& pool : worker["pools"].items) {
      if (host.empty() || pool["host"].str() == host) return pool;
    }
  }
  return std::nullopt;
}

inline std::string host_name(int port) { return "127.0.0.1:" + std::to_string(port); }

// ---- a bounded multi-client driver ------------------------------------------------------------

struct DriveOptions {
  int port = 0;                 // where the clients connect (needle)
  int clients = 8;              // threads, one keep-alive client connection each
  int requests_per_client = 10;
  milliseconds gap_min{250};    // pause between a response and the next request
  milliseconds gap_max{350};
  std::string get_path = "/get";
  std::string post_path = "/post";
  std::string post_body = "{\"item\":42}";
  std::vector<std::pair<std::string, std::string>> post_headers = {
      {"Content-Type", "application/json"}};
  uint32_t seed = 1;
  milliseconds request_timeout{5000};
};

struct DriveResult {
  int sent = 0;
  int ok_2xx = 0;
  int non_2xx = 0;        // a response, but not 2xx
  int client_errors = 0;  // no response: reset, EOF, timeout, parse error
  std::vector<std::string> failures;  // the first few, for the failure message

  int failed() const { return non_2xx + client_errors; }
};

// Each client alternates GET and POST (odd clients start with POST) with gaps drawn uniformly
// from [gap_min, gap_max]. A client whose connection failed reconnects for its next request, so
// one failure is counted once. Every wait is bounded by request_timeout.
inline DriveResult drive(const DriveOptions& o) {
  std::mutex mutex;
  DriveResult total;
  std::vector<std::thread> threads;
  for (int c = 0; c < o.clients; ++c) {
    threads.emplace_back([&, c] {
      std::mt19937 rng(o.seed * 7919u + static_cast<uint32_t>(c));
      std::uniform_int_distribution<int> gap(static_cast<int>(o.gap_min.count()),
                                             static_cast<int>(o.gap_max.count()));
      // Start staggered so the clients' requests do not march in lock step.
      std::this_thread::sleep_for(milliseconds(gap(rng) / o.clients * c));
      HttpClient client;
      DriveResult mine;
      for (int i = 0; i < o.requests_per_client; ++i) {
        if (i > 0) std::this_thread::sleep_for(milliseconds(gap(rng)));
        if (!client.connected() && !client.connect(o.port)) {
          ++mine.sent;
          ++mine.client_errors;
          mine.failures.push_back("connect failed");
          continue;
        }
        const bool post = (i + c) % 2 == 1;
        ++mine.sent;
        auto r = post ? client.request("POST", o.post_path, o.post_body, o.post_headers,
                                       o.request_timeout)
                      : client.get(o.get_path, {}, o.request_timeout);
        if (!r) {
          ++mine.client_errors;
          mine.failures.push_back(std::string(post ? "POST" : "GET") + " client " +
                                  std::to_string(c) + " #" + std::to_string(i) + ": " +
                                  to_string(client.last_error()) + " " +
                                  client.last_error_detail());
          client.close();
          continue;
        }
        if (r->status >= 200 && r->status < 300) {
          ++mine.ok_2xx;
        } else {
          ++mine.non_2xx;
          mine.failures.push_back(std::string(post ? "POST" : "GET") + " -> " +
                                  std::to_string(r->status) + " " + r->body);
        }
        if (!r->keep_alive) client.close();
      }
      std::lock_guard lock(mutex);
      total.sent += mine.sent;
      total.ok_2xx += mine.ok_2xx;
      total.non_2xx += mine.non_2xx;
      total.client_errors += mine.client_errors;
      for (auto& f : mine.failures) {
        if (total.failures.size() < 10) total.failures.push_back(std::move(f));
      }
    });
  }
  for (auto& t : threads) t.join();
  return total;
}

inline std::string describe(const DriveResult& r) {
  std::string s = "sent " + std::to_string(r.sent) + ", 2xx " + std::to_string(r.ok_2xx) +
                  ", non-2xx " + std::to_string(r.non_2xx) + ", client errors " +
                  std::to_string(r.client_errors);
  for (const auto& f : r.failures) s += "\n  " + f;
  return s;
}

}  // namespace needle::test::race
