#include "doctor/idle_probe.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <memory>
#include <thread>

#include <fmt/format.h>

#include "http/parser.h"

namespace needle::doctor {

namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

struct FdCloser {
  int fd = -1;
  ~FdCloser() {
    if (fd >= 0) ::close(fd);
  }
};

struct AddrInfoDeleter {
  void operator()(addrinfo* ai) const { ::freeaddrinfo(ai); }
};
using AddrList = std::unique_ptr<addrinfo, AddrInfoDeleter>;

// What one probe connection saw.
struct ConnectionResult {
  std::string error;  // non-empty: failed before a complete response
  int status = 0;
  std::string server;
  std::optional<Millis> hint;
  bool connection_close = false;
  ProbeSample sample;
};

std::string errno_text(int err) {
  return std::strerror(err);
}

// Milliseconds left until `deadline` for poll(), rounded up so poll never returns early.
int poll_timeout(Clock::time_point deadline) {
  const auto left = deadline - Clock::now();
  if (left <= Clock::duration::zero()) return 0;
  const auto ms = std::chrono::ceil<std::chrono::milliseconds>(left).count();
  return static_cast<int>(std::min<long long>(ms, 1 << 30));
}

// 0 when ready, else an errno (ETIMEDOUT at the deadline).
int wait_for(int fd, short events, Clock::time_point deadline) {
  for (;;) {
    pollfd p{fd, events, 0};
    const int timeout = poll_timeout(deadline);
    const int n = ::poll(&p, 1, timeout);
    if (n > 0) return 0;
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno;
    if (Clock::now() >= deadline) return ETIMEDOUT;
  }
}

std::string printable(std::string_view bytes) {
  std::string out;
  for (unsigned char c : bytes.substr(0, 60)) {
    if (c == '\r') {
      out += "\\r";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c >= 0x20 && c < 0x7f ? static_cast<char>(c) : '.';
    }
  }
  return out;
}

// Connects to the first address that accepts within the timeout. Returns the fd or -1 (error set).
int connect_any(const addrinfo* addrs, const std::string& authority, Millis timeout,
                std::string& error) {
  for (const addrinfo* ai = addrs; ai; ai = ai->ai_next) {
    const int fd =
        ::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) {
      error = fmt::format("socket: {}", errno_text(errno));
      continue;
    }
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    int err = 0;
    if (::connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
      err = errno;
      if (err == EINPROGRESS) {
        err = wait_for(fd, POLLOUT, Clock::now() + timeout);
        if (err == 0) {
          socklen_t len = sizeof err;
          ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
        }
      }
    }
    if (err == 0) return fd;
    ::close(fd);
    error = err == ETIMEDOUT
                ? fmt::format("connect to {}: no answer within {} ms", authority, timeout.count())
                : fmt::format("connect to {}: {}", authority, errno_text(err));
  }
  return -1;
}

std::string build_request(const ProbeOptions& o) {
  std::string req = fmt::format("GET {} HTTP/1.1\r\nHost: {}\r\n", o.url.path, o.url.host_header);
  bool has_user_agent = false;
  for (const auto& [name, value] : o.headers) {
    if (http::iequals(name, "User-Agent")) has_user_agent = true;
    req += fmt::format("{}: {}\r\n", name, value);
  }
  if (!has_user_agent) req += "User-Agent: needle-doctor\r\n";
  req += "Accept: */*\r\nConnection: keep-alive\r\n\r\n";
  return req;
}

