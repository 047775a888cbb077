#pragma once
// What a worker gives the sessions it runs. Owned by the worker; touched only on its thread.
#include <memory>
#include <unordered_set>
#include <vector>

#include "base/buffer_pool.h"
#include "base/clock.h"
#include "http/parser.h"
#include "net/io_types.h"
#include "observe/request_record.h"
#include "proxy/cluster_runtime.h"
#include "proxy/request_id.h"

namespace needle::proxy {

class DownstreamSession;
class KeepAlivePark;

// Receives each finished request (access log, metrics, alerts). Runs on the worker thread.
class RequestObserver {
 public:
  virtual ~RequestObserver() = default;
  virtual void on_request_done(const observe::RequestRecord& record) = 0;
};

// Response parsers lent to exchanges: an idle client connection holds none (each parser keeps
// its header slots and strings warm, about 2 KiB), and a warm parser allocates nothing.
class ResponseParserPool {
 public:
  std::unique_ptr<http::ResponseParser> acquire() {
    if (spare_.empty()) {
      return std::make_unique<http::ResponseParser>(
          http::ParserLimits{.max_request_line = 8 * 1024,
                             .max_header_bytes = 64 * 1024,
                             .max_header_count = 200,
                             .max_body_bytes = ~uint64_t{0}});
    }
    auto parser = std::move(spare_.back());
    spare_.pop_back();
    if (spare_.size() < low_water_) low_water_ = spare_.size();
    return parser;
  }
  void give_back(std::unique_ptr<http::ResponseParser> parser) {
    if (parser && spare_.size() < kMaxSpare) spare_.push_back(std::move(parser));
  }
  // As BufferPool::release_unused: frees the parsers no exchange needed since the last call.
  size_t release_unused() {
    const size_t unused = low_water_;
    spare_.erase(spare_.begin(), spare_.begin() + static_cast<std::ptrdiff_t>(unused));
    low_water_ = spare_.size();
    return unused;
  }

 private:
  static constexpr size_t kMaxSpare = 1024;
  std::vector<std::unique_ptr<http::ResponseParser>> spare_;
  size_t low_water_ = 0;
};

struct WorkerContext {
  WorkerContext(unsigned index_in, net::Executor executor_in, const Clock& clock_in)
      : index(index_in), executor(std::move(executor_in)), clock(clock_in) {}

  unsigned index;
  net::Executor executor;
  const Clock& clock;
  std::shared_ptr<WorkerRuntime> runtime;  // current config generation (swapped on reload)
  RequestObserver* observer = nullptr;
  RequestIdGenerator request_ids;
  BufferPool client_buffers{16 * 1024, 1024};
  BufferPool upstream_buffers{64 * 1024, 256};
  ResponseParserPool response_parsers;
  bool draining = false;
  std::unordered_set<DownstreamSession*> sessions;  // live sessions, for drain and parking
  // Clients idle in keep-alive longer than a sweep period wait here without a session; null: the
  // sessions never park (tests that run sessions without a worker).
  KeepAlivePark* park = nullptr;
  uint64_t idle_epoch = 0;  // park sweeps done so far
};

}  // namespace needle::proxy
