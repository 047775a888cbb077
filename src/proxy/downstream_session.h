#pragma once
// One client connection: reads requests (keep-alive, pipelining), proxies each through an
// Exchange per attempt, and answers in order. A coroutine on its worker's io_context; owns the
// client socket, its parser and buffers. Lifecycle of a request: DESIGN.md "Life of a request".
#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <asio/ip/tcp.hpp>

#include "config/cidr.h"
#include "http/header_rules.h"
#include "http/parser.h"
#include "http/upgrade.h"
#include "net/socket_io.h"
#include "observe/request_record.h"
#include "proxy/client_abort_watch.h"
#include "proxy/keepalive_park.h"
#include "proxy/tunnel.h"
#include "proxy/watchdog.h"
#include "proxy/worker_context.h"

namespace needle::proxy {

class Exchange;

// The tunnel after a 101 over this session's client stream and its upstream connection's.
using ClientTunnel = Tunnel<net::Stream, net::Stream>;

// Result of reading one more piece of the client's request body.
enum class BodyReadStatus { more, complete, client_closed, client_timeout, bad_body };

class DownstreamSession {
 public:
  // `stream` is plain, or TLS with its handshake done (server/tls_accept.h).
  DownstreamSession(WorkerContext& worker, net::Stream stream);
  // A client back from the keep-alive park (it sent bytes, or closed).
  DownstreamSession(WorkerContext& worker, ParkedClient&& client);
  ~DownstreamSession();
  DownstreamSession(const DownstreamSession&) = delete;
  DownstreamSession& operator=(const DownstreamSession&) = delete;

  net::Task<void> run();
  // Shutdown: close now if idle between requests; otherwise the response in progress carries
  // Connection: close and the session ends after it.
  void begin_drain();
  // Park sweep: a session whose keep-alive wait began before sweep `epoch` (WorkerContext::
  // idle_epoch) hands its client to the worker's park and ends (run() returns, parked() true).
  void park_if_idle_before(uint64_t epoch);
  // The client went to the keep-alive park, or to the worker's CloseRaceWatch: either now owns
  // the connection (and counts its close).
  bool parked() const { return parked_; }
  // Park sweep too: a request that has waited for its upstream's response since before sweep
  // `epoch` starts watching its client for a close (ClientAbortWatch), once the request body has
  // been read completely (until then the body reads notice a close themselves).
  void watch_client_if_waiting_before(uint64_t epoch);
  // Upgrade tunnels (session_tunnel.cc). Drain timeout: a tunnel in progress ends now, and its
  // request is recorded now (closed_by drain), before the worker stops. Reload: a tunnel in
  // progress ends at `deadline` at the latest.
  void close_tunnel_now();
  void close_tunnel_at(TimePoint deadline);

 private:
  friend class Exchange;
  enum Phase : int { kIdle = 1, kHeader, kBody, kSend, kLinger };
  enum class HeadStatus { ok, closed_quietly, timeout, bad };

  // Starts the head's clock and parses what is buffered (all of a keep-alive request, usually).
  http::ParseStop parse_buffered_head();
  // Reads and parses the rest of the head, from where parse_buffered_head() stopped; answers a
  // bad head (400 family) or a late one (408) itself.
  net::Task<HeadStatus> read_head(http::ParseStop stop);
  // Starts record_ for the request just parsed and picks its cluster; nullptr: the path was
  // refused (path_problem_ set: the caller answers 400) or no route matches (404).
  ClusterRuntime* route_request();
  // The route's return action (docs/config.md "Return"). Whether the connection is kept.
  net::Task<bool> send_return(const config::ReturnAction& action, observe::RequestRecord& record);
  // rewrite_prefix of the matched route applied to the target sent upstream (forward_target_).
  void rewrite_target(const config::RouteConfig& route);
  // The Host to send upstream for the attempt on `upstream` ("ip:port"): empty = as received.
  std::string_view upstream_host(std::string_view upstream) const;
  // Both return whether the connection is kept for the next request.
  net::Task<bool> proxy_to_cluster(ClusterRuntime& cluster, observe::RequestRecord& record);
  // Resets the body state for the request just parsed; true if it has a body to read.
  bool begin_body();
  // Reads the body into the retry buffer up to `limit` (begin_body() first).
  net::Task<BodyReadStatus> prefetch_body(size_t limit);

