#pragma once
// A worker's io_context, with one addition: its pending operations can be destroyed before the
// io_context is. A worker stopped by the drain timeout still has suspended session and exchange
// coroutines queued in it; their frames point into the worker (its WorkerContext, observer and
// connection count), which C++ destroys before the io_context member that owns the frames. The
// worker destroys them first, while everything they point to is alive.
#include <asio/io_context.hpp>

namespace needle::server {

class WorkerIoContext : public asio::io_context {
 public:
  using asio::io_context::io_context;

  // Shuts the services down: every handler still queued or waiting (suspended coroutine frames
  // among them) is destroyed now; I/O objects destroyed later still find their services. The
  // io_context's own destructor repeats the (idempotent) shutdown and then destroys the services.
  // Only after run() has returned for good.
  void destroy_pending_operations() { shutdown(); }
};

}  // namespace needle::server
