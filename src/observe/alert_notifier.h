#pragma once
// 5xx webhook notifier (DESIGN.md "Observability": batched, rate-limited, never blocking the data
// path). Workers hand it matching requests; once per window it POSTs one JSON summary to an
// http:// webhook (Slack-compatible "text" optional), from its own thread and io_context.
//
// Threading: notify() may be called from any worker; it only folds the request into the open
// window's AlertBatch under a short mutex (counts plus at most 5 samples: no I/O, bounded
// memory however many 5xx arrive). Everything else (window timer, pending queue, HTTP client,
// backoff) runs on the notifier's thread. Closed windows wait in a queue of at most
// AlertsConfig::max_queue batches; when it is full the oldest batch is dropped and its events
// counted as dropped. A failed POST is retried with exponential backoff, then dropped and counted.
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "base/clock.h"
#include "config/config.h"
#include "observe/alert_stats.h"
#include "observe/request_record.h"

namespace needle::observe {

// "http://host[:port][/path]" (host may be "[v6]"); nullopt for anything else (https, userinfo,
// bad port, empty host).
struct WebhookUrl {
  std::string host;  // without brackets
  uint16_t port = 80;
  std::string path = "/";
  std::string authority;  // as written, for the Host header
};
std::optional<WebhookUrl> parse_webhook_url(std::string_view url);

struct AlertSample {
  std::string request_id;
  int status = 0;
  Cause cause = Cause::none;
  std::string method, path, upstream, detail;  // upstream: the last attempt's address
};

// One window's worth of matching requests.
struct AlertBatch {
  static constexpr size_t kMaxSamples = 5;

  std::chrono::system_clock::time_point window_start;
  uint64_t total = 0;
  std::map<int, uint64_t> by_status;
  std::map<std::string, uint64_t, std::less<>> by_cause;
  std::map<std::string, uint64_t, std::less<>> by_cluster;
  std::vector<AlertSample> samples;  // the first kMaxSamples requests of the window

  void add(const RequestRecord& record);
  bool empty() const { return total == 0; }
};

// The webhook body: {"source":"needle","instance":..,"window_start":..,"window_seconds":..,
// "total":..,"by_status":{..},"by_cause":{..},"by_cluster":{..},"samples":[..],"text":..}
// ("text" only with slack_text).
std::string format_alert_batch(const AlertBatch& batch, Millis window, bool slack_text,
                               std::string_view instance);
// One line for humans (and Slack's "text": &, < and > are escaped as Slack requires).
std::string format_alert_text(const AlertBatch& batch, Millis window, std::string_view instance);

struct AlertNotifierOptions {
  uint32_t max_tries = 3;                 // per batch, first try included
  Millis first_backoff = Millis(1000);    // wait before the 2nd try; doubles each time (1 s, 2 s)
  Millis connect_timeout = Millis(2000);  // resolve + TCP connect
  Millis request_timeout = Millis(5000);  // write the request + read the status line
  std::string instance;                   // "instance" field; empty: gethostname()
};

class AlertNotifier {
 public:
  explicit AlertNotifier(config::AlertsConfig config, AlertNotifierOptions options = {});
  ~AlertNotifier();  // stop()
  AlertNotifier(const AlertNotifier&) = delete;
  AlertNotifier& operator=(const AlertNotifier&) = delete;

  // Status listed in config.statuses and (config.causes empty, or the final cause's name listed).
  static bool matches(const config::AlertsConfig& config, const RequestRecord& record);
  bool matches(const RequestRecord& record) const;

  // Parses the webhook URL and starts the notifier thread. Errors: invalid_argument when
  // config.webhook is unset or not an http:// URL (nothing is started then).
  std::error_code start();

  // Any thread; never waits for I/O. Returns false (and counts nothing) when the request does
  // not match or the notifier is not running.
  bool notify(const RequestRecord& record);

  // Closes the open window, tries to deliver every pending batch (no more backoff: at most one
  // more try each), then joins the thread. Idempotent; bounded by the timeouts.
  void stop();

  AlertStats stats() const;  // any thread

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace needle::observe
