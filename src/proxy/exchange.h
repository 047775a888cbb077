#pragma once
// One attempt of one request on one upstream connection: send the head and body, read the
// response head, relay the response to the client. The caller (DownstreamSession) decides on
// retries from the ExchangeResult; the exchange never retries by itself.
//
// Full duplex: when the request body is not fully held in the retry buffer, the rest is pumped
// client -> upstream concurrently with reading the response, so an upstream that answers while
// it reads (echo, early 413) never deadlocks against needle's own backpressure. Whichever side
// ends first stops the other (relay_response's end, or the pump's client failure): Asio's
// awaitable operator&& cancels the other branch only when one throws, and the data path
// reports errors as values.
#include <memory>
#include <string>

#include "base/buffer_pool.h"
#include "base/cause.h"
#include "http/message.h"
#include "http/parser.h"
#include "net/socket_io.h"
#include "observe/request_record.h"
#include "proxy/cluster_runtime.h"
#include "proxy/watchdog.h"
#include "upstream/connection_pool.h"

namespace needle::proxy {

class DownstreamSession;

struct ExchangeResult {
  // none: the response was relayed completely on a connection fit to keep.
  // stray_bytes_after_response: relayed completely too (response_relayed), but the upstream
  // sent bytes behind it, so the connection was closed. Anything else: the attempt failed.
  Cause cause = Cause::none;
  bool response_relayed = false;  // the whole response reached the client
  int status = 0;                 // upstream status, when a head arrived
  bool response_bytes_received = false;
  bool client_response_started = false;  // response bytes went to the client: no error page now
  bool keep_client = false;              // with response_relayed: the client connection may stay
  // A 101 answered the upgrade request and its head reached the client: the caller runs the
  // tunnel (Exchange::take_tunnel_start). response_relayed is false then.
  bool switched_protocols = false;
  std::string detail;
};

// What a tunnel starts from after a 101: the upstream connection (never pooled again) and the
// bytes read behind the 101 head, which belong to the new protocol.
struct TunnelStart {
  upstream::ConnectionLease lease;
  PooledBuffer buffer;
  size_t begin = 0;
  size_t end = 0;
  std::string_view pending() const { return {buffer.data() + begin, end - begin}; }
};

class Exchange {
 public:
  Exchange(DownstreamSession& session, ClusterRuntime& cluster, upstream::ConnectionLease lease,
           observe::AttemptRecord& attempt, observe::RequestRecord& record);
  ~Exchange();

  net::Task<ExchangeResult> run();
  // After a run() that switched protocols: the connection and the bytes behind the 101. The
  // response parser goes back to the worker now (a tunnel holds none).
  TunnelStart take_tunnel_start();

 private:
  enum Phase : int { kUpstreamWrite = 1, kResponse };

  // Where the response stands. relay_response() moves through it in order; a failure (cause
  // set) can end any state.
  enum class ResponseState : uint8_t {
    head,      // waiting for the final head (interim 1xx responses are dropped on the way)
    body,      // final head parsed and rewritten; body bytes go to the client as they arrive
    complete,  // the message ended where its framing (or the close that delimits it) says
    switched,  // a 101 to an upgrade request: its head is for the client, the rest is a tunnel
    failed,    // result_.cause says why; nothing more is read or written
  };
  // What relay_response() does next.
  enum class RelayStep : uint8_t { read, write, finished };

  net::Task<void> pump_request_body();
  net::Task<void> relay_response();
  // Feeds buffered response bytes to the parser until something is staged for the client
  // (write), more bytes are needed (read), or the response ended or failed (finished).
  RelayStep advance();
  // The final head arrived: rewrite it for the client and decide whether the client stays.
  void on_final_head();
  // A 101 arrived (only an upgrade request allows one): false (failed) if it switches to a
  // protocol the request did not offer; else its head is staged for the client.
  bool on_switching_head();
  // Stages the pending head, `spans` and the closing chunk in session_.out_buffers_; false if
  // there is nothing to write.
  bool stage_client_write(const std::vector<std::string_view>& spans);
  // An upstream read failed: a close that delimits the body completes it (write: the closing
  // chunk is staged), anything else fails the response.
  RelayStep on_read_error(const std::error_code& ec);
  void fail(Cause cause, std::string detail);
  // Stops the request body pump after the response ended either way (see the header comment).
  void stop_pump();
  // The one place that decides what happens to the upstream connection after the exchange.
  void finish_lease();

  // Accounts for a write of the request head (and held body); false (cause set) if it failed.
  bool upstream_written(const net::IoResult& written);
  Cause reset_cause() const;
  Cause classify_read_error(const std::error_code& ec) const;

  DownstreamSession& session_;
  ClusterRuntime& cluster_;
  upstream::ConnectionLease lease_;
  observe::AttemptRecord& attempt_;
  observe::RequestRecord& record_;
  Watchdog& upstream_watchdog_;  // the session's: response timeout, cancels the upstream socket
  std::unique_ptr<http::ResponseParser> parser_;  // lent by the worker for this exchange
  ExchangeResult result_;

  http::BodyFraming upstream_framing_ = http::BodyFraming::none;
  // Response relay: bytes [response_begin_, response_end_) of response_buffer_ are read and
  // not yet parsed. Bytes left there once the response is complete are stray.
  ResponseState state_ = ResponseState::head;
  PooledBuffer response_buffer_;
  size_t response_begin_ = 0;
  size_t response_end_ = 0;
  http::BodyFraming client_framing_ = http::BodyFraming::none;
  bool head_pending_ = false;     // final head serialized, not yet written to the client
  bool feed_after_head_ = false;  // a bodiless message completes on the feed after its head

  bool pump_running_ = false;
  bool pump_done_ = false;  // request body completely sent upstream
  bool pump_failed_client_ = false;
  bool relay_over_ = false;  // relay_response() returned: the pump must stop
  Cause pump_cause_ = Cause::none;
};

}  // namespace needle::proxy
