#include "support/scripted_upstream.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <llhttp.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string_view>

namespace needle::test {
namespace {

using Clock = std::chrono::steady_clock;
constexpr size_t kMaxKeptBody = 1 << 20;
constexpr size_t kMaxBufferedInput = 4 << 20;  // stop reading a connection past this

const char* reason_phrase(int status) {
  switch (status) {
    case 100:
      return "Continue";
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 204:
      return "No Content";
    case 301:
      return "Moved Permanently";
    case 304:
      return "Not Modified";
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 408:
      return "Request Timeout";
    case 429:
      return "Too Many Requests";
    case 500:
      return "Internal Server Error";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    default:
      return "Status";
  }
}

bool has_header(const std::vector<std::pair<std::string, std::string>>& headers,
                std::string_view name) {
  Headers h{headers};
  return h.has(name);
}

// RFC 9112 6.3 rule 1: no body for HEAD, 1xx, 204, 304.
bool response_has_body(std::string_view method, int status) {
  return method != "HEAD" && !(status >= 100 && status < 200) && status != 204 && status != 304;
}

std::string serialize(const ScriptedStep& step, const ReceivedRequest& req, bool request_close) {
  const std::string& body = step.echo_request_body ? req.body : step.body;
  std::string out =
      "HTTP/1.1 " + std::to_string(step.status) + " " + reason_phrase(step.status) + "\r\n";
  for (const auto& [k, v] : step.headers) out += k + ": " + v + "\r\n";
  if (step.keep_alive_hint)
    out += "Keep-Alive: timeout=" + std::to_string(*step.keep_alive_hint) + "\r\n";
  if (step.connection_close || request_close) out += "Connection: close\r\n";
  bool framed =
      has_header(step.headers, "content-length") || has_header(step.headers, "transfer-encoding");
  bool with_body = response_has_body(req.method, step.status);
  if (step.chunked) {
    if (!framed) out += "Transfer-Encoding: chunked\r\n";
    out += "\r\n";
    if (!with_body) return out;
    size_t size = step.chunk_size ? step.chunk_size : std::max<size_t>(body.size(), 1);
    for (size_t at = 0; at < body.size(); at += size) {
      size_t n = std::min(size, body.size() - at);
      char len[32];
      std::snprintf(len, sizeof len, "%zx\r\n", n);
      out += len;
      out.append(body, at, n);
      out += "\r\n";
    }
    out += "0\r\n\r\n";
    return out;
  }
  if (!framed && !(step.status >= 100 && step.status < 200) && step.status != 204) {
    out += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  }
  out += "\r\n";
  if (with_body) out += body;
  return out;
}

// Request parser state for one connection; lives in llhttp_t::data.
struct RequestParse {
  ReceivedRequest request;
  std::string field;
  std::string value;
  bool complete = false;
  bool keep_alive = true;
};

RequestParse& parse_state(llhttp_t* p) {
  return *static_cast<RequestParse*>(p->data);
}

const llhttp_settings_t& request_settings() {
  static const llhttp_settings_t s = [] {
    llhttp_settings_t st;
    llhttp_settings_init(&st);
    st.on_url = [](llhttp_t* p, const char* at, size_t n) {
      parse_state(p).request.target.append(at, n);
      return 0;
    };
    st.on_method = [](llhttp_t* p, const char* at, size_t n) {
      parse_state(p).request.method.append(at, n);
      return 0;
    };
    st.on_header_field = [](llhttp_t* p, const char* at, size_t n) {
      parse_state(p).field.append(at, n);
      return 0;
    };
    st.on_header_value = [](llhttp_t* p, const char* at, size_t n) {
      parse_state(p).value.append(at, n);
      return 0;
    };
    st.on_header_value_complete = [](llhttp_t* p) {
      RequestParse& r = parse_state(p);
      r.request.headers.fields.emplace_back(std::move(r.field), std::move(r.value));
      r.field.clear();
      r.value.clear();
      return 0;
    };
    st.on_body = [](llhttp_t* p, const char* at, size_t n) {
      RequestParse& r = parse_state(p);
      r.request.body_size += n;
      size_t keep = std::min(n, kMaxKeptBody - std::min(kMaxKeptBody, r.request.body.size()));
      r.request.body.append(at, keep);
      return 0;
    };
    st.on_message_complete = [](llhttp_t* p) {
      RequestParse& r = parse_state(p);
      r.complete = true;
      r.keep_alive = llhttp_should_keep_alive(p) != 0;
      return static_cast<int>(HPE_PAUSED);  // the bytes after it are the next request
    };
    return st;
  }();
  return s;
}

}  // namespace

ScriptedStep ScriptedStep::respond(int status, std::string body) {
  ScriptedStep s;
  s.status = status;
  s.body = std::move(body);
  return s;
}
ScriptedStep ScriptedStep::reset_before_response() {
  ScriptedStep s;
  s.action = Action::reset;
  return s;
}
ScriptedStep ScriptedStep::close_before_response() {
  ScriptedStep s;
  s.action = Action::close;
  return s;
}
ScriptedStep ScriptedStep::never_answer() {
  ScriptedStep s;
  s.action = Action::never_answer;
  return s;
}
ScriptedStep ScriptedStep::partial_then_close(size_t bytes, std::string body) {
  ScriptedStep s;
  s.action = Action::partial_then_close;
  s.partial_bytes = bytes;
  s.body = std::move(body);
  return s;
}
ScriptedStep ScriptedStep::send_garbage(std::string bytes) {
  ScriptedStep s;
  s.action = Action::garbage;
  s.garbage = std::move(bytes);
  return s;
}

ConnectionScript& ConnectionScript::reset_request(size_t nth) {
  if (nth == 0) throw std::invalid_argument("reset_request: nth is 1-based");
  while (requests.size() < nth) requests.push_back(otherwise);
  requests[nth - 1] = ScriptedStep::reset_before_response();
  return *this;
}

ConnectionScript& ConnectionScript::close_when_idle(std::chrono::milliseconds after, CloseHow how) {
  idle_close_after = after;
  idle_close_how = how;
  return *this;
}

// One accepted connection; touched only by the upstream's thread.
struct ScriptedUpstream::Connection {
  enum class State { reading, delaying, writing, holding, closed };

