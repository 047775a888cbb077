#pragma once
// One attempt of one request on one upstream connection: send the head and body, read the
// response head, relay the response to the client. The caller (DownstreamSession) decides on
// retries from the ExchangeResult; the exchange never retries by itself.
//
// Full duplex: when the request body is not fully held in the retry buffer, the rest is pumped
// client -> upstream concurrently with reading the response, so an upstream that answers while
// it reads (echo, early 413) never deadlocks against needle's own backpressure.
#include <memory>
#include <string>

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
  Cause cause = Cause::none;           // none: the response was relayed completely
  int status = 0;                      // upstream status, when a head arrived
  bool response_bytes_received = false;
  bool client_response_started = false;  // response bytes went to the client: no error page now
  bool keep_client = false;              // with Cause::none: the client connection may be reused
  std::string detail;
};

class Exchange {
 public:
  Exchange(DownstreamSession& session, ClusterRuntime& cluster, upstream::ConnectionLease lease,
           observe::AttemptRecord& attempt, observe::RequestRecord& record);
  ~Exchange();

  net::Task<ExchangeResult> run();

 private:
  enum Phase : int { kUpstreamWrite = 1, kResponse };

  net::Task<void> pump_request_body();
  net::Task<void> relay_response();
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
  bool pump_running_ = false;
  bool pump_done_ = false;      // request body completely sent upstream
  bool pump_failed_client_ = false;
  bool response_done_ = false;
  Cause pump_cause_ = Cause::none;
};

}  // namespace needle::proxy
