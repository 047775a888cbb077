#include "support/http_client.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <llhttp.h>

#include <strings.h>
#include <algorithm>
#include <cerrno>
#include <cstring>

namespace needle::test {
namespace {

using Clock = std::chrono::steady_clock;

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && ::strncasecmp(a.data(), b.data(), a.size()) == 0;
}

int remaining_ms(Clock::time_point deadline) {
  auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left <= 0 ? 0 : static_cast<int>(std::min<long long>(left, 1 << 30));
}

// Parser state for one response; lives in llhttp_t::data.
struct ParseContext {
  Response* response;
  bool head_request;
  bool complete = false;
  std::string field;
  std::string value;
};

ParseContext& context(llhttp_t* p) {
  return *static_cast<ParseContext*>(p->data);
}

int on_status(llhttp_t* p, const char* at, size_t len) {
  context(p).response->reason.append(at, len);
  return 0;
}
int on_header_field(llhttp_t* p, const char* at, size_t len) {
  context(p).field.append(at, len);
  return 0;
}
int on_header_value(llhttp_t* p, const char* at, size_t len) {
  context(p).value.append(at, len);
  return 0;
}
int on_header_value_complete(llhttp_t* p) {
  ParseContext& c = context(p);
  c.response->headers.fields.emplace_back(std::move(c.field), std::move(c.value));
  c.field.clear();
  c.value.clear();
  return 0;
}
int on_headers_complete(llhttp_t* p) {
  ParseContext& c = context(p);
  c.response->status = llhttp_get_status_code(p);
  c.response->http_major = llhttp_get_http_major(p);
  c.response->http_minor = llhttp_get_http_minor(p);
  c.response->chunked = (p->flags & F_CHUNKED) != 0;
  // 1: "no body" (RFC 9112 6.3 rule 1: a response to HEAD ends with its header section).
  return c.head_request ? 1 : 0;
}
int on_body(llhttp_t* p, const char* at, size_t len) {
  context(p).response->body.append(at, len);
  return 0;
}
int on_message_complete(llhttp_t* p) {
  ParseContext& c = context(p);
  c.complete = true;
  c.response->keep_alive = llhttp_should_keep_alive(p) != 0;
  return HPE_PAUSED;  // stop here: the bytes after this response belong to the next one
}

const llhttp_settings_t& settings() {
  static const llhttp_settings_t s = [] {
    llhttp_settings_t st;
    llhttp_settings_init(&st);
    st.on_status = on_status;
    st.on_header_field = on_header_field;
    st.on_header_value = on_header_value;
    st.on_header_value_complete = on_header_value_complete;
    st.on_headers_complete = on_headers_complete;
    st.on_body = on_body;
    st.on_message_complete = on_message_complete;
    return st;
  }();
  return s;
}

}  // namespace

const std::string* Headers::find(std::string_view name) const {
  for (const auto& [k, v] : fields) {
    if (iequals(k, name)) return &v;
  }
  return nullptr;
}

std::vector<std::string> Headers::all(std::string_view name) const {
  std::vector<std::string> out;
  for (const auto& [k, v] : fields) {
    if (iequals(k, name)) out.push_back(v);
  }
  return out;
}

const char* to_string(ClientError error) {
  switch (error) {
    case ClientError::none:
      return "none";
    case ClientError::connect_failed:
      return "connect_failed";
    case ClientError::timeout:
      return "timeout";
    case ClientError::reset:
      return "reset";
    case ClientError::eof:
      return "eof";
    case ClientError::incomplete:
      return "incomplete";
    case ClientError::parse_error:
      return "parse_error";
    case ClientError::not_connected:
      return "not_connected";
  }
  return "?";
}

const char* to_string(PeerClose state) {
  switch (state) {
    case PeerClose::still_open:
      return "still_open";
    case PeerClose::eof:
      return "eof";
    case PeerClose::reset:
      return "reset";
    case PeerClose::sent_data:
      return "sent_data";
  }
  return "?";
}

HttpClient::~HttpClient() {
  close();
}

HttpClient::HttpClient(HttpClient&& other) noexcept {
  *this = std::move(other);
}

