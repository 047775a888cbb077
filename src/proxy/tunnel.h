#pragma once
// The byte tunnel after a 101 (RFC 9110 7.8, 15.2.2; RFC 6455 4): two pumps, client -> upstream
// and upstream -> client, each reading one side and writing what it read to the other before it
// reads again, so a slow receiver holds back its sender (backpressure: at most one buffer in
// flight per direction). A FIN is relayed as a FIN: shutdown(send) on the other side, and the
// other direction stays open until it ends too (half-close). The tunnel ends when both
// directions ended, on any error (both sides are cut), at the idle limit (no byte either way),
// or when close() is called (drain, reload). docs/architecture.md "Upgrade tunnels".
//
// The I/O is written against four operations found in namespace tunnel_io, so the tunnel works
// on any stream that has them (net::Socket, and net::Stream, plain or TLS):
//   read_some(s, mutable_buffer), write_all(s, const_buffer)  -> awaitable (error_code, size_t)
//   shutdown_send(s), cancel(s)                               -> void, never fail
//
// Memory: an idle tunnel holds no pooled buffer. Each direction reads into a small inline
// buffer; a read that fills it takes a pooled buffer for the bulk transfer that follows, and a
// read that fills less than the inline buffer gives it back.
#include <algorithm>
#include <array>
#include <cstdint>
#include <string_view>

#include <asio/experimental/awaitable_operators.hpp>

#include "base/buffer_pool.h"
#include "base/clock.h"
#include "net/socket_io.h"
#include "proxy/watchdog.h"

namespace needle::proxy {

// Who ended the tunnel (docs/access-log.md `tunnel.closed_by`; metric label): the side that
// closed or failed first, the idle limit, or needle's drain (SIGTERM, or a reload's
// drain_timeout for tunnels opened before it).
enum class TunnelCloser : uint8_t { client, upstream, idle_timeout, drain };
inline constexpr size_t kTunnelCloserCount = 4;
std::string_view tunnel_closer_name(TunnelCloser closer);

namespace tunnel_io {
inline auto read_some(net::Socket& s, asio::mutable_buffer into) { return net::read_some(s, into); }
inline auto write_all(net::Socket& s, asio::const_buffer from) { return net::write_all(s, from); }
inline void shutdown_send(net::Socket& s) {
  std::error_code ignored;
  s.shutdown(asio::socket_base::shutdown_send, ignored);
}
inline void cancel(net::Socket& s) {
  std::error_code ignored;
  s.cancel(ignored);
}
// A stream that may be TLS (net/stream.h): the plaintext is relayed; a FIN relayed to a TLS peer
// is preceded by its close_notify (Stream::shutdown).
inline auto read_some(net::Stream& s, asio::mutable_buffer into) {
  return net::read_some(s, into);
}
inline auto write_all(net::Stream& s, asio::const_buffer from) { return net::write_all(s, from); }
inline void shutdown_send(net::Stream& s) {
  std::error_code ignored;
  s.shutdown(asio::socket_base::shutdown_send, ignored);
}
inline void cancel(net::Stream& s) {
  std::error_code ignored;
  s.cancel(ignored);
}
}  // namespace tunnel_io

struct TunnelStats {
  uint64_t bytes_from_client = 0;  // relayed client -> upstream (pending bytes included)
  uint64_t bytes_to_client = 0;    // relayed upstream -> client (pending bytes included)
  TunnelCloser closed_by = TunnelCloser::client;
  std::string_view detail;  // what failed first, if anything did ("" for FINs and timeouts)
  std::error_code error;    // and its error
};

template <typename ClientStream, typename UpstreamStream>
class Tunnel {
 public:
  // Bytes already read behind the heads go first: `client_pending` (after the upgrade request)
  // to the upstream, `upstream_pending` (after the 101 head) to the client. Both views must stay
  // valid until run() has written them (the caller keeps their buffers until run() ends).
  Tunnel(ClientStream& client, UpstreamStream& upstream, net::Executor executor,
         BufferPool& buffers, Millis idle_timeout)
      : client_(client),
        upstream_(upstream),
        buffers_(buffers),
        idle_timeout_(idle_timeout),
        watchdog_(std::move(executor), [this] {
          close(watchdog_.expired_phase() == kDrainPhase ? TunnelCloser::drain
                                                         : TunnelCloser::idle_timeout);
        }) {}
  Tunnel(const Tunnel&) = delete;
  Tunnel& operator=(const Tunnel&) = delete;