  int fd = -1;
  size_t id = 0;
  ConnectionScript script;
  State state = State::reading;
  std::string in;     // received bytes not yet part of a completed request
  size_t parsed = 0;  // bytes of `in` already given to the parser
  llhttp_t parser{};
  RequestParse parse;
  size_t requests = 0;
  bool peer_eof = false;
  Clock::time_point idle_since;  // end of the last response write, or accept
  Clock::time_point delay_until;
  ScriptedStep pending;  // the step waiting for delay_until
  ReceivedRequest pending_request;
  bool pending_request_close = false;
  std::string out;
  size_t out_at = 0;
  bool close_after_write = false;
  CloseHow close_how = CloseHow::fin;

  bool idle() const { return state == State::reading && in.empty(); }
};

ScriptedUpstream::ScriptedUpstream(ConnectionScript script)
    : loop_("upstream"), script_(std::move(script)) {
  thread_ = std::thread([this] { run(); });
}

ScriptedUpstream::~ScriptedUpstream() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  loop_.wake();
  if (thread_.joinable()) thread_.join();
}

void ScriptedUpstream::set_script(ConnectionScript script) {
  std::lock_guard lock(mutex_);
  script_ = std::move(script);
}

void ScriptedUpstream::set_connection_script(size_t connection, ConnectionScript script) {
  std::lock_guard lock(mutex_);
  connection_scripts_[connection] = std::move(script);
}

size_t ScriptedUpstream::connections_accepted() const {
  std::lock_guard lock(mutex_);
  return accepted_;
}
size_t ScriptedUpstream::open_connections() const {
  std::lock_guard lock(mutex_);
  return open_;
}
size_t ScriptedUpstream::idle_closes() const {
  std::lock_guard lock(mutex_);
  return idle_closes_;
}
size_t ScriptedUpstream::requests_received() const {
  std::lock_guard lock(mutex_);
  return requests_.size();
}
size_t ScriptedUpstream::requests_on_connection(size_t connection) const {
  std::lock_guard lock(mutex_);
  return connection < requests_per_connection_.size() ? requests_per_connection_[connection] : 0;
}
std::vector<ReceivedRequest> ScriptedUpstream::requests() const {
  std::lock_guard lock(mutex_);
  return requests_;
}
std::vector<std::string> ScriptedUpstream::request_heads() const {
  std::lock_guard lock(mutex_);
  std::vector<std::string> heads;
  for (const auto& r : requests_) heads.push_back(r.head);
  return heads;
}