HttpClient& HttpClient::operator=(HttpClient&& other) noexcept {
  if (this != &other) {
    close();
    fd_ = std::exchange(other.fd_, -1);
    port_ = other.port_;
    local_port_ = other.local_port_;
    peer_eof_ = other.peer_eof_;
    buffer_ = std::move(other.buffer_);
    last_error_ = other.last_error_;
    last_error_detail_ = std::move(other.last_error_detail_);
  }
  return *this;
}

bool HttpClient::fail(ClientError error, std::string detail) {
  last_error_ = error;
  last_error_detail_ = std::move(detail);
  return false;
}

bool HttpClient::connect(int port, std::chrono::milliseconds timeout) {
  close();
  last_error_ = ClientError::none;
  port_ = port;
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd_ < 0) return fail(ClientError::connect_failed, std::strerror(errno));
  int one = 1;
  ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  int r = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  if (r != 0 && errno != EINPROGRESS) {
    int err = errno;
    close();
    return fail(ClientError::connect_failed, std::strerror(err));
  }
  if (r != 0) {
    pollfd pfd{fd_, POLLOUT, 0};
    int n = ::poll(&pfd, 1, static_cast<int>(timeout.count()));
    int err = 0;
    socklen_t len = sizeof err;
    if (n == 0) {
      close();
      return fail(ClientError::timeout, "connect");
    }
    ::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len);
    if (n < 0 || err != 0) {
      close();
      return fail(ClientError::connect_failed, std::strerror(n < 0 ? errno : err));
    }
  }
  sockaddr_in local{};
  socklen_t len = sizeof local;
  ::getsockname(fd_, reinterpret_cast<sockaddr*>(&local), &len);
  local_port_ = ntohs(local.sin_port);
  return true;
}

void HttpClient::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  peer_eof_ = false;
  buffer_.clear();
}

void HttpClient::reset() {
  if (fd_ < 0) return;
  linger lg{1, 0};
  ::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  close();
}

void HttpClient::shutdown_write() {
  if (fd_ >= 0) ::shutdown(fd_, SHUT_WR);
}

bool HttpClient::send_raw(std::string_view bytes, std::chrono::milliseconds timeout) {
  if (fd_ < 0) return fail(ClientError::not_connected);
  auto deadline = Clock::now() + timeout;
  while (!bytes.empty()) {
    ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n > 0) {
      bytes.remove_prefix(static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      pollfd pfd{fd_, POLLOUT, 0};
      if (::poll(&pfd, 1, remaining_ms(deadline)) == 0) return fail(ClientError::timeout, "send");
      continue;
    }
    int err = errno;
    if (err == ECONNRESET || err == EPIPE) return fail(ClientError::reset, std::strerror(err));
    return fail(ClientError::connect_failed, std::strerror(err));
  }
  return true;
}

long HttpClient::fill(Clock::time_point deadline) {
  char chunk[64 * 1024];
  for (;;) {
    ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
    if (n > 0) {
      buffer_.append(chunk, static_cast<size_t>(n));
      return n;
    }
    if (n == 0) {
      peer_eof_ = true;
      return 0;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      int ms = remaining_ms(deadline);
      if (ms == 0) {
        fail(ClientError::timeout, "recv");
        return -1;
      }
      pollfd pfd{fd_, POLLIN, 0};
      ::poll(&pfd, 1, ms);
      continue;
    }
    int err = errno;
    fail(err == ECONNRESET || err == EPIPE ? ClientError::reset : ClientError::connect_failed,
         std::strerror(err));
    return -1;
  }
}