  // Keep-alive wait, around a draining read into idle_bytes_ that run() awaits: the first bytes
  // of the next request end up in buffer_ (acquired on arrival).
  void begin_idle_wait(Millis timeout);
  void end_idle_wait(const net::IoResult& read);
  // After an idle wait cancelled by park_if_idle_before(): moves the client into the park.
  bool hand_to_park(TimePoint deadline);
  // After an idle wait that client_idle_timeout ended: moves the client into the worker's
  // CloseRaceWatch (close_race_watch.h). False: close here.
  bool hand_to_close_watch();
  // Reads more client bytes into the buffer (arming the read watchdog for `phase`).
  net::Task<net::IoResult> read_more(Millis timeout, Phase phase);
  // Next decoded body spans (valid until the next call), or a terminal status.
  net::Task<BodyReadStatus> read_body(std::vector<std::string_view>& spans);
  net::Task<bool> write_client(std::span<const asio::const_buffer> buffers);
  // needle's own response (errors, 404, ...). Returns whether the connection may be kept.
  net::Task<bool> send_local(observe::RequestRecord& record, int status, Cause cause,
                             std::string_view detail, bool keep_alive,
                             std::string_view extra_fields = {});
  // Overload protection (overload_guard.cc): the route's rate limit refuses the request just
  // routed (then the wait until its key has a token), or nullopt; the 429 and 503 replies.
  std::optional<Duration> rate_limit_wait();
  net::Task<bool> send_rate_limited(Duration wait);
  net::Task<bool> send_overflow(ClusterRuntime& cluster, observe::RequestRecord& record,
                                Breaker breaker);
  // Lingering close (RFC 9112 9.6) after needle's own reply that ends the connection.
  net::Task<void> linger_close();
  // The Exchange in progress waits for its upstream (begin) / its response started or it ended
  // (end). Field writes; see ClientAbortWatch. Skipped for a route with ignore_client_abort.
  void begin_client_watch();
  void end_client_watch() { client_watch_.disarm(); }
  bool client_aborted() const { return client_watch_.aborted(); }
  void finish_record(observe::RequestRecord& record);
  bool may_keep_client() const;
  // The protocols the request in progress offers upstream (http::decide_upgrade on its route);
  // empty: no upgrade, the request is plain HTTP.
  std::string_view upgrade_offered() const {
    return upgrade_.decision == http::UpgradeDecision::tunnel ? std::string_view(upgrade_.protocols)
                                                              : std::string_view();
  }
  // After a 101: relays the tunnel until it ends, then records the request (session_tunnel.cc).
  net::Task<void> run_tunnel(Exchange& exchange, observe::RequestRecord& record);
  void record_tunnel(observe::RequestRecord& record, const TunnelStats& stats);

  std::string_view pending() const { return {buffer_.data() + begin_, end_ - begin_}; }
  bool has_pending() const { return end_ > begin_; }
  const config::ServerConfig& server_config() const { return runtime_->config->server; }

  WorkerContext& worker_;
  net::Stream socket_;  // the client connection, plain or TLS (net/stream.h)
  observe::TlsFacts tls_facts_;  // set once for a TLS client: every record points to it
  std::string client_address_;  // ip only: X-Forwarded-For
  size_t route_index_ = 0;      // the request's route (valid when route_request() matched)
  std::string client_peer_;     // "ip:port": the access log's `client`
  std::optional<config::IpAddress16> client_ip_;  // the peer, for server.trusted_proxies
  // When the current request head started arriving (docs/access-log.md `time`, `duration_ms`).
  TimePoint head_start_{};
  std::chrono::system_clock::time_point head_start_wall_{};
  std::shared_ptr<WorkerRuntime> runtime_;  // generation of the request in progress

