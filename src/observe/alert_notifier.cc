#include "observe/alert_notifier.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <charconv>
#include <deque>
#include <mutex>
#include <thread>

#include <fmt/format.h>
#include <asio/co_spawn.hpp>
#include <asio/connect.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/post.hpp>
#include <asio/read_until.hpp>
#include <asio/redirect_error.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>

#include "base/json_writer.h"
#include "base/log.h"

namespace needle::observe {

// ---- URL ----

std::optional<WebhookUrl> parse_webhook_url(std::string_view url) {
  constexpr std::string_view kScheme = "http://";
  if (url.size() < kScheme.size()) return std::nullopt;
  for (size_t i = 0; i < kScheme.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(url[i])) != kScheme[i]) return std::nullopt;
  }
  url.remove_prefix(kScheme.size());
  // Spaces and control bytes would end up raw in the request line and Host header.
  for (char c : url) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7F) return std::nullopt;
  }
  const size_t path_start = url.find_first_of("/?#");
  std::string_view authority = url.substr(0, path_start);
  std::string_view path = path_start == std::string_view::npos ? "" : url.substr(path_start);
  if (!path.empty() && path.front() != '/') return std::nullopt;  // "?query" with no path
  if (path.find('#') != std::string_view::npos) path = path.substr(0, path.find('#'));
  if (authority.empty() || authority.find('@') != std::string_view::npos) return std::nullopt;

  WebhookUrl out;
  out.authority = std::string(authority);
  out.path = path.empty() ? "/" : std::string(path);
  std::string_view host = authority;
  std::string_view port;
  if (authority.front() == '[') {  // RFC 3986 section 3.2.2: IP-literal
    const size_t close = authority.find(']');
    if (close == std::string_view::npos || close == 1) return std::nullopt;
    host = authority.substr(1, close - 1);
    std::string_view rest = authority.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return std::nullopt;
      port = rest.substr(1);
      if (port.empty()) return std::nullopt;
    }
  } else if (const size_t colon = authority.rfind(':'); colon != std::string_view::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
    if (port.empty() || host.find(':') != std::string_view::npos) return std::nullopt;
  }
  if (host.empty()) return std::nullopt;
  if (!port.empty()) {
    unsigned value = 0;
    const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (ec != std::errc() || end != port.data() + port.size() || value == 0 || value > 65535) {
      return std::nullopt;
    }
    out.port = static_cast<uint16_t>(value);
  }
  out.host = std::string(host);
  return out;
}

// ---- Batches ----

namespace {

template <typename Map>
void count(Map& map, std::string_view key) {
  auto it = map.find(key);
  if (it == map.end()) it = map.emplace(std::string(key), 0).first;
  ++it->second;
}

// Slack mrkdwn control characters (api.slack.com "Formatting text": escape &, <, >).
void append_slack_escaped(std::string& out, std::string_view text) {
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '\n':
      case '\r':
      case '\t':
        out += ' ';
        break;  // one line
      default:
        out += c;
    }
  }
}

std::string format_seconds(Millis window) {
  return fmt::format("{}", static_cast<double>(window.count()) / 1000.0);
}

}  // namespace

void AlertBatch::add(const RequestRecord& record) {
  ++total;
  ++by_status[record.status];
  count(by_cause, cause_name(record.cause));
  count(by_cluster, record.cluster.empty() ? std::string_view("none") : record.cluster);
  if (samples.size() < kMaxSamples) {
    AlertSample& s = samples.emplace_back();
    s.request_id = record.request_id;
    s.status = record.status;
    s.cause = record.cause;
    s.method = record.method;
    s.path = record.path;
    if (!record.attempts.empty()) s.upstream = record.attempts.back().upstream;
    s.detail = record.detail;
  }
}