std::optional<Response> HttpClient::read_response(std::chrono::milliseconds timeout,
                                                  bool head_request) {
  last_error_ = ClientError::none;
  if (fd_ < 0) {
    fail(ClientError::not_connected);
    return std::nullopt;
  }
  auto deadline = Clock::now() + timeout;
  Response response;
  ParseContext ctx{&response, head_request, false, {}, {}};
  llhttp_t parser;
  llhttp_init(&parser, HTTP_RESPONSE, &settings());
  parser.data = &ctx;

  size_t parsed = 0;  // bytes of buffer_ that belong to this response
  auto finish = [&](size_t used) {
    response.raw = buffer_.substr(0, used);
    buffer_.erase(0, used);
    return std::optional<Response>(std::move(response));
  };
  for (;;) {
    if (parsed < buffer_.size()) {
      const char* start = buffer_.data() + parsed;
      llhttp_errno_t err = llhttp_execute(&parser, start, buffer_.size() - parsed);
      if (err == HPE_PAUSED && ctx.complete) {
        return finish(parsed + static_cast<size_t>(llhttp_get_error_pos(&parser) - start));
      }
      if (err != HPE_OK) {
        fail(ClientError::parse_error,
             std::string(llhttp_errno_name(err)) + ": " + llhttp_get_error_reason(&parser));
        return std::nullopt;
      }
      parsed = buffer_.size();
    }
    if (peer_eof_) {
      // RFC 9112 6.3 rule 8: without Content-Length or chunked framing, the body ends at EOF.
      llhttp_errno_t err = llhttp_finish(&parser);
      if (ctx.complete && (err == HPE_OK || err == HPE_PAUSED)) {
        response.close_delimited = true;
        return finish(parsed);
      }
      fail(parsed == 0 ? ClientError::eof : ClientError::incomplete,
           parsed == 0 ? "closed before a response" : "closed mid-response");
      return std::nullopt;
    }
    if (fill(deadline) < 0) return std::nullopt;
  }
}

std::vector<Response> HttpClient::read_responses(size_t n, std::chrono::milliseconds timeout) {
  std::vector<Response> out;
  auto deadline = Clock::now() + timeout;
  for (size_t i = 0; i < n; ++i) {
    auto r = read_response(std::chrono::milliseconds(remaining_ms(deadline)));
    if (!r) break;
    out.push_back(std::move(*r));
  }
  return out;
}

std::string HttpClient::format_request(
    std::string_view method, std::string_view path, std::string_view body,
    const std::vector<std::pair<std::string, std::string>>& headers, int port) {
  std::string out;
  out.append(method).append(" ").append(path).append(" HTTP/1.1\r\n");
  bool has_host = false, has_length = false;
  for (const auto& [k, v] : headers) {
    has_host |= iequals(k, "host");
    has_length |= iequals(k, "content-length") || iequals(k, "transfer-encoding");
  }
  if (!has_host) out.append("Host: 127.0.0.1:").append(std::to_string(port)).append("\r\n");
  for (const auto& [k, v] : headers) out.append(k).append(": ").append(v).append("\r\n");
  bool wants_length = !body.empty() || method == "POST" || method == "PUT" || method == "PATCH";
  if (!has_length && wants_length) {
    out.append("Content-Length: ").append(std::to_string(body.size())).append("\r\n");
  }
  out.append("\r\n").append(body);
  return out;
}

std::optional<Response> HttpClient::request(
    std::string_view method, std::string_view path, std::string_view body,
    const std::vector<std::pair<std::string, std::string>>& headers,
    std::chrono::milliseconds timeout) {
  if (!send_raw(format_request(method, path, body, headers, port_), timeout)) return std::nullopt;
  return read_response(timeout, method == "HEAD");
}

PeerClose HttpClient::closed_by_peer(std::chrono::milliseconds timeout) {
  if (!buffer_.empty()) return PeerClose::sent_data;
  if (fd_ < 0 || peer_eof_) return PeerClose::eof;
  auto deadline = Clock::now() + timeout;
  long n = fill(deadline);
  if (n > 0) return PeerClose::sent_data;
  if (n == 0) return PeerClose::eof;
  return last_error_ == ClientError::reset ? PeerClose::reset : PeerClose::still_open;
}

std::optional<Response> request(int port, std::string_view method, std::string_view path,
                                std::string_view body,
                                const std::vector<std::pair<std::string, std::string>>& headers,
                                std::chrono::milliseconds timeout) {
  HttpClient client;
  if (!client.connect(port, timeout)) return std::nullopt;
  auto all = headers;
  bool has_connection = std::any_of(all.begin(), all.end(),
                                    [](const auto& h) { return iequals(h.first, "connection"); });
  if (!has_connection) all.emplace_back("Connection", "close");
  return client.request(method, path, body, all, timeout);
}

std::optional<Response> get(int port, std::string_view path,
                            const std::vector<std::pair<std::string, std::string>>& headers,
                            std::chrono::milliseconds timeout) {
  return request(port, "GET", path, {}, headers, timeout);
}

}  // namespace needle::test
