#include "observe/access_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include <fmt/format.h>

#include "base/json_writer.h"
#include "base/log.h"

namespace needle::observe {
namespace {

void append_key(std::string& out, std::string_view key) {
  out += ",\"";
  out += key;
  out += "\":";
}

void append_string_field(std::string& out, std::string_view key, std::string_view value) {
  append_key(out, key);
  json::append_string(out, value);
}

template <typename T>
void append_number_field(std::string& out, std::string_view key, T value) {
  append_key(out, key);
  fmt::format_to(std::back_inserter(out), "{}", value);
}

// Milliseconds with microsecond resolution: 12.345.
void append_duration_ms(std::string& out, std::string_view key, Duration d) {
  append_key(out, key);
  const auto micros = std::chrono::duration_cast<std::chrono::microseconds>(d).count();
  fmt::format_to(std::back_inserter(out), "{:.3f}", static_cast<double>(micros) / 1000.0);
}

void append_attempt(std::string& out, const AttemptRecord& a) {
  out += "{\"upstream\":";
  json::append_string(out, a.upstream);
  append_number_field(out, "connection_id", a.connection_id);
  append_key(out, "reused");
  out += a.reused ? "true" : "false";
  append_number_field(out, "reuse_count", a.reuse_count);
  append_number_field(out, "idle_age_ms", a.idle_age.count());
  append_number_field(out, "bytes_written", a.bytes_written);
  append_number_field(out, "bytes_read", a.bytes_read);
  append_duration_ms(out, "duration_ms", a.duration);
  append_number_field(out, "status", a.status);
  append_string_field(out, "cause", cause_name(a.cause));
  append_string_field(out, "retry", a.retry_decision);
  out += '}';
}

// The tunnel a 101 opened (docs/access-log.md "Tunnels").
void append_tunnel(std::string& out, const TunnelRecord& t) {
  out += ",\"tunnel\":{\"closed_by\":";
  json::append_string(out, t.closed_by);
  append_number_field(out, "bytes_from_client", t.bytes_from_client);
  append_number_field(out, "bytes_to_client", t.bytes_to_client);
  append_duration_ms(out, "duration_ms", t.duration);
  out += '}';
}

}  // namespace

void append_access_log_line(std::string& out, const RequestRecord& r) {
  out += "{\"time\":\"";
  json::append_time(out, r.start_wall);
  out += '"';
  append_string_field(out, "request_id", r.request_id);
  append_string_field(out, "client", r.client_address);
  append_string_field(out, "method", r.method);
  append_string_field(out, "host", r.host);
  append_string_field(out, "path", r.path);
  append_number_field(out, "status", r.status);
  append_duration_ms(out, "duration_ms", r.duration);
  append_number_field(out, "bytes_in", r.bytes_in);
  append_number_field(out, "bytes_out", r.bytes_out);
  append_string_field(out, "route", r.route);
  append_string_field(out, "cluster", r.cluster);
  // Always present: the final cause ("none" for a success, or for a 5xx the upstream sent
  // itself); the attempts carry the cause of each try.
  append_string_field(out, "cause", cause_name(r.cause));
  if (!r.detail.empty()) append_string_field(out, "detail", r.detail);
  append_number_field(out, "worker", r.worker);
  if (r.tls != nullptr) {
    append_string_field(out, "tls_version", r.tls->version);
    append_string_field(out, "tls_cipher", r.tls->cipher);
    append_key(out, "tls_resumed");
    out += r.tls->resumed ? "true" : "false";
    append_string_field(out, "sni", r.tls->sni);
  }
  if (r.tunnel.opened) append_tunnel(out, r.tunnel);
  append_key(out, "attempts");
  out += '[';
  for (size_t i = 0; i < r.attempts.size(); ++i) {
    if (i > 0) out += ',';
    append_attempt(out, r.attempts[i]);
  }
  out += "]}\n";
}

std::string format_access_log_line(const RequestRecord& record) {
  std::string out;
  out.reserve(512);
  append_access_log_line(out, record);
  return out;
}

// ---- AccessLogSink ----

AccessLogSink::~AccessLogSink() {
  std::lock_guard lock(mutex_);
  close_locked();
}

void AccessLogSink::close_locked() {
  if (owns_fd_ && fd_ >= 0) ::close(fd_);
  fd_ = -1;
  owns_fd_ = false;
}

std::error_code AccessLogSink::open(std::string_view target) {
  if (target == "off") {
    std::lock_guard lock(mutex_);
    close_locked();
    path_.clear();
    enabled_.store(false, std::memory_order_relaxed);
    return {};
  }
  if (target == "stdout") {
    std::lock_guard lock(mutex_);
    close_locked();
    fd_ = STDOUT_FILENO;
    path_.clear();
    enabled_.store(true, std::memory_order_relaxed);
    return {};
  }
  if (target.empty()) return std::make_error_code(std::errc::invalid_argument);
  std::string path(target);
  const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return {errno, std::system_category()};
  std::lock_guard lock(mutex_);
  close_locked();
  fd_ = fd;
  owns_fd_ = true;
  path_ = std::move(path);
  enabled_.store(true, std::memory_order_relaxed);
  return {};
}

std::error_code AccessLogSink::reopen() {
  std::string path;
  {
    std::lock_guard lock(mutex_);
    if (path_.empty()) return {};
    path = path_;
  }
  // Open outside the lock (open(2) on a slow disk must not stall flushing workers).
  const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return {errno, std::system_category()};
  std::lock_guard lock(mutex_);
  if (path_ != path) {  // open() to another target raced with us; it wins
    ::close(fd);
    return {};
  }
  close_locked();
  fd_ = fd;
  owns_fd_ = true;
  return {};
}

void AccessLogSink::write(std::string_view data) {
  if (data.empty()) return;
  std::lock_guard lock(mutex_);
  if (fd_ < 0) return;
  while (!data.empty()) {
    const ssize_t n = ::write(fd_, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      // Lost lines are counted; the first loss is reported once on the operational log.
      if (write_errors_.fetch_add(1, std::memory_order_relaxed) == 0) {
        log::error("access_log", "write failed: {}", std::generic_category().message(errno));
      }
      return;
    }
    bytes_written_.fetch_add(static_cast<uint64_t>(n), std::memory_order_relaxed);
    data.remove_prefix(static_cast<size_t>(n));
  }
}

// ---- AccessLogWriter ----

AccessLogWriter::AccessLogWriter(AccessLogSink& sink, size_t flush_threshold)
    : sink_(sink), flush_threshold_(flush_threshold) {
  buffer_.reserve(flush_threshold_ + 4096);
}

AccessLogWriter::~AccessLogWriter() {
  flush();
}

void AccessLogWriter::append(const RequestRecord& record) {
  if (!sink_.enabled()) return;
  append_access_log_line(buffer_, record);
  if (buffer_.size() > flush_threshold_) flush();
}

void AccessLogWriter::flush() {
  if (buffer_.empty()) return;
  sink_.write(buffer_);
  buffer_.clear();  // keeps the capacity
}

}  // namespace needle::observe