std::string format_alert_text(const AlertBatch& batch, Millis window, std::string_view instance) {
  std::string out = "needle";
  if (!instance.empty()) {
    out += " on ";
    append_slack_escaped(out, instance);
  }
  fmt::format_to(std::back_inserter(out), ": {} 5xx in {}s (", batch.total, format_seconds(window));
  bool first = true;
  for (const auto& [status, n] : batch.by_status) {
    fmt::format_to(std::back_inserter(out), "{}{} x{}", first ? "" : ", ", status, n);
    first = false;
  }
  out += "); causes: ";
  first = true;
  for (const auto& [cause, n] : batch.by_cause) {
    out += first ? "" : ", ";
    append_slack_escaped(out, cause);
    fmt::format_to(std::back_inserter(out), " x{}", n);
    first = false;
  }
  out += "; clusters: ";
  first = true;
  for (const auto& [cluster, n] : batch.by_cluster) {
    out += first ? "" : ", ";
    append_slack_escaped(out, cluster);
    fmt::format_to(std::back_inserter(out), " x{}", n);
    first = false;
  }
  if (!batch.samples.empty()) {
    const AlertSample& s = batch.samples.front();
    out += ". e.g. ";
    append_slack_escaped(out, s.method);
    out += ' ';
    append_slack_escaped(out, s.path.size() > 200 ? s.path.substr(0, 200) + "..." : s.path);
    fmt::format_to(std::back_inserter(out), " -> {} {}", s.status, cause_name(s.cause));
    if (!s.upstream.empty()) {
      out += " via ";
      append_slack_escaped(out, s.upstream);
    }
    if (!s.request_id.empty()) {
      out += " (request ";
      append_slack_escaped(out, s.request_id);
      out += ')';
    }
  }
  return out;
}

std::string format_alert_batch(const AlertBatch& batch, Millis window, bool slack_text,
                               std::string_view instance) {
  std::string out = "{\"source\":\"needle\",\"instance\":";
  json::append_string(out, instance);
  out += ",\"window_start\":\"";
  json::append_time(out, batch.window_start);
  fmt::format_to(std::back_inserter(out), "\",\"window_seconds\":{},\"total\":{},\"by_status\":{{",
                 format_seconds(window), batch.total);
  bool first = true;
  for (const auto& [status, n] : batch.by_status) {
    fmt::format_to(std::back_inserter(out), "{}\"{}\":{}", first ? "" : ",", status, n);
    first = false;
  }
  auto object = [&](std::string_view key, const std::map<std::string, uint64_t, std::less<>>& map) {
    out += "},\"";
    out += key;
    out += "\":{";
    bool first_entry = true;
    for (const auto& [name, n] : map) {
      if (!first_entry) out += ',';
      first_entry = false;
      json::append_string(out, name);
      fmt::format_to(std::back_inserter(out), ":{}", n);
    }
  };
  object("by_cause", batch.by_cause);
  object("by_cluster", batch.by_cluster);
  out += "},\"samples\":[";
  for (size_t i = 0; i < batch.samples.size(); ++i) {
    const AlertSample& s = batch.samples[i];
    if (i > 0) out += ',';
    out += "{\"request_id\":";
    json::append_string(out, s.request_id);
    fmt::format_to(std::back_inserter(out), ",\"status\":{},\"cause\":\"{}\",\"method\":", s.status,
                   cause_name(s.cause));
    json::append_string(out, s.method);
    out += ",\"path\":";
    json::append_string(out, s.path);
    out += ",\"upstream\":";
    json::append_string(out, s.upstream);
    out += ",\"detail\":";
    json::append_string(out, s.detail);
    out += '}';
  }
  out += ']';
  if (slack_text) {
    out += ",\"text\":";
    json::append_string(out, format_alert_text(batch, window, instance));
  }
  out += "}";
  return out;
}

// ---- Notifier ----

namespace {

bool contains_status(const std::vector<int>& statuses, int status) {
  return std::find(statuses.begin(), statuses.end(), status) != statuses.end();
}

std::string host_name() {
  char buffer[256] = {};
  if (::gethostname(buffer, sizeof buffer - 1) != 0) return "unknown";
  return buffer;
}

}  // namespace

struct AlertNotifier::Impl {
  Impl(config::AlertsConfig c, AlertNotifierOptions o)
      : config(std::move(c)), options(std::move(o)), window_timer(io), wake(io), backoff(io) {
    if (config.window <= Millis(0)) config.window = Millis(1000);
    if (config.max_queue == 0) config.max_queue = 1;
    if (options.max_tries == 0) options.max_tries = 1;
    if (options.instance.empty()) options.instance = host_name();
  }