bool ScriptedUpstream::wait_for_requests(size_t n, std::chrono::milliseconds timeout) const {
  std::unique_lock lock(mutex_);
  return changed_.wait_for(lock, timeout, [&] { return requests_.size() >= n; });
}
bool ScriptedUpstream::wait_for_connections(size_t n, std::chrono::milliseconds timeout) const {
  std::unique_lock lock(mutex_);
  return changed_.wait_for(lock, timeout, [&] { return accepted_ >= n; });
}
bool ScriptedUpstream::wait_for_idle_closes(size_t n, std::chrono::milliseconds timeout) const {
  std::unique_lock lock(mutex_);
  return changed_.wait_for(lock, timeout, [&] { return idle_closes_ >= n; });
}

void ScriptedUpstream::notify() {
  changed_.notify_all();
}

void ScriptedUpstream::run() {
  std::vector<std::unique_ptr<Connection>> conns;
  std::vector<pollfd> fds;
  for (;;) {
    {
      std::lock_guard lock(mutex_);
      if (stopping_) break;
    }
    // Deadline: the nearest delay end or idle-close moment.
    std::optional<Clock::time_point> deadline;
    for (auto& c : conns) {
      std::optional<Clock::time_point> t;
      if (c->state == Connection::State::delaying) t = c->delay_until;
      if (c->idle() && c->script.idle_close_after) t = c->idle_since + *c->script.idle_close_after;
      if (t && (!deadline || *t < *deadline)) deadline = t;
    }
    fds.assign(PeerLoop::kFirstPeerFd, pollfd{});
    for (auto& c : conns) {
      short events = c->in.size() < kMaxBufferedInput ? POLLIN : 0;
      if (c->state == Connection::State::writing) events |= POLLOUT;
      if (c->peer_eof) events &= ~POLLIN;
      fds.push_back({c->fd, events, 0});
    }
    if (!loop_.wait(fds, deadline)) break;

    for (size_t i = 0; i < conns.size(); ++i) {
      Connection& c = *conns[i];
      short re = fds[i + PeerLoop::kFirstPeerFd].revents;
      if (re & POLLOUT) on_writable(c);
      if (c.state != Connection::State::closed && (re & (POLLIN | POLLHUP | POLLERR)))
        on_readable(c);
    }
    if (PeerLoop::listener_ready(fds)) {
      // accept after the connections: new ones are not in fds yet.
      size_t before = conns.size();
      for (int fd; (fd = loop_.accept()) >= 0;) {
        auto c = std::make_unique<Connection>();
        c->fd = fd;
        {
          std::lock_guard lock(mutex_);
          c->id = accepted_++;
          ++open_;
          requests_per_connection_.push_back(0);
          auto it = connection_scripts_.find(c->id);
          c->script = it != connection_scripts_.end() ? it->second : script_;
        }
        c->idle_since = Clock::now();
        llhttp_init(&c->parser, HTTP_REQUEST, &request_settings());
        conns.push_back(std::move(c));
      }
      if (conns.size() != before) notify();
    }
    // Timers.
    const auto now = Clock::now();
    for (auto& cp : conns) {
      Connection& c = *cp;
      if (c.state == Connection::State::delaying && now >= c.delay_until) {
        ScriptedStep step = c.pending;
        step.delay = 0ms;  // the delay is over: act now
        act(c, step);
      } else if (c.idle() && c.script.idle_close_after &&
                 now >= c.idle_since + *c.script.idle_close_after) {
        {
          std::lock_guard lock(mutex_);
          ++idle_closes_;  // counted before the close, so whoever saw it sees the count
        }
        close_connection(c, c.script.idle_close_how);
      }
    }
    conns.erase(std::remove_if(conns.begin(), conns.end(),
                               [](const auto& c) { return c->state == Connection::State::closed; }),
                conns.end());
  }
  for (auto& c : conns) close_connection(*c, CloseHow::fin);
}

void ScriptedUpstream::on_readable(Connection& c) {
  char buf[64 * 1024];
  for (;;) {
    if (c.in.size() >= kMaxBufferedInput) break;
    ssize_t n = ::recv(c.fd, buf, sizeof buf, 0);
    if (n > 0) {
      if (c.state == Connection::State::holding) continue;  // never answered: discard
      c.in.append(buf, static_cast<size_t>(n));
      continue;
    }
    if (n == 0) {
      c.peer_eof = true;
      break;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) break;
    close_connection(c, CloseHow::fin);  // ECONNRESET and the like: the peer is gone
    return;
  }
  if (c.state == Connection::State::reading) process_input(c);
  // A client that closed its side while we had nothing left to send: done.
  if (c.peer_eof &&
      (c.state == Connection::State::reading || c.state == Connection::State::holding)) {
    close_connection(c, CloseHow::fin);
  }
}