// Runs one probe connection from connect to the upstream's idle close (or max-wait).
ConnectionResult probe_one(const ProbeOptions& o, const addrinfo* addrs) {
  ConnectionResult r;
  const std::string authority = o.url.authority();
  FdCloser fd{connect_any(addrs, authority, o.connect_timeout, r.error)};
  if (fd.fd < 0) return r;

  const std::string request = build_request(o);
  const auto response_deadline = Clock::now() + o.response_timeout;
  size_t written = 0;
  while (written < request.size()) {
    const ssize_t n =
        ::send(fd.fd, request.data() + written, request.size() - written, MSG_NOSIGNAL);
    if (n > 0) {
      written += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
      if (const int err = wait_for(fd.fd, POLLOUT, response_deadline)) {
        r.error = fmt::format("send to {}: {}", authority, errno_text(err));
        return r;
      }
      continue;
    }
    r.error = fmt::format("send to {}: {}", authority, errno_text(errno));
    return r;
  }

  // Read the whole response. Body bytes are discarded; only the head and the framing matter.
  http::ParserLimits limits;
  limits.max_body_bytes = ~0ull;
  http::ResponseParser parser(limits);
  std::vector<std::string_view> body;
  char buffer[16 * 1024];
  bool complete = false;
  bool closed_by_peer = false;
  std::string leftover;
  while (!complete) {
    if (const int err = wait_for(fd.fd, POLLIN, response_deadline)) {
      r.error = err == ETIMEDOUT ? fmt::format("no complete response from {} within {} ms",
                                               authority, o.response_timeout.count())
                                 : fmt::format("poll: {}", errno_text(err));
      return r;
    }
    const ssize_t n = ::recv(fd.fd, buffer, sizeof buffer, 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    if (n < 0) {
      r.error = errno == ECONNRESET
                    ? fmt::format("{} reset the connection before a complete response", authority)
                    : fmt::format("recv from {}: {}", authority, errno_text(errno));
      return r;
    }
    if (n == 0) {
      const http::FeedResult f = parser.finish();
      if (f.stop != http::ParseStop::message_complete) {
        r.error = fmt::format("{} closed the connection before a complete response ({})", authority,
                              parser.error().cause);
        return r;
      }
      complete = true;
      closed_by_peer = true;
      break;
    }
    std::string_view data(buffer, static_cast<size_t>(n));
    for (;;) {
      body.clear();
      const http::FeedResult f = parser.feed(data, body);
      data.remove_prefix(f.consumed);
      if (f.stop == http::ParseStop::error) {
        r.error = fmt::format("invalid response from {}: {}", authority, parser.error().cause);
        return r;
      }
      if (f.stop == http::ParseStop::message_complete) {
        if (parser.head().status < 200) {  // 1xx: the real answer follows
          parser.reset();
          if (data.empty()) break;
          continue;
        }
        complete = true;
        leftover.assign(data);
        break;
      }
      if (f.stop == http::ParseStop::need_more) break;
      // head_complete: feed the rest, even if empty (a body-less message completes now).
    }
  }
  const auto idle_since = Clock::now();
  const http::ResponseHead& head = parser.head();
  r.status = head.status;
  if (const std::string* server = head.headers.find("Server")) r.server = *server;
  r.hint = head.keep_alive_hint;
  r.connection_close = !head.keep_alive;

  auto idle_age = [&](Clock::time_point t) { return std::chrono::round<Millis>(t - idle_since); };
  if (closed_by_peer) {
    r.sample = ProbeSample{Millis(0), CloseKind::fin, {}};
    return r;
  }
  if (!leftover.empty()) {
    r.sample = ProbeSample{Millis(0), CloseKind::data, printable(leftover)};
    return r;
  }

  // Idle: wait for the upstream to close. A server that said Connection: close closes now;
  // do not hold its connection for the whole max-wait.
  const Millis wait = r.connection_close ? std::min(o.max_wait, Millis(5000)) : o.max_wait;
  const auto idle_deadline = idle_since + wait;
  for (;;) {
    const int err = wait_for(fd.fd, POLLIN, idle_deadline);
    const auto at = Clock::now();
    if (err == ETIMEDOUT) {
      r.sample = ProbeSample{std::nullopt, CloseKind::none, {}};
      return r;
    }
    if (err) {
      r.error = fmt::format("poll: {}", errno_text(err));
      return r;
    }
    const ssize_t n = ::recv(fd.fd, buffer, sizeof buffer, 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    if (n == 0) {
      r.sample = ProbeSample{idle_age(at), CloseKind::fin, {}};
    } else if (n < 0 && (errno == ECONNRESET || errno == EPIPE)) {
      r.sample = ProbeSample{idle_age(at), CloseKind::rst, {}};
    } else if (n < 0) {
      r.error = fmt::format("recv from {} while idle: {}", authority, errno_text(errno));
    } else {
      r.sample = ProbeSample{idle_age(at), CloseKind::data,
                             printable(std::string_view(buffer, static_cast<size_t>(n)))};
    }
    return r;
  }
}

}  // namespace

ProbeOutcome run_idle_probe(const ProbeOptions& o) {
  ProbeOutcome outcome;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* raw = nullptr;
  const std::string port = std::to_string(o.url.port);
  if (const int rc = ::getaddrinfo(o.url.host.c_str(), port.c_str(), &hints, &raw); rc != 0) {
    outcome.error = fmt::format("cannot resolve {}: {}", o.url.host, ::gai_strerror(rc));
    return outcome;
  }
  AddrList addrs(raw);

  const unsigned n = std::max(1u, o.connections);
  std::vector<ConnectionResult> results(n);
  std::vector<std::thread> threads;
  threads.reserve(n);
  for (unsigned i = 0; i < n; ++i) {
    threads.emplace_back([&, i] { results[i] = probe_one(o, addrs.get()); });
  }
  for (auto& t : threads) t.join();

  Measurement m;
  m.target = o.url.authority();
  m.path = o.url.path;
  m.max_wait = o.max_wait;
  bool have_head = false;
  for (const ConnectionResult& r : results) {
    if (!r.error.empty()) {
      ++m.probes_failed;
      if (outcome.error.empty()) outcome.error = r.error;
      continue;
    }
    if (!have_head) {
      have_head = true;
      m.status = r.status;
      m.server = r.server;
      m.keep_alive_hint = r.hint;
      m.connection_close = r.connection_close;
    }
    m.samples.push_back(r.sample);
  }
  if (!have_head) return outcome;
  outcome.measurement = std::move(m);
  return outcome;
}

}  // namespace needle::doctor