  config::AlertsConfig config;
  AlertNotifierOptions options;
  WebhookUrl url;

  // Shared with the workers; guarded by mutex.
  std::mutex mutex;
  bool accepting = false;
  AlertBatch open_batch;

  std::atomic<uint64_t> events{0}, events_sent{0}, events_dropped{0};
  std::atomic<uint64_t> batches_sent{0}, batches_failed{0}, post_errors{0};

  // Notifier thread only.
  asio::io_context io;
  asio::steady_timer window_timer;
  asio::steady_timer wake;     // the sender parks on it while nothing is pending
  asio::steady_timer backoff;  // wait between tries
  std::deque<AlertBatch> pending;
  bool stopping = false;

  std::thread thread;
  std::once_flag stop_once;

  // Closes the open window (if it holds events) into the pending queue.
  void close_window() {
    AlertBatch closed;
    {
      std::lock_guard lock(mutex);
      closed = std::move(open_batch);
      open_batch = AlertBatch{};
      open_batch.window_start = std::chrono::system_clock::now();
    }
    if (closed.empty()) return;
    if (pending.size() >= config.max_queue) {
      events_dropped += pending.front().total;
      pending.pop_front();
    }
    pending.push_back(std::move(closed));
    wake.cancel();
  }

  asio::awaitable<void> run_windows() {
    while (!stopping) {
      window_timer.expires_after(config.window);
      std::error_code ec;
      co_await window_timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      if (stopping) break;  // stop() closed the last window itself
      close_window();
    }
  }

