#include "proxy/exchange.h"

#include <cstring>

#include <asio/experimental/awaitable_operators.hpp>
#include <fmt/format.h>

#include "http/serializer.h"
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
  const auto& cfg = cluster_.config();
  upstream_framing_ = request.framing;

  std::string& head = session_.upstream_head_;
  head.clear();
  http::UpstreamRequestContext ctx{.client_address = session_.client_address_,
                                   .proto = "http",
                                   .request_id = session_.record_.request_id};
  http::write_upstream_request_head(request, ctx, upstream_framing_, head);

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
  if (net::write_now(lease_->socket(), out, written)) {  // the watchdog guards only a wait
    upstream_watchdog_.arm(cfg.response_timeout, kUpstreamWrite);
    written += net::to_result(co_await net::write_all(lease_->socket(), out));
  }
  if (!upstream_written(written)) {
    upstream_watchdog_.disarm();
    lease_.discard();
    co_return result_;
  }
  session_.begin_client_watch();  // until the response starts (relay_response ends it)

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

  if (pump_failed_client_ && !response_done_) {
    result_.cause = pump_cause_;
    result_.keep_client = false;
  }
  if (result_.cause == Cause::none && pump_done_) {
    const auto& response = parser_->head();
    lease_.release(upstream::ReleaseInfo{.response_complete = true,
                                         .upstream_keep_alive = response.keep_alive,
                                         .keep_alive_hint = response.keep_alive_hint});
  } else {
    lease_.discard();
  }
  if (!pump_done_) result_.keep_client = false;  // unread request body: the connection is spent
  co_return result_;
}