void ScriptedUpstream::process_input(Connection& c) {
  while (c.state == Connection::State::reading && c.parsed < c.in.size()) {
    if (c.parsed == 0) {
      c.parse = RequestParse{};
      llhttp_reset(&c.parser);
      c.parser.data = &c.parse;
    }
    const char* start = c.in.data() + c.parsed;
    llhttp_errno_t err = llhttp_execute(&c.parser, start, c.in.size() - c.parsed);
    if (err == HPE_OK) {
      c.parsed = c.in.size();
      return;
    }
    if (err != HPE_PAUSED || !c.parse.complete) {
      start_writing(c, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    true, CloseHow::fin);
      return;
    }
    size_t end = c.parsed + static_cast<size_t>(llhttp_get_error_pos(&c.parser) - start);
    ReceivedRequest req = std::move(c.parse.request);
    req.connection = c.id;
    req.index = c.requests++;
    std::string raw = c.in.substr(0, end);
    size_t blank = raw.find("\r\n\r\n");
    req.head = blank == std::string::npos ? raw : raw.substr(0, blank + 4);
    req.received_at = Clock::now();
    bool request_close = !c.parse.keep_alive;
    c.in.erase(0, end);
    c.parsed = 0;
    {
      std::lock_guard lock(mutex_);
      requests_.push_back(req);
      ++requests_per_connection_[c.id];
    }
    notify();
    const ScriptedStep& step =
        req.index < c.script.requests.size() ? c.script.requests[req.index] : c.script.otherwise;
    c.pending_request = std::move(req);
    c.pending_request_close = request_close;
    act(c, step);
  }
}

void ScriptedUpstream::act(Connection& c, const ScriptedStep& step) {
  using Action = ScriptedStep::Action;
  bool writes = step.action == Action::respond || step.action == Action::partial_then_close ||
                step.action == Action::garbage;
  if (writes && step.delay > 0ms) {
    c.state = Connection::State::delaying;
    c.pending = step;
    c.delay_until = Clock::now() + step.delay;
    return;
  }
  switch (step.action) {
    case Action::respond: {
      bool close_after =
          step.connection_close || step.close_after_response || c.pending_request_close;
      start_writing(c, serialize(step, c.pending_request, c.pending_request_close), close_after,
                    step.close_how);
      return;
    }
    case Action::reset:
      close_connection(c, CloseHow::rst);
      return;
    case Action::close:
      close_connection(c, step.close_how);
      return;
    case Action::never_answer:
      c.state = Connection::State::holding;
      c.in.clear();
      c.parsed = 0;
      if (c.peer_eof) close_connection(c, CloseHow::fin);
      return;
    case Action::partial_then_close: {
      std::string all = serialize(step, c.pending_request, c.pending_request_close);
      start_writing(c, all.substr(0, std::min(step.partial_bytes, all.size())), true,
                    step.close_how);
      return;
    }
    case Action::garbage:
      start_writing(c, step.garbage, true, step.close_how);
      return;
  }
}

void ScriptedUpstream::start_writing(Connection& c, std::string bytes, bool close_after,
                                     CloseHow how) {
  c.out = std::move(bytes);
  c.out_at = 0;
  c.close_after_write = close_after;
  c.close_how = how;
  c.state = Connection::State::writing;
  on_writable(c);
}

void ScriptedUpstream::on_writable(Connection& c) {
  while (c.out_at < c.out.size()) {
    ssize_t n = ::send(c.fd, c.out.data() + c.out_at, c.out.size() - c.out_at, MSG_NOSIGNAL);
    if (n > 0) {
      c.out_at += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    close_connection(c, CloseHow::fin);  // EPIPE / ECONNRESET
    return;
  }
  c.out.clear();
  c.out_at = 0;
  if (c.close_after_write) {
    close_connection(c, c.close_how);
    return;
  }
  c.state = Connection::State::reading;
  c.idle_since = Clock::now();  // idle age counts from the end of the response
  process_input(c);             // a pipelined request may be waiting
  if (c.peer_eof && c.state == Connection::State::reading) close_connection(c, CloseHow::fin);
}

void ScriptedUpstream::close_connection(Connection& c, CloseHow how) {
  if (c.state == Connection::State::closed) return;
  {
    std::lock_guard lock(mutex_);
    --open_;
  }
  notify();
  if (how == CloseHow::rst) {
    linger lg{1, 0};
    ::setsockopt(c.fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  } else {
    ::shutdown(c.fd, SHUT_WR);
  }
  ::close(c.fd);
  c.fd = -1;
  c.state = Connection::State::closed;
}

}  // namespace needle::test
