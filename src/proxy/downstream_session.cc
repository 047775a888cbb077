#include "proxy/downstream_session.h"

#include <cstring>

#include <asio/experimental/as_tuple.hpp>
#include <asio/use_awaitable.hpp>

#include "base/log.h"
#include "http/serializer.h"
#include "net/listener.h"
#include "net/receive_queue_hint.h"
#include "proxy/close_race_watch.h"
#include "proxy/exchange.h"
#include "proxy/real_ip.h"

namespace needle::proxy {
namespace {

// No attempt of the request got a connection to its host (panic mode's 503, issue 20).
bool no_host_connected(const observe::RequestRecord& record) {
  for (const auto& attempt : record.attempts) {
    if (attempt.connection_id != 0) return false;
  }
  return true;
}

http::ParserLimits limits_from(const config::ServerConfig& server) {
  http::ParserLimits limits;
  limits.max_request_line = server.max_request_line;
  limits.max_header_bytes = server.max_header_bytes;
  limits.max_header_count = server.max_header_count;
  limits.max_body_bytes = server.max_body_bytes;
  return limits;
}

}  // namespace

DownstreamSession::DownstreamSession(WorkerContext& worker, net::Stream stream)
    : worker_(worker),
      socket_(std::move(stream)),
      runtime_(worker.runtime),
      parser_(limits_from(worker.runtime->config->server)),
      read_watchdog_(worker.executor,
                     [this] {
                       std::error_code ec;
                       socket_.cancel(ec);
                     }),
      write_watchdog_(worker.executor,
                      [this] {
                        std::error_code ec;
                        socket_.cancel(ec);
                      }),
      upstream_watchdog_(worker.executor,
                         [this] {
                           std::error_code ec;
                           if (upstream_socket_ != nullptr) upstream_socket_->cancel(ec);
                         }),
      client_watch_(socket_.socket(), [this] {
        std::error_code ec;
        if (upstream_socket_ != nullptr) upstream_socket_->cancel(ec);
      }) {
  worker_.sessions.insert(this);
  std::error_code ec;
  const auto peer = socket_.remote_endpoint(ec);
  client_address_ = ec ? "unknown" : peer.address().to_string();
  client_ip_ = config::parse_ip(client_address_);
  client_peer_ = ec ? client_address_
                    : (peer.address().is_v6() ? "[" + client_address_ + "]" : client_address_) +
                          ":" + std::to_string(peer.port());
  if (socket_.is_tls()) {
    scheme_ = "https";
    net::TlsSessionFacts facts = socket_.tls_facts();
    tls_facts_ = observe::TlsFacts{.version = std::move(facts.version),
                                   .cipher = std::move(facts.cipher),
                                   .sni = std::move(facts.sni),
                                   .resumed = facts.resumed};
  }
}

DownstreamSession::DownstreamSession(WorkerContext& worker, ParkedClient&& client)
    : DownstreamSession(worker, net::Stream(std::move(client.socket))) {
  requests_served_ = client.requests_served;
}

DownstreamSession::~DownstreamSession() { worker_.sessions.erase(this); }

void DownstreamSession::begin_drain() {
  // Nothing to cut: the client keeps its connection through the drain and its next response
  // carries Connection: close (may_keep_client), so a keep-alive client is never closed under
  // a request it is already sending (docs/architecture.md "Reload and shutdown"). An idle one
  // closes at its idle deadline, or at drain_timeout.
}

// A TLS client is never parked: the park keeps only a socket, and its SSL (keys, sequence
// numbers) must live as long as the connection (docs/decisions/0008-tls-stream.md).
void DownstreamSession::park_if_idle_before(uint64_t epoch) {
  if (!idle_ || park_requested_ || idle_epoch_ >= epoch || worker_.park == nullptr) return;
  if (socket_.is_tls()) return;
  park_requested_ = true;
  std::error_code ec;
  socket_.cancel(ec);  // ends the idle read; run() then hands the client over (hand_to_park)
}

void DownstreamSession::watch_client_if_waiting_before(uint64_t epoch) {
  if (body_complete_) client_watch_.look_if_armed_before(epoch);
}

void DownstreamSession::begin_client_watch() {
  if (!ignore_client_abort_) client_watch_.arm(worker_.idle_epoch);
}

bool DownstreamSession::hand_to_park(TimePoint deadline) {
  park_requested_ = false;
  // A deadline that passed meanwhile or a closed socket: close as the idle wait would.
  if (close_after_response_ || !socket_.is_open() || deadline == TimePoint::max()) {
    return false;
  }
  worker_.park->park(ParkedClient{.socket = std::move(socket_.socket()),
                                  .requests_served = requests_served_,
                                  .deadline = deadline,
                                  .idle_since = idle_since_});
  parked_ = true;
  return true;
}

// A keep-alive wait that client_idle_timeout ended (not a drain, not the first request's header
// timeout) closes through the worker's CloseRaceWatch, which sends the FIN and watches for a
// request the client sent anyway (docs/architecture.md "Downstream close races").
bool DownstreamSession::hand_to_close_watch() {
  if (worker_.close_watch == nullptr || requests_served_ == 0 || !read_watchdog_.expired() ||
      read_watchdog_.expired_phase() != kIdle || !socket_.is_open()) {
    return false;
  }
  worker_.close_watch->close_and_watch(std::move(socket_.socket()), idle_since_,
                                       runtime_->config->listeners);
  parked_ = true;  // handed over: the watch owns the connection and its count now
  return true;
}

bool DownstreamSession::may_keep_client() const {
  const auto& server = server_config();
  if (close_after_response_ || worker_.draining) return false;
  if (server.max_requests_per_client_connection != 0 &&
      requests_served_ + 1 >= server.max_requests_per_client_connection) {
    return false;
  }
  return parser_.head().keep_alive;
}

net::Task<void> DownstreamSession::run() {
  for (;;) {
    runtime_ = worker_.runtime;
    if (!has_pending()) {
      // Keep-alive idle (or the first request).
      if (close_after_response_) break;
      idle_ = true;
      const auto& server = server_config();
      begin_idle_wait(requests_served_ == 0 ? server.header_timeout
                                            : server.client_idle_timeout);
      const auto read =
          net::to_result(co_await net::read_some_draining(socket_, asio::buffer(idle_bytes_)));
      const TimePoint deadline = read_watchdog_.deadline();
      end_idle_wait(read);
      idle_ = false;
      if (read.error) {
        if (park_requested_ && read.error == asio::error::operation_aborted &&
            hand_to_park(deadline)) {
          co_return;  // the client waits in the park; a new session resumes it
        }
        if (hand_to_close_watch()) co_return;  // client_idle_timeout: a watched close
        break;  // idle timeout, drain or peer error: close quietly (RFC 9112 9.6)
      }
      park_requested_ = false;  // the next request came first
      // A reload may have happened while idle: the next request uses the current generation.
      runtime_ = worker_.runtime;
    }
    // The keep-alive case has the whole head buffered already: no coroutine, no deadline.
    if (const http::ParseStop buffered = parse_buffered_head();
        buffered != http::ParseStop::head_complete) {
      const HeadStatus head = co_await read_head(buffered);
      if (head != HeadStatus::ok) break;
    }
    // Routing is plain code: only the chosen path is a coroutine (a frame less per request).
    bool keep = false;
    if (ClusterRuntime* cluster = route_request()) {
      if (const auto wait = rate_limit_wait()) {
        keep = co_await send_rate_limited(*wait);
      } else {
        keep = co_await proxy_to_cluster(*cluster, record_);
      }
    } else if (!path_problem_.empty()) {
      keep = co_await send_local(record_, 400, Cause::bad_request, path_problem_,
                                 body_complete_ && may_keep_client());
    } else if (route_ != nullptr && route_->return_action) {
      keep = co_await send_return(*route_->return_action, record_);
    } else if (method_refused_) {
      keep = co_await send_local(record_, 405, Cause::no_route,
                                 "no route for this method matches this request",
                                 body_complete_ && may_keep_client());
    } else {
      keep = co_await send_local(record_, 404, Cause::no_route, "no route matches this request",
                                 body_complete_ && may_keep_client());
    }
    ++requests_served_;
    parser_.reset();
    if (!keep) break;
  }
  if (linger_before_close_) co_await linger_close();
  read_watchdog_.disarm();
  write_watchdog_.disarm();
  upstream_watchdog_.disarm();
  std::error_code ec;
  socket_.shutdown(asio::socket_base::shutdown_both, ec);
  socket_.close(ec);
}

// An idle session holds no pooled buffer (10k idle clients must not cost 10k buffers): the
// keep-alive wait is a read into the small inline idle_bytes_, a draining one: the last head read
// left the socket empty, so this read costs no syscall until the next request arrives (async_wait
// would re-arm epoll with epoll_ctl every time). The bytes move into a pooled buffer once here.
// The read itself is awaited in run(), between these two: no coroutine frame per request.
void DownstreamSession::begin_idle_wait(Millis timeout) {
  idle_epoch_ = worker_.idle_epoch;
  buffer_.reset();
  begin_ = end_ = 0;
  read_watchdog_.arm(timeout, kIdle);
  idle_since_ = read_watchdog_.deadline() - timeout;  // arm() read the clock: no second read
}

void DownstreamSession::end_idle_wait(const net::IoResult& read) {
  read_watchdog_.disarm();
  if (read.error) return;
  buffer_ = worker_.client_buffers.acquire();
  std::memcpy(buffer_.data(), idle_bytes_.data(), read.bytes);
  end_ = read.bytes;
}

net::Task<net::IoResult> DownstreamSession::read_more(Millis timeout, Phase phase) {
  if (!buffer_) {
    buffer_ = worker_.client_buffers.acquire();
    begin_ = end_ = 0;
  }
  if (begin_ == end_) {
    begin_ = end_ = 0;
  } else if (end_ == buffer_.size()) {
    std::memmove(buffer_.data(), buffer_.data() + begin_, end_ - begin_);
    end_ -= begin_;
    begin_ = 0;
  }
  // timeout 0: the caller armed a deadline for a whole phase (the request head) already.
  if (timeout != Millis(0)) read_watchdog_.arm(timeout, phase);
  const auto into = asio::buffer(buffer_.data() + end_, buffer_.size() - end_);
  // Head reads drain (the next request is read without a speculative recv); body and linger
  // reads are stock reads that try a recv first, so a reset queued behind the head ends the
  // exchange at once (net/draining_read.h).
  net::IoResult result;
  // if/else, not ?: with a co_await in each arm: g++ 12 miscompiles that (body bytes were lost).
  if (phase == kHeader) {
    result = net::to_result(co_await net::read_some_draining(socket_, into));
  } else {
    net::note_receive_queue_unknown(socket_.socket());
    result = net::to_result(co_await net::read_some(socket_, into));
  }
  if (timeout != Millis(0)) read_watchdog_.disarm();
  end_ += result.bytes;
  co_return result;
}

http::ParseStop DownstreamSession::parse_buffered_head() {
  head_start_ = worker_.clock.now();
  head_start_wall_ = std::chrono::system_clock::now();
  if (!has_pending()) return http::ParseStop::need_more;
  spans_.clear();  // a request head has no body bytes to hand out
  const auto fed = parser_.feed(pending(), spans_);
  begin_ += fed.consumed;
  return fed.stop;
}

net::Task<DownstreamSession::HeadStatus> DownstreamSession::read_head(http::ParseStop stop) {
  // The whole head must arrive within header_timeout (slowloris): one deadline for all reads.
  read_watchdog_.arm(server_config().header_timeout, kHeader);
  for (;;) {
    if (stop == http::ParseStop::head_complete || stop == http::ParseStop::message_complete) {
      read_watchdog_.disarm();  // (message_complete is not reached in a head)
      co_return HeadStatus::ok;
    }
    if (stop == http::ParseStop::error) {
      read_watchdog_.disarm();
      observe::RequestRecord record;
      record.start = head_start_;
      record.start_wall = head_start_wall_;
      record.client_address = client_peer_;
      record.detail = parser_.error().cause;
      log::info("downstream", "client {}: rejected request: {} ({})", client_address_,
                parser_.error().status, parser_.error().cause);
      co_await send_local(record, parser_.error().status, Cause::bad_request,
                          parser_.error().cause, false);
      co_return HeadStatus::bad;  // run() lingers before it closes

    }
    auto read = co_await read_more(Millis(0), kHeader);
    if (read.error) {
      const bool timed_out = read_watchdog_.expired();
      read_watchdog_.disarm();
      if (timed_out && parser_.started()) {
        observe::RequestRecord record;
        record.start = head_start_;
        record.start_wall = head_start_wall_;
        record.client_address = client_peer_;
        co_await send_local(record, 408, Cause::client_timeout, "request head not received in time",
                            false);
        co_return HeadStatus::timeout;  // run() lingers before it closes
      }
      co_return HeadStatus::closed_quietly;
    }
    spans_.clear();
    const auto fed = parser_.feed(pending(), spans_);
    begin_ += fed.consumed;
    stop = fed.stop;
  }
}

net::Task<BodyReadStatus> DownstreamSession::read_body(std::vector<std::string_view>& spans) {
  spans.clear();
  for (;;) {
    if (body_complete_) co_return BodyReadStatus::complete;
    {
      // Fed even when nothing is pending: "Content-Length: 0" completes on an empty feed.
      const auto fed = parser_.feed(has_pending() ? pending() : std::string_view(), spans);
      begin_ += fed.consumed;
      for (auto span : spans) body_bytes_in_ += span.size();
      if (fed.stop == http::ParseStop::message_complete) {
        body_complete_ = true;
        co_return BodyReadStatus::complete;
      }
      if (fed.stop == http::ParseStop::error) co_return BodyReadStatus::bad_body;
      if (!spans.empty()) co_return BodyReadStatus::more;
    }
    auto read = co_await read_more(server_config().body_timeout, kBody);
    if (read.error) {
      if (read_watchdog_.expired()) co_return BodyReadStatus::client_timeout;
      co_return BodyReadStatus::client_closed;
    }
  }
}

net::Task<bool> DownstreamSession::write_client(std::span<const asio::const_buffer> buffers) {
  write_watchdog_.arm(server_config().send_timeout, kSend);
  auto result = net::to_result(co_await net::write_all(socket_, buffers));
  write_watchdog_.disarm();
  co_return !result.error;
}

bool DownstreamSession::begin_body() {
  body_.clear();
  body_bytes_in_ = 0;
  body_started_streaming_ = false;
  body_complete_ = parser_.head().framing == http::BodyFraming::none;
  return !body_complete_;
}

net::Task<BodyReadStatus> DownstreamSession::prefetch_body(size_t limit) {
  const auto& head = parser_.head();
  // RFC 9110 10.1.1: needle answers 100-continue itself, once it is ready to read the body.
  if (head.expect_continue && head.version_minor == 1 && !has_pending()) {
    const asio::const_buffer cont = asio::buffer(http::kContinue100);
    if (!co_await write_client(std::span(&cont, 1))) co_return BodyReadStatus::client_closed;
  }
  if (head.framing == http::BodyFraming::content_length && head.content_length > limit) {
    co_return BodyReadStatus::more;  // too large to hold for a retry: stream it
  }
  for (;;) {
    const auto status = co_await read_body(spans_);
    for (auto span : spans_) body_.append(span);
    if (status != BodyReadStatus::more) co_return status;
    if (body_.size() >= limit) co_return BodyReadStatus::more;
  }
}

ClusterRuntime* DownstreamSession::route_request() {
  observe::RequestRecord& record = record_;
  record.reset();
  record.start = head_start_;
  record.start_wall = head_start_wall_;
  record.worker = worker_.index;
  record.client_address = client_peer_;
  const auto& head = parser_.head();
  record.method = head.method;
  record.host = head.host;
  record.path = head.target;
  if (const std::string* id = head.headers.find(http::FieldId::x_request_id); id && !id->empty() &&
                                                                   id->size() <= 200) {
    record.request_id = *id;
  } else {
    worker_.request_ids.next(record.request_id);
  }
  body_complete_ = head.framing == http::BodyFraming::none;

  // docs/config.md "Client address and X-Forwarded-*": behind a trusted proxy the access log's
  // client is the first untrusted hop of X-Forwarded-For.
  const auto& server = server_config();
  peer_trusted_ = client_ip_ && server.trusted_proxies.contains(*client_ip_);
  if (peer_trusted_) {
    const std::string_view real =
        real_client_address(client_address_, true, head.headers, server.trusted_proxies);
    if (real.data() != client_address_.data()) record.client_address.assign(real);
  }
  variables_ =
      http::HeaderVariables{.client_addr = peer_trusted_ ? std::string_view(record.client_address)
                                                         : std::string_view(client_address_),
                            .request_id = record.request_id,
                            .host = head.host,
                            .scheme = scheme_,
                            .request_uri = head.target};
  if (peer_trusted_ && record.client_address == client_peer_) {
    variables_.client_addr = client_address_;  // no usable X-Forwarded-For: the peer itself
  }

  route_ = nullptr;
  const RouteDecision routed =
      runtime_->router.route(head.method, head.host, head.target, forward_target_);
  method_refused_ = routed.method_refused;
  path_problem_ = http::path_problem(routed.path);
  if (routed.path_refused()) {
    log::info("downstream", "request {}: 400 {}: '{}'", record.request_id, path_problem_,
              head.target);
    return nullptr;
  }
  const auto& match = routed.match;
  ignore_client_abort_ =
      match && runtime_->config->routes[match->route_index].ignore_client_abort;
  route_config_ = match ? &runtime_->config->routes[match->route_index] : nullptr;
  upgrade_ =
      route_config_ ? http::decide_upgrade(head, route_config_->upgrade) : http::UpgradeOffer{};
  if (!match) {
    log::info("downstream", "request {}: no route for host '{}' path '{}'", record.request_id,
              head.host, head.target);
    return nullptr;
  }
  record.route.assign(match->route_name);
  route_index_ = match->route_index;
  route_ = &runtime_->config->routes[match->route_index];
  if (route_->return_action) return nullptr;  // run() answers it
  if (route_->rewrite_prefix) rewrite_target(*route_);
  ClusterRuntime& cluster = *runtime_->clusters[match->cluster_index];
  record.cluster = cluster.config().name;
  return &cluster;
}

net::Task<bool> DownstreamSession::proxy_to_cluster(ClusterRuntime& cluster,
                                                    observe::RequestRecord& record) {
  const auto& head = parser_.head();
  const auto& cfg = cluster.config();
  const config::RouteOverrides& overrides = route_->overrides;
  response_timeout_ = overrides.response_timeout.value_or(cfg.response_timeout);

  // Most requests have no body: no coroutine for them.
  const auto prefetch = begin_body() ? co_await prefetch_body(cfg.retry_buffer_bytes)
                                     : BodyReadStatus::complete;
  switch (prefetch) {
    case BodyReadStatus::client_closed:
      record.status = 499;
      record.cause = Cause::client_closed;
      finish_record(record);
      co_return false;
    case BodyReadStatus::client_timeout:
      co_return co_await send_local(record, 408, Cause::client_timeout,
                                    "request body not received in time", false);
    case BodyReadStatus::bad_body:
      log::info("downstream", "request {}: bad body: {}", record.request_id, parser_.error().cause);
      co_return co_await send_local(record, parser_.error().status, Cause::bad_request,
                                    parser_.error().cause, false);
    case BodyReadStatus::more:
    case BodyReadStatus::complete:
      break;
  }
  // Circuit breakers (docs/config.md "Circuit breakers"): refused at once, never queued.
  CircuitBreakers::Slot request_slot;
  if (const auto full = cluster.breakers().enter_request(request_slot)) {
    co_return co_await send_overflow(cluster, record, *full);
  }

  // The facts of this request that every retry decision needs; each attempt adds its own.
  RetryInput retry{
      .method = head.method,
      .has_idempotency_key = head.headers.has(http::FieldId::idempotency_key) ||
                             head.headers.has(http::FieldId::x_idempotency_key),
      .max_retries = overrides.max_retries.value_or(cfg.max_retries),
      .non_idempotent = overrides.retry_non_idempotent.value_or(cfg.retry_non_idempotent)};
  std::vector<size_t> excluded;  // hosts this request must not use again (connect failures)
  // An upgrade gets a fresh connection, never a pooled one, so it cannot meet an idle close
  // (docs/architecture.md "Upgrade tunnels"), and a tunnel slot first.
  const bool upgrade = !upgrade_offered().empty();
  bool fresh_only = upgrade;
  const uint32_t tunnel_limit = server_config().max_tunnels_per_worker;
  TunnelSlots::Slot tunnel_slot =
      upgrade ? worker_.tunnel_slots.take(tunnel_limit) : TunnelSlots::Slot();
  if (upgrade && !tunnel_slot) {
    const std::string detail =
        fmt::format("every tunnel slot of this worker is taken (max_tunnels_per_worker = {})",
                    tunnel_limit);
    co_return co_await send_local(record, 503, Cause::tunnel_limit, detail,
                                  body_complete_ && may_keep_client());
  }
  bool budget_refused = false;
  cluster.retry_budget().on_request(worker_.clock.now());

  for (;;) {
    // Whether everything read from the client so far is still held for a resend.
    retry.body_replayable = body_complete_ && !body_started_streaming_;
    // Whether a failure on a reused connection could be retried for this request; when not, the
    // pool hands out only connections idle for less than an age proven safe.
    const bool replayable_if_reused = replayable_on_reused_connection(retry);
    const auto host_index = cluster.pick_host(excluded);
    if (!host_index) {
      if (record.attempts.empty()) {
        co_return co_await send_local(record, 503, Cause::no_healthy_host,
                                      "no healthy upstream host", body_complete_ && may_keep_client());
      }
      break;  // every host was tried: answer with the last attempt's cause below
    }
    upstream::HostPool& pool = cluster.host(*host_index);
    observe::AttemptRecord& attempt = record.attempts.emplace_back();
    attempt.upstream = cluster.host_name(*host_index);
    const auto attempt_start = worker_.clock.now();

    upstream::ConnectionLease lease;
    if (!fresh_only) lease = pool.checkout_idle(replayable_if_reused);
    if (!lease) {
      CircuitBreakers::Slot pending_slot;  // waiting for a new connection until it is settled
      if (const auto full = cluster.breakers().enter_pending(
              pool.idle_count() + pool.active_requests(), pending_slot)) {
        record.attempts.pop_back();  // no attempt was made
        co_return co_await send_overflow(cluster, record, *full);
      }
      auto connected = co_await pool.connect();
      if (!connected.lease) {
        attempt.cause = connected.cause;
        cluster.report_attempt(*host_index, connected.cause, 0);
        attempt.duration = worker_.clock.now() - attempt_start;
        record.detail = fmt::format("connect {}: {}", attempt.upstream, connected.error.message());
        excluded.push_back(*host_index);  // a connect failure never goes back to that host
        retry.cause = connected.cause;
        retry.connection_reused = false;
        retry.response_bytes_received = false;
        retry.request_bytes_sent = false;
        retry.other_host_available = cluster.has_other_host(excluded);
        const RetryDecision decision =
            decide_retry(retry, cluster.retry_budget(), worker_.clock.now());
        attempt.retry_decision.assign(decision.reason);
        budget_refused = decision.reason == kRetryBudgetExhausted;
        if (decision.action == RetryAction::give_up) break;
        ++retry.retries_done;
        continue;
      }
      lease = std::move(connected.lease);
    }
    attempt.connection_id = lease->id();
    attempt.reused = lease->reused();
    attempt.reuse_count = lease->requests_done();
    attempt.idle_age = attempt.reused ? lease->idle_age_at_checkout() : Millis(0);

    Exchange exchange(*this, cluster, std::move(lease), attempt, record);
    const ExchangeResult result = co_await exchange.run();
    attempt.duration = worker_.clock.now() - attempt_start;
    attempt.cause = result.cause;  // stray_bytes_after_response even on a relayed response
    cluster.report_attempt(*host_index, result.cause, result.response_relayed ? result.status : 0);
    if (result.switched_protocols) {
      co_await run_tunnel(exchange, record);
      co_return false;  // the connection carried another protocol: it ends with the tunnel
    }
    if (result.response_relayed) {
      record.status = result.status;
      if (!result.detail.empty()) record.detail = result.detail;  // stray bytes behind it
      finish_record(record);
      co_return result.keep_client;
    }
    if (!result.detail.empty()) record.detail = result.detail;
    if (result.client_response_started || result.cause == Cause::client_closed ||
        result.cause == Cause::client_timeout || result.cause == Cause::bad_request) {
      // Nothing more can be said to this client: its response has begun, or it is gone.
      record.cause = result.cause;
      if (record.status == 0) record.status = result.status != 0 ? result.status : 499;
      if (result.cause == Cause::bad_request && !result.client_response_started) {
        co_return co_await send_local(record, parser_.error().status, Cause::bad_request,
                                      parser_.error().cause, false);
      }
      finish_record(record);
      co_return false;
    }
    retry.cause = result.cause;
    retry.connection_reused = attempt.reused;
    retry.response_bytes_received = result.response_bytes_received;
    retry.request_bytes_sent = attempt.bytes_written > 0;
    retry.body_replayable = body_complete_ && !body_started_streaming_;
    excluded.push_back(*host_index);
    retry.other_host_available = cluster.has_other_host(excluded);
    excluded.pop_back();
    const RetryDecision decision = decide_retry(retry, cluster.retry_budget(), worker_.clock.now());
    attempt.retry_decision.assign(decision.reason);
    budget_refused = decision.reason == kRetryBudgetExhausted;
    if (decision.action == RetryAction::give_up) break;
    ++retry.retries_done;
    fresh_only = true;  // DESIGN rule 5: a retry never goes down another pooled connection
    if (decision.action == RetryAction::retry_other_host) excluded.push_back(*host_index);
  }

  // Every attempt failed before a response could be relayed: explain it. A retry the budget
  // refused is the request's cause (its attempts say what failed).
  const observe::AttemptRecord& last = record.attempts.back();
  if (cluster.in_panic() && no_host_connected(record)) {
    // Panic mode (every host out) and not one host took a connection: nothing is there.
    std::string detail =
        fmt::format("panic mode: every host of cluster {} is out; upstream {} failed: {}", cfg.name,
                    last.upstream, cause_name(last.cause));
    record.detail = detail;  // replaces the last connect's error: the 503 is about the cluster
    co_return co_await send_local(record, 503, Cause::no_healthy_host, detail,
                                  body_complete_ && may_keep_client());
  }
  const Cause cause = budget_refused ? Cause::retry_budget_exhausted : last.cause;
  const int status = last.cause == Cause::response_timeout ? 504 : 502;
  log::warn("proxy", "request {} {} {}: {} after {} attempt(s): {} ({})", record.request_id,
            head.method, head.target, status, record.attempts.size(), cause_name(cause),
            record.detail);
  // A named local, not a temporary of a ?: inside the co_await: g++ 12 destroys such a
  // temporary twice in a coroutine (a double free, seen under load with ASan).
  std::string detail =
      budget_refused ? fmt::format("upstream {} failed: {}; the retry budget refused a retry",
                                   last.upstream, cause_name(last.cause))
                     : fmt::format("upstream {} failed: {}", last.upstream, cause_name(cause));
  co_return co_await send_local(record, status, cause, detail, body_complete_ && may_keep_client());
}

net::Task<bool> DownstreamSession::send_local(observe::RequestRecord& record, int status,
                                              Cause cause, std::string_view detail,
                                              bool keep_alive, std::string_view extra_fields) {
  record.status = status;
  record.cause = cause;
  if (record.detail.empty()) record.detail = std::string(detail);
  if (record.request_id.empty()) worker_.request_ids.next(record.request_id);
  scratch_head_.clear();
  // record.method is empty when the head did not parse (then no HEAD is known to be pending).
  http::write_local_response(status, detail, !keep_alive, record.request_id, scratch_head_,
                             record.method == "HEAD", extra_fields);
  const asio::const_buffer out = asio::buffer(scratch_head_);
  const bool written = co_await write_client(std::span(&out, 1));
  record.bytes_out += scratch_head_.size();
  finish_record(record);
  // Every caller ends the session when this returns false; a reply the client got is lingered on.
  if (written && !keep_alive) linger_before_close_ = true;
  co_return written && keep_alive;
}

net::Task<bool> DownstreamSession::send_return(const config::ReturnAction& action,
                                               observe::RequestRecord& record) {
  record.status = action.status;
  const bool keep_alive = body_complete_ && may_keep_client();
  scratch_head_.clear();
  http::write_return_response(action.status, action.headers, action.body, variables_, !keep_alive,
                              record.method == "HEAD", scratch_head_);
  const asio::const_buffer out = asio::buffer(scratch_head_);
  const bool written = co_await write_client(std::span(&out, 1));
  record.bytes_out += scratch_head_.size();
  finish_record(record);
  if (written && !keep_alive) linger_before_close_ = true;
  co_return written&& keep_alive;
}

// rewrite_prefix (docs/config.md "Routing"): the matched path_prefix of the normalized path is
// replaced; the rest of the path and the query follow as they would have been sent.
void DownstreamSession::rewrite_target(const config::RouteConfig& route) {
  std::string_view sent = forward_target_;
  if (sent.empty()) {
    sent = target_path(parser_.head().target);
    if (sent.data() != parser_.head().target.data()) sent = sent.substr(0, sent.find('#'));
  }
  rewrite_scratch_.assign(*route.rewrite_prefix);
  rewrite_scratch_.append(sent.substr(std::min(route.path_prefix.size(), sent.size())));
  forward_target_.swap(rewrite_scratch_);
}

std::string_view DownstreamSession::upstream_host(std::string_view upstream) const {
  if (route_ == nullptr) return {};
  switch (route_->host_rewrite.kind) {
    case config::HostRewrite::Kind::keep:
      return {};
    case config::HostRewrite::Kind::fixed:
      return route_->host_rewrite.value;
    case config::HostRewrite::Kind::upstream:
      return upstream;
  }
  return {};
}

// Lingering close (nginx's lingering_close), for every reply of needle's own that ends the
// connection: 400 family and 408 heads, 404 with a body not read, 413 and 400 bodies, 502/503/504
// to a client that cannot be kept. Closing a socket with unread input makes the kernel send a
// RST instead of a FIN, and a RST makes the client's send fail, or destroys the reply in its
// receive queue, before it read the status (RFC 9112 9.6). So: stop sending (the client reads
// the reply and a FIN), then read and drop what it still sends (the rest of a body, pipelined
// requests) until it closes, is quiet for kLingerQuiet, or kLingerTime has passed.
net::Task<void> DownstreamSession::linger_close() {
  constexpr Millis kLingerQuiet{1000};
  constexpr Millis kLingerTime{10000};
  linger_before_close_ = false;
  std::error_code ec;
  socket_.shutdown(asio::socket_base::shutdown_send, ec);
  if (!buffer_) buffer_ = worker_.client_buffers.acquire();
  const TimePoint give_up = worker_.clock.now() + kLingerTime;
  for (;;) {
    begin_ = end_ = 0;
    const auto left = std::chrono::ceil<Millis>(give_up - worker_.clock.now());
    if (left <= Millis(0)) break;
    auto read = co_await read_more(std::min(kLingerQuiet, left), kLinger);
    if (read.error) break;
  }
  begin_ = end_ = 0;
}

void DownstreamSession::finish_record(observe::RequestRecord& record) {
  record.duration = worker_.clock.now() - record.start;
  // Every 5xx says why: one that the upstream sent itself is marked as such.
  if (record.status >= 500 && record.cause == Cause::none) record.cause = Cause::upstream_5xx;
  record.bytes_in = body_bytes_in_;
  record.worker = worker_.index;
  if (socket_.is_tls()) record.tls = &tls_facts_;
  if (worker_.observer) worker_.observer->on_request_done(record);
}

}  // namespace needle::proxy