  asio::awaitable<void> run_sender() {
    for (;;) {
      while (!pending.empty()) {
        AlertBatch batch = std::move(pending.front());
        pending.pop_front();
        co_await deliver(batch);
      }
      if (stopping) break;
      wake.expires_at(asio::steady_timer::time_point::max());
      std::error_code ec;
      co_await wake.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
  }

  asio::awaitable<void> deliver(const AlertBatch& batch) {
    const std::string body =
        format_alert_batch(batch, config.window, config.slack_text, options.instance);
    Millis delay = options.first_backoff;
    for (uint32_t attempt = 1;; ++attempt) {
      const int status = co_await post_once(body);
      if (status >= 200 && status < 300) {
        ++batches_sent;
        events_sent += batch.total;
        co_return;
      }
      ++post_errors;
      if (attempt >= options.max_tries || stopping) break;
      log::debug("alerts", "webhook POST failed (status {}); retry in {} ms", status,
                 delay.count());
      backoff.expires_after(delay);
      std::error_code ec;
      co_await backoff.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      delay *= 2;
    }
    ++batches_failed;
    events_dropped += batch.total;
    log::warn("alerts", "webhook {} unreachable: dropped a batch of {} events",
              config.webhook.value_or(""), batch.total);
  }

  // One HTTP/1.1 POST; returns the response status, or 0 when none was read.
  asio::awaitable<int> post_once(const std::string& body) {
    auto executor = co_await asio::this_coro::executor;
    // Shared with the deadline handler: an expiry may already be queued when this coroutine
    // returns, so the handler keeps the socket alive instead of pointing into our frame.
    struct Exchange {
      explicit Exchange(asio::any_io_executor ex) : resolver(ex), socket(ex) {}
      asio::ip::tcp::resolver resolver;
      asio::ip::tcp::socket socket;
    };
    auto exchange = std::make_shared<Exchange>(executor);
    asio::ip::tcp::resolver& resolver = exchange->resolver;
    asio::ip::tcp::socket& socket = exchange->socket;
    asio::steady_timer deadline(executor);
    auto arm = [&](Millis timeout) {
      deadline.expires_after(timeout);
      deadline.async_wait([exchange](std::error_code ec) {
        if (ec) return;  // cancelled: re-armed, or the exchange finished
        exchange->resolver.cancel();
        std::error_code ignored;
        exchange->socket.close(ignored);
      });
    };
    std::error_code ec;
    arm(options.connect_timeout);
    auto endpoints = co_await resolver.async_resolve(url.host, std::to_string(url.port),
                                                     asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return 0;
    co_await asio::async_connect(socket, endpoints, asio::redirect_error(asio::use_awaitable, ec));
    if (ec || !socket.is_open()) co_return 0;

    arm(options.request_timeout);
    const std::string head = fmt::format(
        "POST {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: needle\r\nContent-Type: application/json\r\n"
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        url.path, url.authority, body.size());
    const std::array<asio::const_buffer, 2> buffers = {asio::buffer(head), asio::buffer(body)};
    co_await asio::async_write(socket, buffers, asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return 0;

    std::string response;
    co_await asio::async_read_until(socket, asio::dynamic_buffer(response, 8192), "\r\n",
                                    asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return 0;
    // RFC 9112 section 4: status-line = HTTP-version SP status-code SP [reason-phrase]
    if (response.size() < 12 || response.compare(0, 7, "HTTP/1.") != 0 || response[8] != ' ') {
      co_return 0;
    }
    int status = 0;
    const auto [end, parse_ec] = std::from_chars(response.data() + 9, response.data() + 12, status);
    if (parse_ec != std::errc() || end != response.data() + 12) co_return 0;
    std::error_code ignored;
    socket.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
    co_return status;
  }
};

AlertNotifier::AlertNotifier(config::AlertsConfig config, AlertNotifierOptions options)
    : impl_(std::make_unique<Impl>(std::move(config), std::move(options))) {}

AlertNotifier::~AlertNotifier() {
  stop();
}

bool AlertNotifier::matches(const config::AlertsConfig& config, const RequestRecord& record) {
  if (!contains_status(config.statuses, record.status)) return false;
  if (config.causes.empty()) return true;
  const std::string_view cause = cause_name(record.cause);
  return std::find(config.causes.begin(), config.causes.end(), cause) != config.causes.end();
}

bool AlertNotifier::matches(const RequestRecord& record) const {
  return matches(impl_->config, record);
}

std::error_code AlertNotifier::start() {
  Impl& impl = *impl_;
  if (impl.thread.joinable()) return {};
  if (!impl.config.webhook) return std::make_error_code(std::errc::invalid_argument);
  auto url = parse_webhook_url(*impl.config.webhook);
  if (!url) return std::make_error_code(std::errc::invalid_argument);
  impl.url = std::move(*url);
  {
    std::lock_guard lock(impl.mutex);
    impl.open_batch.window_start = std::chrono::system_clock::now();
    impl.accepting = true;
  }
  asio::co_spawn(impl.io, impl.run_windows(), asio::detached);
  asio::co_spawn(impl.io, impl.run_sender(), asio::detached);
  impl.thread = std::thread([&impl] { impl.io.run(); });
  return {};
}

bool AlertNotifier::notify(const RequestRecord& record) {
  if (!matches(record)) return false;
  {
    std::lock_guard lock(impl_->mutex);
    if (!impl_->accepting) return false;
    impl_->open_batch.add(record);
    ++impl_->events;
  }
  return true;
}

void AlertNotifier::stop() {
  Impl& impl = *impl_;
  {
    std::lock_guard lock(impl.mutex);
    impl.accepting = false;
  }
  if (!impl.thread.joinable()) return;
  std::call_once(impl.stop_once, [&impl] {
    asio::post(impl.io, [&impl] {
      impl.stopping = true;
      impl.close_window();  // the last, partial window
      impl.window_timer.cancel();
      impl.backoff.cancel();
      impl.wake.cancel();
    });
    impl.thread.join();
  });
}

AlertStats AlertNotifier::stats() const {
  const Impl& impl = *impl_;
  AlertStats s;
  s.events = impl.events.load();
  s.events_sent = impl.events_sent.load();
  s.events_dropped = impl.events_dropped.load();
  s.batches_sent = impl.batches_sent.load();
  s.batches_failed = impl.batches_failed.load();
  s.post_errors = impl.post_errors.load();
  return s;
}

}  // namespace needle::observe