net::Task<void> Exchange::pump_request_body() {
  pump_running_ = true;
  const auto& cfg = cluster_.config();
  std::vector<std::string_view> spans;
  std::vector<asio::const_buffer> out;
  std::string chunk_header;
  for (;;) {
    const BodyReadStatus status = co_await session_.read_body(spans);
    if (response_done_) break;  // the response finished first; relay_response stopped us
    if (status == BodyReadStatus::more || status == BodyReadStatus::complete) {
      out.clear();
      frame_body(upstream_framing_, spans, chunk_header, out);
      if (status == BodyReadStatus::complete && upstream_framing_ == http::BodyFraming::chunked) {
        out.push_back(asio::buffer(http::kLastChunk));
      }
      if (!out.empty()) {
        net::IoResult written;
        if (net::write_now(lease_->socket(), out, written)) {
          written += net::to_result(co_await net::write_all(lease_->socket(), out));
        }
        attempt_.bytes_written += written.bytes;
        if (written.error) {
          // The upstream stopped reading (it may have answered early, e.g. 413): let
          // relay_response find out what it said.
          break;
        }
        upstream_watchdog_.arm(cfg.response_timeout, kResponse);  // progress extends the deadline
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

net::Task<void> Exchange::relay_response() {
  auto& worker = session_.worker_;
  const auto& request = session_.parser_.head();
  const auto& cfg = cluster_.config();
  http::ResponseParser& parser = *parser_;
  parser.reset();
  parser.set_request_is_head(request.is_head());

  PooledBuffer buffer = worker.upstream_buffers.acquire();
  size_t begin = 0, end = 0;
  std::vector<std::string_view>& spans = session_.response_spans_;
  std::vector<asio::const_buffer>& out = session_.out_buffers_;
  std::string& chunk_header = session_.chunk_header_;
  http::BodyFraming client_framing = http::BodyFraming::none;
  bool head_pending = false;  // final head serialized, not yet written to the client
  bool head_done = false;
  bool done = false;
  // The response deadline is armed before each read below (the first comes before any parse).

  bool feed_again = false;  // after a final head: a bodiless message completes on an empty feed
  while (!done) {
    while ((begin < end || feed_again) && !done) {
      feed_again = false;
      spans.clear();
      const auto fed = parser.feed(std::string_view(buffer.data() + begin, end - begin), spans);
      begin += fed.consumed;
      switch (fed.stop) {
        case http::ParseStop::head_complete: {
          const auto& response = parser.head();
          if (response.status < 200) break;  // interim 1xx: dropped, its end follows
          head_done = true;
          session_.end_client_watch();  // the response starts: its writes see a closed client
          result_.status = response.status;
          attempt_.status = response.status;
          const bool no_body = request.is_head() || response.status == 204 ||
                               response.status == 304;
          const bool needs_close_delimit =
              !no_body && request.version_minor == 0 &&
              (response.framing == http::BodyFraming::chunked ||
               response.framing == http::BodyFraming::until_close);
          result_.keep_client = session_.may_keep_client() && session_.body_complete_ &&
                                !needs_close_delimit;
          http::DownstreamResponseContext dctx{
              .client_version_minor = request.version_minor,
              .request_is_head = request.is_head(),
              .keep_alive = result_.keep_client,
              .keep_alive_timeout = session_.server_config().client_idle_timeout};
          session_.scratch_head_.clear();
          client_framing = http::write_downstream_response_head(response, dctx,
                                                                session_.scratch_head_);
          if (client_framing == http::BodyFraming::until_close) result_.keep_client = false;
          head_pending = true;
          feed_again = true;
          break;
        }
        case http::ParseStop::message_complete:
          if (!head_done) {  // end of an interim response
            parser.reset();
            parser.set_request_is_head(request.is_head());
            break;
          }
          done = true;
          break;
        case http::ParseStop::error:
          result_.cause = Cause::invalid_response;
          result_.detail = fmt::format("invalid response from {}: {}", attempt_.upstream,
                                       parser.error().cause);
          co_return;
        case http::ParseStop::need_more:
          break;
      }
      if (!head_done) continue;
      // Coalesce the head with the first body bytes into one write when they are already here.
      if (fed.stop == http::ParseStop::head_complete && begin < end) continue;
      if (!head_pending && spans.empty() && !done) continue;
      out.clear();
      if (head_pending) out.push_back(asio::buffer(session_.scratch_head_));
      frame_body(client_framing, spans, chunk_header, out);
      if (done && client_framing == http::BodyFraming::chunked) {
        out.push_back(asio::buffer(http::kLastChunk));
      }
      if (out.empty()) continue;
      result_.client_response_started = true;
      head_pending = false;
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
        result_.cause = session_.write_watchdog_.expired() ? Cause::client_timeout
                                                           : Cause::client_closed;
        result_.detail = "client stopped receiving the response";
        co_return;
      }
      record_.bytes_out += n;
    }
    if (done) break;

    if (begin == end) {
      begin = end = 0;
    } else if (end == buffer.size()) {
      std::memmove(buffer.data(), buffer.data() + begin, end - begin);
      end -= begin;
      begin = 0;
    }
    upstream_watchdog_.arm(cfg.response_timeout, kResponse);
    // Draining reads: the read that ends a response leaves the reactor knowing whether the
    // queue is empty, so the pool may skip the next checkout's probe (host_pool.cc). A RST
    // right behind bytes read is invisible to TCP_CM_INQ, so every read after the first starts
    // with a recv() again, as Asio's stock read does: a reset mid-response ends the exchange
    // at once, not at the response timeout (net/draining_read.h).
    if (result_.response_bytes_received) net::note_receive_queue_unknown(lease_->socket());
    auto read = net::to_result(co_await net::read_some_draining(
        lease_->socket(), asio::buffer(buffer.data() + end, buffer.size() - end)));
    if (read.error) {
      if (pump_failed_client_) {
        result_.cause = pump_cause_;
        co_return;
      }
      if (read.error == asio::error::eof && head_done) {
        // Close-delimited body (RFC 9112 6.3 item 8) ends here; anything else is truncated.
        spans.clear();
        const auto fin = parser.finish();
        if (fin.stop == http::ParseStop::message_complete) {
          out.clear();
          if (head_pending) out.push_back(asio::buffer(session_.scratch_head_));
          if (client_framing == http::BodyFraming::chunked) {
            out.push_back(asio::buffer(http::kLastChunk));
          }
          if (!out.empty()) {
            result_.client_response_started = true;
            if (!co_await session_.write_client(out)) {
              result_.cause = Cause::client_closed;
              co_return;
            }
            record_.bytes_out += buffers_size(out);
          }
          done = true;
          break;
        }
      }
      result_.cause = classify_read_error(read.error);
      result_.detail = fmt::format("read from {}: {}{}", attempt_.upstream, read.error.message(),
                                   head_done ? " (response incomplete)" : "");
      co_return;
    }
    end += read.bytes;
    attempt_.bytes_read += read.bytes;
    result_.response_bytes_received = true;
  }

  response_done_ = true;
  if (pump_running_) {
    // The upstream answered before reading the whole request body: stop reading it.
    std::error_code ec;
    session_.socket_.cancel(ec);
    result_.keep_client = false;
  }
}

}  // namespace needle::proxy
