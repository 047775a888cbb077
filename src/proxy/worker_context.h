#pragma once
// What a worker gives the sessions it runs. Owned by the worker; touched only on its thread.
#include <memory>
#include <unordered_set>

#include <asio/any_io_executor.hpp>

#include "base/buffer_pool.h"
#include "base/clock.h"
#include "observe/request_record.h"
#include "proxy/cluster_runtime.h"
#include "proxy/request_id.h"

namespace needle::proxy {

class DownstreamSession;

// Receives each finished request (access log, metrics, alerts). Runs on the worker thread.
class RequestObserver {
 public:
  virtual ~RequestObserver() = default;
  virtual void on_request_done(const observe::RequestRecord& record) = 0;
};

struct WorkerContext {
  WorkerContext(unsigned index_in, asio::any_io_executor executor_in, const Clock& clock_in)
      : index(index_in), executor(std::move(executor_in)), clock(clock_in) {}

  unsigned index;
  asio::any_io_executor executor;
  const Clock& clock;
  std::shared_ptr<WorkerRuntime> runtime;  // current config generation (swapped on reload)
  RequestObserver* observer = nullptr;
  RequestIdGenerator request_ids;
  BufferPool client_buffers{16 * 1024, 1024};
  BufferPool upstream_buffers{64 * 1024, 256};
  bool draining = false;
  std::unordered_set<DownstreamSession*> sessions;  // live sessions, for drain
};

}  // namespace needle::proxy
