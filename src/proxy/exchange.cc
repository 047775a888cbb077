#include "proxy/exchange.h"

#include <cstring>
#include <optional>

#include <asio/experimental/awaitable_operators.hpp>
#include <fmt/format.h>

#include "http/serializer.h"
#include "http/upgrade.h"
#include "net/receive_queue_hint.h"
#include "net/socket_io.h"
#include "proxy/downstream_session.h"

namespace needle::proxy {
namespace {

bool is_peer_reset(const std::error_code& ec) {
  return ec == asio::error::eof || ec == asio::error::connection_reset ||
         ec == asio::error::broken_pipe || ec == asio::error::connection_aborted;
}

// Appends `spans` to `out` as one body piece in `framing` (one chunk for all spans when chunked).
void frame_body(http::BodyFraming framing, const std::vector<std::string_view>& spans,
                std::string& chunk_header, std::vector<asio::const_buffer>& out) {
  size_t total = 0;
  for (auto span : spans) total += span.size();
  if (total == 0) return;
  if (framing == http::BodyFraming::chunked) {
    chunk_header.clear();
    http::write_chunk_header(total, chunk_header);
    out.push_back(asio::buffer(chunk_header));
  }
  for (auto span : spans) {
    if (!span.empty()) out.push_back(asio::buffer(span.data(), span.size()));
  }
  if (framing == http::BodyFraming::chunked) out.push_back(asio::buffer(http::kChunkEnd));
}

size_t buffers_size(const std::vector<asio::const_buffer>& buffers) {
  size_t n = 0;
  for (const auto& b : buffers) n += b.size();
  return n;
}

}  // namespace

Exchange::Exchange(DownstreamSession& session, ClusterRuntime& cluster,
                   upstream::ConnectionLease lease, observe::AttemptRecord& attempt,
                   observe::RequestRecord& record)
    : session_(session),
      cluster_(cluster),
      lease_(std::move(lease)),
      attempt_(attempt),
      record_(record),
      upstream_watchdog_(session.upstream_watchdog_),
      parser_(session.worker_.response_parsers.acquire()) {
  session_.upstream_socket_ = &lease_->socket();
}

TunnelStart Exchange::take_tunnel_start() {
  session_.worker_.response_parsers.give_back(std::move(parser_));
  return TunnelStart{.lease = std::move(lease_),
                     .buffer = std::move(response_buffer_),
                     .begin = response_begin_,
                     .end = response_end_};
}

Exchange::~Exchange() {
  upstream_watchdog_.disarm();
  session_.end_client_watch();
  session_.upstream_socket_ = nullptr;
  session_.worker_.response_parsers.give_back(std::move(parser_));
}

Cause Exchange::reset_cause() const {
  return lease_->reused() ? Cause::reset_before_response_on_reused
                          : Cause::reset_before_response_on_new;
}

Cause Exchange::classify_read_error(const std::error_code& ec) const {
  if (upstream_watchdog_.expired()) return Cause::response_timeout;
  if (!result_.response_bytes_received && is_peer_reset(ec)) return reset_cause();
  return Cause::closed_mid_response;
}

bool Exchange::upstream_written(const net::IoResult& written) {
  attempt_.bytes_written += written.bytes;
  if (written.error) {
    if (upstream_watchdog_.expired()) {
      result_.cause = Cause::response_timeout;
    } else if (is_peer_reset(written.error) && !result_.response_bytes_received) {
      result_.cause = reset_cause();
    } else {
      result_.cause = Cause::upstream_write_failed;
    }
    result_.detail = fmt::format("write to {}: {}", attempt_.upstream, written.error.message());
    return false;
  }
  return true;
}

net::Task<ExchangeResult> Exchange::run() {
  const auto& request = session_.parser_.head();
  upstream_framing_ = request.framing;

  std::string& head = session_.upstream_head_;
  head.clear();
  const auto& server = session_.server_config();
  const config::RouteConfig* route = session_.route_;
  http::UpstreamRequestContext ctx{.client_address = session_.client_address_,
                                   .proto = session_.scheme_,
                                   .request_id = session_.record_.request_id,
                                   .target = session_.forward_target_,
                                   .host = session_.upstream_host(attempt_.upstream),
                                   .peer_trusted = session_.peer_trusted_,
                                   .via = server.via,
                                   .forwarded = server.forwarded,
                                   .rules = route != nullptr && !route->request_headers.empty()
                                                ? &route->request_headers
                                                : nullptr,
                                   .variables = &session_.variables_,

                                   .upgrade = session_.upgrade_offered()};
  http::write_upstream_request_head(request, ctx, upstream_framing_, head);

  // The head and the held body (all of it, or the retry buffer's prefix of a streamed one): a
  // retry sends exactly what the first attempt sent, then streams the rest.
  std::vector<asio::const_buffer>& out = session_.out_buffers_;
  out.clear();
  out.push_back(asio::buffer(head));
  if (!session_.body_.empty()) {
    std::vector<std::string_view>& held = session_.response_spans_;
    held.assign(1, std::string_view(session_.body_));
    frame_body(upstream_framing_, held, session_.chunk_header_, out);
  }
  if (session_.body_complete_ && upstream_framing_ == http::BodyFraming::chunked) {
    out.push_back(asio::buffer(http::kLastChunk));
  }
  net::IoResult written;
  if (net::write_now(lease_->stream(), out, written)) {  // the watchdog guards only a wait
    upstream_watchdog_.arm(session_.response_timeout_, kUpstreamWrite);
    written += net::to_result(co_await net::write_all(lease_->stream(), out));
  }
  if (!upstream_written(written)) {
    upstream_watchdog_.disarm();
    finish_lease();
    co_return result_;
  }
  session_.begin_client_watch();  // until the response starts (on_final_head ends it)

  if (!session_.body_complete_) {
    using namespace asio::experimental::awaitable_operators;
    session_.body_started_streaming_ = true;
    co_await (pump_request_body() && relay_response());
  } else {
    pump_done_ = true;
    co_await relay_response();
  }
  upstream_watchdog_.disarm();
  if (result_.cause != Cause::none && session_.client_aborted()) {
    // The client watch cancelled the upstream socket: the client left, not the upstream.
    result_.cause = Cause::client_closed;
    result_.detail = "client closed the connection before the response";
  }

  if (pump_failed_client_ && state_ != ResponseState::complete) {
    result_.cause = pump_cause_;
    result_.keep_client = false;
  }
  result_.response_relayed = state_ == ResponseState::complete && result_.cause == Cause::none;
  result_.switched_protocols = state_ == ResponseState::switched && result_.cause == Cause::none;
  finish_lease();
  if (!pump_done_) result_.keep_client = false;  // unread request body: the connection is spent
  co_return result_;
}

// The reuse decision of the exchange, as guard clauses; the pool's own predicate
// (PoolCore::why_not_reusable: keep-alive, max requests, max age, draining) comes after it.
void Exchange::finish_lease() {
  if (result_.switched_protocols) return;  // the tunnel takes it (take_tunnel_start)
  if (!result_.response_relayed) return lease_.discard();  // failed: the connection is suspect
  // An upgrade request's connection was opened for it and is never pooled, whatever the answer
  // (docs/architecture.md "Upgrade tunnels").
  if (!session_.upgrade_offered().empty()) return lease_.discard();
  if (response_begin_ < response_end_) {
    // Bytes behind a complete response (past its Content-Length, after its last chunk, a body
    // on a bodiless response): the connection is out of sync, and a next exchange on it would
    // read them as its response (RFC 9112 6.3: framing decides where a message ends).
    result_.cause = Cause::stray_bytes_after_response;
    result_.detail = fmt::format("{} stray bytes from {} after a complete response",
                                 response_end_ - response_begin_, attempt_.upstream);
    return lease_.discard();
  }
  if (!pump_done_) return lease_.discard();  // the upstream still expects request body bytes
  const auto& response = parser_->head();
  lease_.release(upstream::ReleaseInfo{.response_complete = true,
                                       .upstream_keep_alive = response.keep_alive,
                                       .keep_alive_hint = response.keep_alive_hint});
}

net::Task<void> Exchange::pump_request_body() {
  pump_running_ = true;
  std::vector<std::string_view> spans;
  std::vector<asio::const_buffer> out;
  std::string chunk_header;
  while (!relay_over_) {
    const BodyReadStatus status = co_await session_.read_body(spans);
    if (relay_over_) break;  // the response ended (or failed) first: stop_pump() stopped us
    if (status == BodyReadStatus::more || status == BodyReadStatus::complete) {
      out.clear();
      frame_body(upstream_framing_, spans, chunk_header, out);
      if (status == BodyReadStatus::complete && upstream_framing_ == http::BodyFraming::chunked) {
        out.push_back(asio::buffer(http::kLastChunk));
      }
      if (!out.empty()) {
        net::IoResult written;
        if (net::write_now(lease_->stream(), out, written)) {
          written += net::to_result(co_await net::write_all(lease_->stream(), out));
        }
        attempt_.bytes_written += written.bytes;
        if (relay_over_) break;
        if (written.error) {
          // The upstream stopped reading (it may have answered early, e.g. 413): let
          // relay_response find out what it said.
          break;
        }
        // Progress extends the deadline.
        upstream_watchdog_.arm(session_.response_timeout_, kResponse);
      }
      if (status == BodyReadStatus::complete) {
        pump_done_ = true;
        break;
      }
      continue;
    }
    pump_failed_client_ = true;
    pump_cause_ = status == BodyReadStatus::client_timeout ? Cause::client_timeout
                  : status == BodyReadStatus::bad_body     ? Cause::bad_request
                                                           : Cause::client_closed;
    std::error_code ec;
    lease_->socket().cancel(ec);  // stop relay_response: this request is over
    break;
  }
  pump_running_ = false;
}

void Exchange::stop_pump() {
  relay_over_ = true;
  if (!pump_running_) return;
  // The pump waits on the client (its next body bytes) or on the upstream (a write the upstream
  // does not take). After a complete response the rest of the body is not needed; after a
  // failure the error response must not wait for the upload or body_timeout. The unread body
  // leaves the client connection unusable: it closes after this response.
  std::error_code ec;
  session_.socket_.cancel(ec);
  lease_->socket().cancel(ec);
  result_.keep_client = false;
}

void Exchange::fail(Cause cause, std::string detail) {
  state_ = ResponseState::failed;
  result_.cause = cause;
  result_.detail = std::move(detail);
}

void Exchange::on_final_head() {
  const auto& request = session_.parser_.head();
  const auto& response = parser_->head();
  state_ = ResponseState::body;
  session_.end_client_watch();  // the response starts: its writes see a closed client
  result_.status = response.status;
  attempt_.status = response.status;
  const bool no_body = request.is_head() || response.status == 204 || response.status == 304;
  const bool needs_close_delimit = !no_body && request.version_minor == 0 &&
                                   (response.framing == http::BodyFraming::chunked ||
                                    response.framing == http::BodyFraming::until_close);
  result_.keep_client =
      session_.may_keep_client() && session_.body_complete_ && !needs_close_delimit;
  http::DownstreamResponseContext dctx{
      .client_version_minor = request.version_minor,
      .request_is_head = request.is_head(),
      .keep_alive = result_.keep_client,
      .keep_alive_timeout = session_.server_config().client_idle_timeout,
      .server = session_.server_config().server_header ? *session_.server_config().server_header
                                                       : std::string_view(),
      .rules = session_.route_ != nullptr && !session_.route_->response_headers.empty()
                   ? &session_.route_->response_headers
                   : nullptr,
      .variables = &session_.variables_};
  session_.scratch_head_.clear();
  client_framing_ = http::write_downstream_response_head(response, dctx, session_.scratch_head_);
  if (client_framing_ == http::BodyFraming::until_close) result_.keep_client = false;
  head_pending_ = true;
  feed_after_head_ = true;
}

bool Exchange::on_switching_head() {
  const auto& response = parser_->head();
  session_.end_client_watch();
  result_.status = response.status;
  attempt_.status = response.status;
  if (!http::switches_to_offered(response, session_.upgrade_offered())) {
    const std::string* chosen = response.headers.find(http::FieldId::upgrade);
    fail(Cause::invalid_response,
         fmt::format("101 from {} switches to '{}', which the request did not offer ('{}')",
                     attempt_.upstream, chosen ? *chosen : "", session_.upgrade_offered()));
    return false;
  }
  state_ = ResponseState::switched;
  session_.scratch_head_.clear();
  http::write_switching_response_head(response, session_.scratch_head_);
  head_pending_ = true;
  return true;
}

bool Exchange::stage_client_write(const std::vector<std::string_view>& spans) {
  std::vector<asio::const_buffer>& out = session_.out_buffers_;
  out.clear();
  if (head_pending_) out.push_back(asio::buffer(session_.scratch_head_));
  frame_body(client_framing_, spans, session_.chunk_header_, out);
  if (state_ == ResponseState::complete && client_framing_ == http::BodyFraming::chunked) {
    out.push_back(asio::buffer(http::kLastChunk));
  }
  if (out.empty()) return false;
  head_pending_ = false;
  return true;
}

Exchange::RelayStep Exchange::advance() {
  http::ResponseParser& parser = *parser_;
  std::vector<std::string_view>& spans = session_.response_spans_;
  while (state_ == ResponseState::head || state_ == ResponseState::body) {
    if (response_begin_ == response_end_ && !feed_after_head_) return RelayStep::read;
    feed_after_head_ = false;
    spans.clear();
    const auto fed = parser.feed(std::string_view(response_buffer_.data() + response_begin_,
                                                  response_end_ - response_begin_),
                                 spans);
    response_begin_ += fed.consumed;
    switch (fed.stop) {
      case http::ParseStop::head_complete:
        if (parser.head().status == 101) {  // the parser allows it only after an Upgrade offer
          if (!on_switching_head()) return RelayStep::finished;
          break;  // the 101 head goes out; the bytes behind it are the tunnel's, unparsed
        }
        if (parser.head().status < 200) {  // interim 1xx: dropped; its end is the next feed
          feed_after_head_ = true;
          continue;
        }
        on_final_head();
        continue;  // feed the rest at once: the head goes out with the first body bytes
      case http::ParseStop::message_complete:
        if (state_ == ResponseState::head) {  // the end of an interim response
          parser.reset();
          parser.set_request_is_head(session_.parser_.head().is_head());
          continue;
        }
        state_ = ResponseState::complete;
        break;
      case http::ParseStop::error:
        fail(Cause::invalid_response,
             fmt::format("invalid response from {}: {}", attempt_.upstream, parser.error().cause));
        return RelayStep::finished;
      case http::ParseStop::need_more:
        if (state_ == ResponseState::head) continue;
        break;
    }
    if (stage_client_write(spans)) return RelayStep::write;
  }
  return RelayStep::finished;
}

Exchange::RelayStep Exchange::on_read_error(const std::error_code& ec) {
  if (pump_failed_client_) {
    fail(pump_cause_, {});
    return RelayStep::finished;
  }
  if (ec == asio::error::eof && state_ == ResponseState::body &&
      parser_->finish().stop == http::ParseStop::message_complete) {
    // A close-delimited body (RFC 9112 6.3 item 8) ends here.
    state_ = ResponseState::complete;
    session_.response_spans_.clear();
    return stage_client_write(session_.response_spans_) ? RelayStep::write : RelayStep::finished;
  }
  fail(classify_read_error(ec),
       fmt::format("read from {}: {}{}", attempt_.upstream, ec.message(),
                   state_ == ResponseState::body ? " (response incomplete)" : ""));
  return RelayStep::finished;
}

net::Task<void> Exchange::relay_response() {
  parser_->reset();
  parser_->set_request_is_head(session_.parser_.head().is_head());
  parser_->set_upgrade_requested(!session_.upgrade_offered().empty());
  response_buffer_ = session_.worker_.upstream_buffers.acquire();
  // The response deadline is armed before each read below (the first comes before any parse).
  // A step staged by on_read_error (the last chunk of a close-delimited body) runs before the
  // next advance(), which would find the response complete and stage nothing.
  std::optional<RelayStep> staged;
  for (;;) {
    const RelayStep step = staged ? *staged : advance();
    staged.reset();
    if (step == RelayStep::finished) break;
    if (step == RelayStep::write) {
      std::vector<asio::const_buffer>& out = session_.out_buffers_;
      result_.client_response_started = true;
      const size_t n = buffers_size(out);
      // session_.write_client(out), inline: the hot path's one write, without a coroutine frame.
      net::IoResult written;
      if (net::write_now(session_.socket_, out, written)) {  // the client is slow: wait
        session_.write_watchdog_.arm(session_.server_config().send_timeout,
                                     DownstreamSession::kSend);
        written += net::to_result(co_await net::write_all(session_.socket_, out));
        session_.write_watchdog_.disarm();
      }
      if (written.error) {
        fail(session_.write_watchdog_.expired() ? Cause::client_timeout : Cause::client_closed,
             "client stopped receiving the response");
        break;
      }
      record_.bytes_out += n;
      continue;
    }
    // RelayStep::read
    if (response_begin_ == response_end_) {
      response_begin_ = response_end_ = 0;
    } else if (response_end_ == response_buffer_.size()) {
      std::memmove(response_buffer_.data(), response_buffer_.data() + response_begin_,
                   response_end_ - response_begin_);
      response_end_ -= response_begin_;
      response_begin_ = 0;
    }
    upstream_watchdog_.arm(session_.response_timeout_, kResponse);
    // Draining reads: the read that ends a response leaves the reactor knowing whether the
    // queue is empty, so the pool may skip the next checkout's probe (host_pool.cc). A RST
    // right behind bytes read is invisible to TCP_CM_INQ, so every read after the first starts
    // with a recv() again, as Asio's stock read does: a reset mid-response ends the exchange
    // at once, not at the response timeout (net/draining_read.h).
    if (result_.response_bytes_received) net::note_receive_queue_unknown(lease_->socket());
    auto read = net::to_result(co_await net::read_some_draining(
        lease_->stream(), asio::buffer(response_buffer_.data() + response_end_,
                                       response_buffer_.size() - response_end_)));
    if (read.error) {
      staged = on_read_error(read.error);  // finished, or the closing write of a close-delimited
      continue;                            // body (then finished)
    }
    response_end_ += read.bytes;
    attempt_.bytes_read += read.bytes;
    result_.response_bytes_received = true;
  }
  stop_pump();
}

}  // namespace needle::proxy
