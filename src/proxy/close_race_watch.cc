#include "proxy/close_race_watch.h"

#include <sys/socket.h>

#include <cerrno>

#include <fmt/format.h>
#include <asio/post.hpp>

#include "base/log.h"

namespace needle::proxy {
namespace {

using observe::IdleCloseOutcome;

// What a 1-byte MSG_PEEK read found on a socket needle has sent its FIN on.
IdleCloseOutcome outcome_of_read(std::error_code ec, size_t bytes) {
  if (!ec) return bytes > 0 ? IdleCloseOutcome::race_request : IdleCloseOutcome::client_closed;
  if (ec == asio::error::eof) return IdleCloseOutcome::client_closed;
  if (ec == asio::error::connection_reset) return IdleCloseOutcome::race_reset;
  // Any other failure (a timeout of the kernel's, EPIPE): the connection is gone; nothing says a
  // request was lost.
  return IdleCloseOutcome::client_closed;
}

bool host_matches(const config::HostPort& listener, const asio::ip::address& local) {
  std::error_code ec;
  const auto address = asio::ip::make_address(listener.host, ec);
  if (ec) return true;  // a name ("localhost"): the port decides
  if (address.is_unspecified()) return true;
  if (address == local) return true;
  // An IPv4 client on a dual-stack listener shows as ::ffff:a.b.c.d.
  return local.is_v6() && local.to_v6().is_v4_mapped() && address.is_v4() &&
         asio::ip::make_address_v4(asio::ip::v4_mapped, local.to_v6()) == address.to_v4();
}

std::string peer_text(const asio::ip::tcp::endpoint& peer) {
  if (peer.address().is_unspecified()) return "unknown";
  if (peer.address().is_v6())
    return fmt::format("[{}]:{}", peer.address().to_string(), peer.port());
  return fmt::format("{}:{}", peer.address().to_string(), peer.port());
}

}  // namespace

std::string listener_label(const asio::ip::tcp::endpoint& local,
                           std::span<const config::ListenerConfig> listeners) {
  for (const auto& listener : listeners) {
    if (listener.address.port == local.port() && host_matches(listener.address, local.address())) {
      return listener.address.to_string();
    }
  }
  return peer_text(local);
}

std::string close_race_message(const CloseRaceReport& report) {
  const auto idle = std::chrono::duration_cast<Millis>(report.idle_age);
  const auto after = std::chrono::duration_cast<Millis>(report.after_close);
  const std::string_view what =
      report.outcome == IdleCloseOutcome::race_request
          ? "sent a request"
          : "reset the connection (a request sent just before a reset is lost unread)";
  return fmt::format(
      "client {} on listener {} {} {} ms after needle closed its connection for idling {} ms "
      "(client_idle_timeout): the client (a gateway or load balancer pooling connections to "
      "needle) answered that request with an error (e.g. 502) that needle and the application "
      "never see. Raise [server] client_idle_timeout above the client's own idle timeout for "
      "its pooled connections (AWS ALB 60 s, Google Cloud LB 600 s, nginx upstream "
      "keepalive_timeout 60 s), or make the client's shorter",
      peer_text(report.peer), report.listener, what, after.count(), idle.count());
}

CloseRaceWatch::CloseRaceWatch(net::Executor executor, const Clock& clock,
                               CloseRaceSettings settings, ReportHandler on_report,
                               CloseHandler on_closed)
    : clock_(clock),
      settings_(settings),
      timer_(std::move(executor)),
      on_report_(std::move(on_report)),
      on_closed_(std::move(on_closed)) {}

CloseRaceWatch::~CloseRaceWatch() {
  // The worker destroys the pending reads first (their handlers never run); the sockets close
  // here with the entries, without reports: the worker is going away.
  for (Entry& entry : entries_) {
    std::error_code ignored;
    entry.socket.close(ignored);
  }
}

uint32_t CloseRaceWatch::intern_label(const asio::ip::tcp::endpoint& local,
                                      std::span<const config::ListenerConfig> listeners) {
  const std::string label = listener_label(local, listeners);
  for (uint32_t i = 0; i < labels_.size(); ++i) {
    if (labels_[i] == label) return i;
  }
  labels_.push_back(label);
  return static_cast<uint32_t>(labels_.size() - 1);
}

void CloseRaceWatch::close_and_watch(net::Socket socket, TimePoint idle_since,
                                     std::span<const config::ListenerConfig> listeners) {
  std::error_code ec;
  const auto local = socket.local_endpoint(ec);
  const auto peer = socket.remote_endpoint(ec);
  const auto at = entries_.insert(entries_.end(), Entry{.socket = std::move(socket),
                                                        .peer = ec ? decltype(peer)() : peer,
                                                        .listener = intern_label(local, listeners),
                                                        .idle_since = idle_since,
                                                        .closed_at = clock_.now()});
  ++watching_;
  Entry& entry = *at;
  if (draining_) {  // the worker is leaving: no watch, no report
    entry.done = true;
    --watching_;
    std::error_code ignored;
    entry.socket.close(ignored);
    entries_.erase(at);
    on_closed_();
    return;
  }
  if (watching_ > settings_.max_watches) {
    finish(entry, IdleCloseOutcome::unwatched);
    entries_.erase(at);  // no read was queued: nothing else refers to it
    return;
  }
  entry.socket.shutdown(asio::socket_base::shutdown_send, ec);
  // A request (or FIN, or RST) that came after the session's idle read was cancelled raised its
  // edge with no read queued: a queued read would sleep through it. So look first, in this
  // turn, where no edge can be consumed between the look and the queued read.
  const ssize_t peeked =
      ::recv(entry.socket.native_handle(), &entry.byte, 1, MSG_PEEK | MSG_DONTWAIT);
  if (peeked >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
    const std::error_code read_ec = peeked > 0    ? std::error_code()
                                    : peeked == 0 ? std::error_code(asio::error::eof)
                                                  : std::error_code(errno, std::system_category());
    asio::post(timer_.get_executor(),
               [this, at, read_ec, peeked] { on_readable(at, read_ec, peeked > 0 ? 1 : 0); });
  } else {
    entry.socket.async_receive(
        asio::buffer(&entry.byte, 1), asio::socket_base::message_peek,
        [this, at](std::error_code read_ec, size_t bytes) { on_readable(at, read_ec, bytes); });
  }
  arm_timer();
}

void CloseRaceWatch::on_readable(Entries::iterator entry, std::error_code ec, size_t bytes) {
  if (entry->done) {
    entries_.erase(entry);
    return;
  }
  finish(*entry, outcome_of_read(ec, bytes));
  entries_.erase(entry);
  arm_timer();
}

void CloseRaceWatch::finish(Entry& entry, IdleCloseOutcome outcome) {
  entry.done = true;
  --watching_;
  std::error_code ignored;
  entry.socket.close(ignored);  // aborts a queued read: its handler frees the entry
  report(entry, outcome);
  on_closed_();
}

void CloseRaceWatch::report(const Entry& entry, IdleCloseOutcome outcome) {
  const TimePoint now = clock_.now();
  const CloseRaceReport report{.listener = labels_[entry.listener],
                               .peer = entry.peer,
                               .idle_age = entry.closed_at - entry.idle_since,
                               .after_close = now - entry.closed_at,
                               .outcome = outcome};
  if (observe::is_close_race(outcome)) log_race(report, now);
  if (on_report_) on_report_(report);
}

// One warning per second at most (a gateway with a longer idle timeout races steadily); the
// lines left out are counted in the next one and in the metrics.
void CloseRaceWatch::log_race(const CloseRaceReport& report, TimePoint now) {
  if (race_logged_at_ != TimePoint{} && now - race_logged_at_ < std::chrono::seconds(1)) {
    ++races_unlogged_;
    return;
  }
  log::warn("downstream", "{} ({} more race(s) since the last report)", close_race_message(report),
            races_unlogged_);
  race_logged_at_ = now;
  races_unlogged_ = 0;
}

void CloseRaceWatch::arm_timer() {
  TimePoint earliest = TimePoint::max();
  for (const Entry& entry : entries_) {
    if (entry.done) continue;
    earliest = entry.closed_at + settings_.watch_time;
    break;
  }
  if (earliest == timer_at_) return;
  timer_at_ = earliest;
  if (earliest == TimePoint::max()) {
    timer_.cancel();
    return;
  }
  timer_.expires_at(earliest);  // cancels a pending wait, whose handler then sees a stale `at`
  timer_.async_wait([this, at = earliest](std::error_code ec) { on_timer(ec, at); });
}

void CloseRaceWatch::on_timer(std::error_code ec, TimePoint at) {
  if (ec || at != timer_at_) return;  // superseded by a re-arm, or cancelled
  timer_at_ = TimePoint::max();
  const TimePoint now = clock_.now();
  for (Entry& entry : entries_) {
    if (entry.done) continue;
    if (entry.closed_at + settings_.watch_time > now) break;
    finish(entry, IdleCloseOutcome::quiet);
  }
  arm_timer();
}

size_t CloseRaceWatch::close_all() {
  draining_ = true;
  size_t closed = 0;
  for (Entry& entry : entries_) {
    if (entry.done) continue;
    entry.done = true;
    --watching_;
    std::error_code ignored;
    entry.socket.close(ignored);
    on_closed_();
    ++closed;
  }
  arm_timer();
  return closed;
}

}  // namespace needle::proxy
