#pragma once
// What a worker gives the sessions it runs. Owned by the worker; touched only on its thread.
#include <memory>
#include <unordered_set>
#include <utility>
#include <vector>

#include "base/buffer_pool.h"
#include "base/clock.h"
#include "base/spare_list.h"
#include "http/parser.h"
#include "net/io_types.h"
#include "observe/idle_close_record.h"
#include "observe/request_record.h"
#include "proxy/cluster_runtime.h"
#include "proxy/overload_state.h"
#include "proxy/request_id.h"

namespace needle::proxy {

class CloseRaceWatch;
class DownstreamSession;
class KeepAlivePark;

// Receives each finished request (access log, metrics, alerts). Runs on the worker thread.
class RequestObserver {
 public:
  virtual ~RequestObserver() = default;
  virtual void on_request_done(const observe::RequestRecord& record) = 0;
  // A client TLS handshake ended: `failure` empty = done (then `resumed` says how), else the
  // reason (tls::handshake_failure_name, or "timeout"). Metrics only.
  virtual void on_tls_handshake(std::string_view /*failure*/, bool /*resumed*/) {}
  // A 101 opened a tunnel; its request is done (on_request_done) when the tunnel ends.
  virtual void on_tunnel_opened() {}
  // A client connection closed for idling, once its CloseRaceWatch knows what followed.
  virtual void on_idle_client_close(const observe::IdleCloseRecord& record) { (void)record; }
};

// Upgrade tunnels of a worker, against [server] max_tunnels_per_worker. An upgrade request
// takes a slot before it connects (so concurrent upgrades cannot overshoot the limit) and gives
// it back when it ends, whether a tunnel ran or the upstream answered something else.
class TunnelSlots {
 public:
  class Slot {
   public:
    Slot() = default;
    explicit Slot(TunnelSlots* slots) : slots_(slots) {}
    Slot(Slot&& other) noexcept : slots_(std::exchange(other.slots_, nullptr)) {}
    Slot& operator=(Slot&&) = delete;
    ~Slot() {
      if (slots_ != nullptr) --slots_->taken_;
    }
    explicit operator bool() const { return slots_ != nullptr; }

   private:
    TunnelSlots* slots_ = nullptr;
  };
  // An empty Slot when `limit` (0: none) slots are taken.
  Slot take(uint32_t limit) {
    if (limit != 0 && taken_ >= limit) return Slot();
    ++taken_;
    return Slot(this);
  }
  uint32_t taken() const { return taken_; }

 private:
  uint32_t taken_ = 0;
};

// Response parsers lent to exchanges: an idle client connection holds none (each parser keeps
// its header slots and strings warm, about 2 KiB), and a warm parser allocates nothing.
class ResponseParserPool {
 public:
  std::unique_ptr<http::ResponseParser> acquire() {
    if (auto parser = spare_.take()) return std::move(*parser);
    return std::make_unique<http::ResponseParser>(
        http::ParserLimits{.max_request_line = 8 * 1024,
                           .max_header_bytes = 64 * 1024,
                           .max_header_count = 200,
                           .max_body_bytes = ~uint64_t{0}});
  }
  void give_back(std::unique_ptr<http::ResponseParser> parser) {
    if (parser) spare_.put(std::move(parser));
  }
  // Frees the parsers no exchange needed for a whole period (SpareList::release_unused).
  size_t release_unused() { return spare_.release_unused(); }

 private:
  static constexpr size_t kMaxSpare = 1024;
  SpareList<std::unique_ptr<http::ResponseParser>> spare_{kMaxSpare};
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
  TunnelSlots tunnel_slots;
  // Rate limiters and refusal counts shared by every worker (set before start); null: no route
  // is rate limited and refusals are not counted (tests that run sessions without a server).
  std::shared_ptr<OverloadState> overload;
  // Closes clients that idled past client_idle_timeout and watches for a late request (null:
  // plain close; tests that run sessions without a worker).
  CloseRaceWatch* close_watch = nullptr;
};

}  // namespace needle::proxy