  net::Task<TunnelStats> run(std::string_view client_pending, std::string_view upstream_pending) {
    using namespace asio::experimental::awaitable_operators;
    touch();
    co_await (pump(client_, upstream_, to_upstream_, client_pending) &&
              pump(upstream_, client_, to_client_, upstream_pending));
    watchdog_.disarm();
    stats_.bytes_from_client = to_upstream_.bytes;
    stats_.bytes_to_client = to_client_.bytes;
    co_return stats_;
  }

  // Ends the tunnel now (first caller's reason wins): both streams are cancelled, run() returns.
  void close(TunnelCloser why) {
    if (!closing_) {
      closing_ = true;
      if (!closer_known_) set_closer(why);
    }
    tunnel_io::cancel(client_);
    tunnel_io::cancel(upstream_);
  }
  // The tunnel ends at `deadline` at the latest (a reload's drain_timeout), as `drain`.
  void close_at(TimePoint deadline) {
    stop_at_ = std::min(stop_at_, deadline);
    touch();
  }
  bool closing() const { return closing_; }
  // Relayed so far (for a record written before run() returns: the drain timeout).
  TunnelStats stats_so_far() const {
    TunnelStats s = stats_;
    s.bytes_from_client = to_upstream_.bytes;
    s.bytes_to_client = to_client_.bytes;
    return s;
  }

 private:
  static constexpr int kIdlePhase = 1;
  static constexpr int kDrainPhase = 2;
  static constexpr size_t kInlineBytes = 2048;

  struct Direction {
    Direction(TunnelCloser reader, TunnelCloser writer)
        : reader_side(reader), writer_side(writer) {}
    TunnelCloser reader_side;  // whose FIN or error ends this direction's reads
    TunnelCloser writer_side;
    std::array<char, kInlineBytes> inline_bytes{};
    PooledBuffer bulk;  // held while reads fill the inline buffer (bulk transfer)
    uint64_t bytes = 0;
  };

  // Moves the idle deadline (and the drain deadline, if one is set) from now: a field write.
  void touch() {
    const TimePoint now = std::chrono::steady_clock::now();
    if (stop_at_ != TimePoint::max() && stop_at_ <= now + idle_timeout_) {
      watchdog_.arm(std::chrono::ceil<Millis>(std::max(stop_at_ - now, Duration(0))), kDrainPhase);
    } else {
      watchdog_.arm(idle_timeout_, kIdlePhase);
    }
  }

  void set_closer(TunnelCloser who) {
    closer_known_ = true;
    stats_.closed_by = who;
  }

  // A direction failed: whoever failed first closed the tunnel; cut the other direction too.
  void fail(TunnelCloser who, std::string_view what, std::error_code error) {
    if (!closing_ && !closer_known_) {
      stats_.detail = what;
      stats_.error = error;
    }
    close(who);
  }

  template <typename From, typename To>
  net::Task<void> pump(From& from, To& to, Direction& d, std::string_view pending) {
    if (!pending.empty()) {
      auto [ec, n] = co_await tunnel_io::write_all(to, asio::buffer(pending));
      d.bytes += n;
      if (ec) co_return fail(d.writer_side, "write failed", ec);
      touch();
    }
    for (;;) {
      const bool bulk = static_cast<bool>(d.bulk);
      char* into = bulk ? d.bulk.data() : d.inline_bytes.data();
      const size_t room = bulk ? d.bulk.size() : d.inline_bytes.size();
      auto [read_error, n] = co_await tunnel_io::read_some(from, asio::buffer(into, room));
      if (closing_) co_return;
      if (read_error == asio::error::eof) {
        // Half-close (RFC 9293 3.6): the other side gets the FIN, the other direction goes on.
        if (!closer_known_) set_closer(d.reader_side);
        tunnel_io::shutdown_send(to);
        d.bulk.reset();
        co_return;
      }
      if (read_error) co_return fail(d.reader_side, "read failed", read_error);
      touch();
      auto [write_error, written] = co_await tunnel_io::write_all(to, asio::buffer(into, n));
      d.bytes += written;
      if (closing_) co_return;
      if (write_error) co_return fail(d.writer_side, "write failed", write_error);
      touch();
      if (!bulk && n == room) {
        d.bulk = buffers_.acquire();
      } else if (bulk && n < kInlineBytes) {
        d.bulk.reset();
      }
    }
  }

  ClientStream& client_;
  UpstreamStream& upstream_;
  BufferPool& buffers_;
  const Millis idle_timeout_;
  TimePoint stop_at_ = TimePoint::max();
  Watchdog watchdog_;  // idle limit, or the drain deadline when that comes first
  Direction to_upstream_{TunnelCloser::client, TunnelCloser::upstream};
  Direction to_client_{TunnelCloser::upstream, TunnelCloser::client};
  TunnelStats stats_;
  bool closer_known_ = false;
  bool closing_ = false;
};

}  // namespace needle::proxy
