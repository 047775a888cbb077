#include "support/delay_line.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace needle::test {
namespace {

using Clock = std::chrono::steady_clock;

struct Item {
  enum class Kind { data, fin, rst };
  Kind kind;
  Clock::time_point due;
  std::string bytes;
  size_t at = 0;  // bytes already written
};

void reset_and_close(int fd) {
  linger lg{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  ::close(fd);
}

}  // namespace

// Side 0 is the accepted (client) socket, side 1 the one connected to the target.
// queue[i] holds what was read from side i, to be delivered to side 1 - i.
struct DelayLine::Pair {
  struct Side {
    int fd = -1;
    bool connecting = false;  // side 1 only: connect in progress
    bool read_done = false;   // EOF or error read from this side: read no more
    bool fin_sent = false;    // shutdown(SHUT_WR) delivered to this side
    bool blocked = false;     // the last write to this side got EAGAIN
    std::deque<Item> queue;   // read from this side, for the other one
    size_t queued = 0;
  };
  Side side[2];

  bool done() const { return side[0].fd < 0 && side[1].fd < 0; }
};

DelayLine::DelayLine(int target_port, Options options)
    : target_port_(target_port), options_(options), loop_("delay line") {
  thread_ = std::thread([this] { run(); });
}

DelayLine::~DelayLine() {
  stopping_ = true;
  loop_.wake();
  if (thread_.joinable()) thread_.join();
}

void DelayLine::run() {
  const auto delay = options_.delay;
  std::vector<std::unique_ptr<Pair>> pairs;
  std::vector<pollfd> fds;
  std::vector<std::pair<Pair*, int>> owners;  // fds[k + 2] belongs to (pair, side)

  // A side whose peer reset (or that could not connect): drop it, and queue an RST for the
  // other side, delivered after the delay behind what was already queued for it.
  auto side_reset = [&](Pair& p, int i) {
    Pair::Side& s = p.side[i];
    if (s.fd >= 0) ::close(s.fd);
    s.fd = -1;
    s.read_done = true;
    p.side[1 - i].queue.clear();  // nothing more can reach side i
    p.side[1 - i].queued = 0;
    s.queue.push_back({Item::Kind::rst, Clock::now() + delay, {}});
  };
  auto close_if_finished = [&](Pair& p, int i) {
    Pair::Side& s = p.side[i];
    // Closed once it sent its FIN and has been given the other side's FIN.
    if (s.fd >= 0 && s.read_done && s.fin_sent && s.queue.empty()) {
      ::close(s.fd);
      s.fd = -1;
    }
  };
  // Delivers due items from queue[i] to side 1 - i.
  auto deliver = [&](Pair& p, int i, Clock::time_point now) {
    Pair::Side& from = p.side[i];
    Pair::Side& to = p.side[1 - i];
    while (!from.queue.empty() && from.queue.front().due <= now) {
      Item& item = from.queue.front();
      if (to.fd < 0) {  // the destination is gone: drop what was meant for it
        from.queue.clear();
        from.queued = 0;
        return;
      }
      if (to.connecting) return;
      if (item.kind == Item::Kind::rst) {
        ++resets_;  // before the RST, so a test that saw it also sees the count
        reset_and_close(to.fd);
        to.fd = -1;
        to.read_done = true;
        from.queue.clear();
        from.queued = 0;
        to.queue.clear();
        to.queued = 0;
        return;
      }
      if (item.kind == Item::Kind::fin) {
        ::shutdown(to.fd, SHUT_WR);
        to.fin_sent = true;
        from.queue.pop_front();
        continue;
      }
      ssize_t n =
          ::send(to.fd, item.bytes.data() + item.at, item.bytes.size() - item.at, MSG_NOSIGNAL);
      if (n > 0) {
        item.at += static_cast<size_t>(n);
        from.queued -= static_cast<size_t>(n);
        to.blocked = false;
        if (item.at == item.bytes.size()) from.queue.pop_front();
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        to.blocked = true;
        return;
      }
      side_reset(p, 1 - i);  // EPIPE / ECONNRESET: that peer reset
      return;
    }
  };

  while (!stopping_) {
    std::optional<Clock::time_point> deadline;
    fds.assign(PeerLoop::kFirstPeerFd, pollfd{});
    owners.clear();
    for (auto& pp : pairs) {
      Pair& p = *pp;
      for (int i = 0; i < 2; ++i) {
        Pair::Side& s = p.side[i];
        Pair::Side& other = p.side[1 - i];
        if (s.fd < 0) continue;
        short events = 0;
        if (!s.read_done && !s.connecting && s.queued < options_.max_buffered) events |= POLLIN;
        if (s.connecting || s.blocked) events |= POLLOUT;
        // Nothing to wait for on this side: leave it out (a negative fd is ignored), so a
        // lingering POLLHUP cannot spin the loop.
        fds.push_back({events ? s.fd : -1, events, 0});
        owners.emplace_back(&p, i);
        if (!other.queue.empty() && !s.blocked && !s.connecting) {
          auto due = other.queue.front().due;
          if (!deadline || due < *deadline) deadline = due;
        }
      }
    }
    if (!loop_.wait(fds, deadline)) break;

    for (size_t k = 0; k < owners.size(); ++k) {
      auto [p, i] = owners[k];
      Pair::Side& s = p->side[i];
      short re = fds[k + PeerLoop::kFirstPeerFd].revents;
      if (s.fd < 0 || re == 0) continue;
      if (s.connecting && (re & (POLLOUT | POLLERR | POLLHUP))) {
        int err = 0;
        socklen_t len = sizeof err;
        ::getsockopt(s.fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err != 0) {
          side_reset(*p, i);
          continue;
        }
        s.connecting = false;
      }
      if (re & POLLOUT) s.blocked = false;
      if ((re & (POLLIN | POLLHUP | POLLERR)) && !s.read_done && !s.connecting) {
        char buf[64 * 1024];
        while (s.queued < options_.max_buffered) {
          ssize_t r = ::recv(s.fd, buf, sizeof buf, 0);
          if (r > 0) {
            s.queue.push_back(
                {Item::Kind::data, Clock::now() + delay, std::string(buf, static_cast<size_t>(r))});
            s.queued += static_cast<size_t>(r);
            continue;
          }
          if (r == 0) {
            s.read_done = true;
            s.queue.push_back({Item::Kind::fin, Clock::now() + delay, {}});
            break;
          }
          if (errno == EINTR) continue;
          if (errno != EAGAIN && errno != EWOULDBLOCK) side_reset(*p, i);
          break;
        }
      }
    }

    if (PeerLoop::listener_ready(fds)) {
      for (int cfd; (cfd = loop_.accept()) >= 0;) {
        ++accepted_;
        auto p = std::make_unique<Pair>();
        p->side[0].fd = cfd;
        int tfd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        int one = 1;
        p->side[1].fd = tfd;
        if (tfd >= 0) {
          ::setsockopt(tfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          sockaddr_in addr{};
          addr.sin_family = AF_INET;
          addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
          addr.sin_port = htons(static_cast<uint16_t>(target_port_));
          int r = ::connect(tfd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
          if (r != 0 && errno == EINPROGRESS) {
            p->side[1].connecting = true;
          } else if (r != 0) {
            side_reset(*p, 1);
          }
        } else {
          side_reset(*p, 1);
        }
        pairs.push_back(std::move(p));
      }
    }

    const auto now = Clock::now();
    for (auto& pp : pairs) {
      for (int i = 0; i < 2; ++i) deliver(*pp, i, now);
      for (int i = 0; i < 2; ++i) close_if_finished(*pp, i);
      // A side whose counterpart is gone and has nothing left to deliver is closed too.
      for (int i = 0; i < 2; ++i) {
        Pair::Side& s = pp->side[i];
        if (s.fd >= 0 && pp->side[1 - i].fd < 0 && pp->side[1 - i].queue.empty() && s.read_done) {
          ::close(s.fd);
          s.fd = -1;
        }
      }
    }
    pairs.erase(std::remove_if(pairs.begin(), pairs.end(), [](auto& p) { return p->done(); }),
                pairs.end());
  }
  for (auto& p : pairs) {
    for (auto& s : p->side) {
      if (s.fd >= 0) ::close(s.fd);
    }
  }
}

}  // namespace needle::test
