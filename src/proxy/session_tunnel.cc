// DownstreamSession's part in an upgrade: the tunnel after a 101 (docs/architecture.md "Upgrade
// tunnels"). Apart from downstream_session.cc so the request path stays readable; the relay
// itself is proxy/tunnel.h.
#include <string>

#include "base/log.h"
#include "proxy/downstream_session.h"
#include "proxy/exchange.h"

namespace needle::proxy {

net::Task<void> DownstreamSession::run_tunnel(Exchange& exchange, observe::RequestRecord& record) {
  TunnelStart start = exchange.take_tunnel_start();
  const Millis idle_timeout = route_config_ && route_config_->tunnel_idle_timeout
                                  ? *route_config_->tunnel_idle_timeout
                                  : server_config().tunnel_idle_timeout;
  ClientTunnel tunnel(socket_, start.lease->stream(), worker_.executor, worker_.client_buffers,
                      idle_timeout);
  tunnel_ = &tunnel;
  tunnel_opened_ = worker_.clock.now();
  tunnel_recorded_ = false;
  if (worker_.observer) worker_.observer->on_tunnel_opened();
  // Bytes the client sent behind its upgrade request are the new protocol's (RFC 6455 4.1 lets
  // no client send them before the 101, but nothing stops one); they go upstream first, as the
  // upstream's bytes behind the 101 go to the client. Usually there are none: copied out, so
  // the pooled buffers they sit in (16 and 64 KiB) go back now, not when the tunnel ends hours
  // later.
  const std::string client_pending(pending());
  const std::string upstream_pending(start.pending());
  begin_ = end_ = 0;
  buffer_.reset();
  start.buffer.reset();
  const TunnelStats stats = co_await tunnel.run(client_pending, upstream_pending);
  tunnel_ = nullptr;
  start.lease.discard();  // an upgraded connection is never pooled
  if (!tunnel_recorded_) record_tunnel(record, stats);
}

void DownstreamSession::record_tunnel(observe::RequestRecord& record, const TunnelStats& stats) {
  tunnel_recorded_ = true;
  observe::TunnelRecord& t = record.tunnel;
  t.opened = true;
  t.bytes_from_client = stats.bytes_from_client;
  t.bytes_to_client = stats.bytes_to_client;
  t.duration = worker_.clock.now() - tunnel_opened_;
  t.closed_by = tunnel_closer_name(stats.closed_by);
  if (!stats.detail.empty()) {
    record.detail = fmt::format("tunnel closed by {}: {}: {}", t.closed_by, stats.detail,
                                stats.error.message());
  }
  record.status = 101;
  record.bytes_out += stats.bytes_to_client;
  body_bytes_in_ += stats.bytes_from_client;  // finish_record() copies it into bytes_in
  finish_record(record);
}

void DownstreamSession::close_tunnel_now() {
  if (tunnel_ == nullptr || tunnel_recorded_) return;
  tunnel_->close(TunnelCloser::drain);
  TunnelStats stats = tunnel_->stats_so_far();
  stats.closed_by = TunnelCloser::drain;
  record_tunnel(record_, stats);
}

void DownstreamSession::close_tunnel_at(TimePoint deadline) {
  if (tunnel_ != nullptr) tunnel_->close_at(deadline);
}

}  // namespace needle::proxy
