#pragma once
// The access log: one JSON object per request, one line each (docs/access-log.md).
//
// Threading: one AccessLogSink per process (shared by every worker); one AccessLogWriter per
// worker, touched only by that worker's thread. Workers format into their own buffer with no
// lock; the sink's mutex is taken only when a writer flushes a whole buffer (>= 32 KiB, or the
// worker's 100 ms timer, or shutdown), and by reopen().
#include <atomic>
#include <cstddef>
#include <mutex>
#include <string>
#include <string_view>
#include <system_error>

#include "observe/request_record.h"

namespace needle::observe {

// The record as one JSON object followed by "\n".
std::string format_access_log_line(const RequestRecord& record);
// Same, appended to `out` (no allocation once `out` has capacity).
void append_access_log_line(std::string& out, const RequestRecord& record);

class AccessLogSink {
 public:
  AccessLogSink() = default;  // disabled ("off") until open() succeeds
  ~AccessLogSink();
  AccessLogSink(const AccessLogSink&) = delete;
  AccessLogSink& operator=(const AccessLogSink&) = delete;

  // ServerConfig::access_log: "stdout", "off", or a file path, opened
  // O_WRONLY|O_APPEND|O_CREAT|O_CLOEXEC with mode 0644. On error the sink keeps its previous
  // target and the errno is returned.
  std::error_code open(std::string_view target);
  // Reopens the file by path (SIGUSR1 after logrotate moved it). Any thread; no-op for
  // stdout/off. On error the old file stays in use.
  std::error_code reopen();

  bool enabled() const { return enabled_.load(std::memory_order_relaxed); }
  // Writes the whole buffer under the sink mutex (retrying short writes and EINTR), so lines
  // from different workers never interleave. Errors are counted, not thrown.
  void write(std::string_view data);

  uint64_t write_errors() const { return write_errors_.load(std::memory_order_relaxed); }
  uint64_t bytes_written() const { return bytes_written_.load(std::memory_order_relaxed); }

 private:
  void close_locked();

  std::mutex mutex_;  // guards fd_, owns_fd_, path_ and every write(2)
  int fd_ = -1;
  bool owns_fd_ = false;
  std::string path_;  // empty for stdout/off
  std::atomic<bool> enabled_{false};
  std::atomic<uint64_t> write_errors_{0};
  std::atomic<uint64_t> bytes_written_{0};
};

class AccessLogWriter {
 public:
  static constexpr size_t kFlushThreshold = 32 * 1024;

  explicit AccessLogWriter(AccessLogSink& sink, size_t flush_threshold = kFlushThreshold);
  ~AccessLogWriter();  // flushes
  AccessLogWriter(const AccessLogWriter&) = delete;
  AccessLogWriter& operator=(const AccessLogWriter&) = delete;

  // Formats the record into the buffer; flushes once the buffer exceeds the threshold.
  // Does nothing when the sink is off.
  void append(const RequestRecord& record);
  // Hands the buffered lines to the sink (the worker's 100 ms timer and shutdown call this).
  void flush();

  size_t buffered_bytes() const { return buffer_.size(); }

 private:
  AccessLogSink& sink_;
  size_t flush_threshold_;
  std::string buffer_;  // whole lines only
};

}  // namespace needle::observe