  // Client read buffer: bytes [begin_, end_) are received and not yet parsed. Taken from the
  // worker's pool when a request starts arriving, given back while the session idles.
  PooledBuffer buffer_;
  size_t begin_ = 0;
  size_t end_ = 0;
  // Where the idle wait reads (begin_idle_wait): the size of nginx's client_header_buffer_size, so a
  // typical request head arrives in one read.
  std::array<char, 1024> idle_bytes_;

  http::RequestParser parser_;
  Watchdog read_watchdog_;   // header, idle, body timeouts: cancels the client socket
  Watchdog write_watchdog_;  // send timeout: cancels the client socket
  // Response timeout of the Exchange in progress: cancels its upstream socket. Owned here, not
  // by each Exchange, so its timer wait carries over from request to request (no timer set-up
  // and cancellation per request).
  Watchdog upstream_watchdog_;
  net::Socket* upstream_socket_ = nullptr;  // the Exchange in progress's, or null
  // Looks for the client's EOF or RST while the upstream has not answered; on one, cancels
  // upstream_socket_ (the Exchange then ends with Cause::client_closed).
  ClientAbortWatch client_watch_;
  bool ignore_client_abort_ = false;  // the route of the request in progress says so
  // Upgrade: what the request's route lets it offer upstream, and the tunnel once a 101 came.
  const config::RouteConfig* route_config_ = nullptr;  // of the request in progress (runtime_'s)
  http::UpgradeOffer upgrade_;
  ClientTunnel* tunnel_ = nullptr;
  TimePoint tunnel_opened_{};
  bool tunnel_recorded_ = false;  // close_tunnel_now() wrote the record already

  std::vector<std::string_view> spans_;  // scratch for parser body output
  std::string body_;                     // prefetched request body (the retry buffer)
  bool body_complete_ = false;           // the whole request body has been read from the client
  bool body_started_streaming_ = false;  // bytes past body_ were sent: not replayable
  uint64_t body_bytes_in_ = 0;
  std::string scratch_head_;             // response head being written
  // Routing (Router::route): the normalized target sent upstream when normalization changed the
  // path (empty: the target as received), or why the path was refused (then the answer is 400).
  std::string forward_target_;
  std::string_view path_problem_;
  // The request in progress's route (issue 19): its config (nullptr: none matched), whether a
  // route of another method matched (405), the values of header-rule variables, the effective
  // response timeout (the route's or the cluster's), and whether the peer is a trusted proxy.
  const config::RouteConfig* route_ = nullptr;
  bool method_refused_ = false;
  http::HeaderVariables variables_;
  Millis response_timeout_{0};
  bool peer_trusted_ = false;
  std::string rewrite_scratch_;
  // The listener's scheme: X-Forwarded-Proto, Forwarded proto=, $scheme: "https" when the client
  // connection is TLS (set by the constructor).
  std::string_view scheme_ = "http";
  // Scratch reused by every Exchange of this session (no allocation per request once warm).
  std::string upstream_head_;
  std::string chunk_header_;
  std::vector<asio::const_buffer> out_buffers_;
  std::vector<std::string_view> response_spans_;

  observe::RequestRecord record_;  // the request in progress (reused: see RequestRecord::reset)
  uint32_t requests_served_ = 0;
  bool idle_ = false;
  uint64_t idle_epoch_ = 0;  // WorkerContext::idle_epoch when the idle wait began
  TimePoint idle_since_{};   // when the idle wait began (the idle age of a watched close)
  bool park_requested_ = false;
  bool parked_ = false;
  bool close_after_response_ = false;
  // needle's own reply ended the connection (send_local with keep_alive false): run() lingers
  // before closing, so unread client bytes do not turn the close into a RST.
  bool linger_before_close_ = false;
};

}  // namespace needle::proxy
