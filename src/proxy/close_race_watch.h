#pragma once
// Closes a client connection that idled past client_idle_timeout, and watches what the client
// does next (docs/architecture.md "Downstream close races").
//
// The keep-alive race, one hop up: a client that pools its connections to needle (a gateway, a
// load balancer) may send a request on a connection at the moment needle's idle close reaches
// it. needle never reads that request; the client answers it with an error (nginx: 502), and
// neither needle nor the application sees anything. A closed socket cannot see it either: the
// kernel answers the late request with a RST and forgets it. So the close is done in two steps:
// shutdown(SHUT_WR) sends the FIN (RFC 9112 9.6: the client learns needle is closing), and the
// socket stays open, read with a 1-byte MSG_PEEK, until the first of:
//  - EOF: the client answered the FIN with its own: the normal end (outcome client_closed);
//  - bytes: a request that was on its way when the FIN left (race_request);
//  - ECONNRESET: the client reset the connection (race_reset). A RST discards what it finds
//    unread, so a request that arrived just before it is gone; a client that closes abortively
//    (SO_LINGER 0) resets without any request, so this signal is weaker than bytes;
//  - the watch time (about a second): the client keeps its half open (quiet).
// Then the socket closes (with peeked bytes unread: a RST, as the plain close would have sent).
//
// Cost: a client that watches its idle connections (every pooling gateway does) answers the FIN
// within a round trip, so an entry lives about that long; at most `watch_time`. Each entry is
// one list node (socket, peer address, times) and one queued read; one timer serves them all.
// Above `max_watches` entries a worker closes at once, unwatched (counted).
//
// Invariants: every entry has exactly one pending read handler, which runs exactly once (bytes,
// EOF, error, or aborted when the watch closes the socket), and only it frees the entry. Entries
// are in close order, so their deadlines are ascending. Single-threaded: the worker's thread.
#include <cstdint>
#include <functional>
#include <list>
#include <span>
#include <string>
#include <vector>

#include <asio/ip/tcp.hpp>

#include "base/clock.h"
#include "config/config.h"
#include "net/io_types.h"
#include "observe/idle_close_record.h"

namespace needle::proxy {

struct CloseRaceSettings {
  Millis watch_time{1000};    // longest wait for the client's answer to the FIN
  size_t max_watches = 1024;  // per worker; beyond it, idle closes are not watched
};

// One idle close, when its watch ends (for metrics and the race log line).
struct CloseRaceReport {
  std::string_view listener;     // listener_label() of the connection's local address
  asio::ip::tcp::endpoint peer;  // the client (unspecified if unknown)
  Duration idle_age{};           // idle time when needle closed it
  Duration after_close{};        // from needle's FIN to what ended the watch
  observe::IdleCloseOutcome outcome = observe::IdleCloseOutcome::client_closed;
};

class CloseRaceWatch {
 public:
  using ReportHandler = std::function<void(const CloseRaceReport&)>;
  using CloseHandler = std::function<void()>;

  // `on_report` runs once per idle close, when its outcome is known (a race is also logged as a
  // warning with the advice, at most once per second); `on_closed` once per socket
  // the watch closes (the worker's connection count).
  CloseRaceWatch(net::Executor executor, const Clock& clock, CloseRaceSettings settings,
                 ReportHandler on_report, CloseHandler on_closed);
  ~CloseRaceWatch();
  CloseRaceWatch(const CloseRaceWatch&) = delete;
  CloseRaceWatch& operator=(const CloseRaceWatch&) = delete;

  // Takes a client connection needle closes for idling since `idle_since`: sends the FIN and
  // watches (or closes at once when max_watches are watched). `listeners` name the connection's
  // listener in the report. No operation may be pending on `socket`.
  void close_and_watch(net::Socket socket, TimePoint idle_since,
                       std::span<const config::ListenerConfig> listeners);
  // Drain: closes every watched socket now, and any handed over later at once (no reports: the
  // outcome is unknown).
  size_t close_all();
  size_t size() const { return watching_; }

 private:
  struct Entry {
    net::Socket socket;
    asio::ip::tcp::endpoint peer;
    uint32_t listener = 0;  // index into labels_
    TimePoint idle_since{};
    TimePoint closed_at{};  // when the FIN was sent
    bool done = false;      // outcome reported and socket closed; its handler only frees it
    char byte = 0;          // the peek's target
  };
  using Entries = std::list<Entry>;

  void on_readable(Entries::iterator entry, std::error_code ec, size_t bytes);
  void finish(Entry& entry, observe::IdleCloseOutcome outcome);
  void report(const Entry& entry, observe::IdleCloseOutcome outcome);
  void log_race(const CloseRaceReport& report, TimePoint now);
  uint32_t intern_label(const asio::ip::tcp::endpoint& local,
                        std::span<const config::ListenerConfig> listeners);
  void arm_timer();
  void on_timer(std::error_code ec, TimePoint at);

  const Clock& clock_;
  CloseRaceSettings settings_;
  net::Timer timer_;
  TimePoint timer_at_ = TimePoint::max();  // expiry of the pending timer wait, max() if none
  ReportHandler on_report_;
  CloseHandler on_closed_;
  Entries entries_;        // in close order; done entries stay until their read handler runs
  size_t watching_ = 0;    // entries not done
  bool draining_ = false;  // close_all() ran
  std::vector<std::string> labels_;  // listener labels seen (a handful: one per listener)
  TimePoint race_logged_at_{};       // last race warning (at most one per second)
  uint64_t races_unlogged_ = 0;      // races since then
};

// The label of the listener a connection came in on: the configured address whose port is the
// connection's local port and whose host is that address, a wildcard or a name; else the local
// address itself ("ip:port").
std::string listener_label(const asio::ip::tcp::endpoint& local,
                           std::span<const config::ListenerConfig> listeners);

// The warning for a race, with the advice (raise client_idle_timeout above the client's own).
std::string close_race_message(const CloseRaceReport& report);

}  // namespace needle::proxy
