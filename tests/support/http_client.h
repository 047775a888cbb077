#pragma once
// A blocking HTTP/1.1 client over a raw loopback socket, for asserting exactly what a server
// sends: every call has a timeout, responses are parsed with llhttp (strict), and a reset is
// reported apart from a timeout or a clean close. Not thread-safe: one owner thread.
#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace needle::test {

using namespace std::chrono_literals;

// Header fields in arrival order; names compared case-insensitively (RFC 9110 5.1).
struct Headers {
  std::vector<std::pair<std::string, std::string>> fields;

  const std::string* find(std::string_view name) const;  // the first field named so
  std::vector<std::string> all(std::string_view name) const;
  bool has(std::string_view name) const { return find(name) != nullptr; }
  std::string get(std::string_view name) const {  // "" if absent
    const std::string* v = find(name);
    return v ? *v : std::string();
  }
};

struct Response {
  int status = 0;
  std::string reason;
  int http_major = 1;
  int http_minor = 1;
  Headers headers;
  std::string body;              // decoded (chunked framing removed)
  std::string raw;               // exactly the bytes of this response as received
  bool chunked = false;          // framed with Transfer-Encoding: chunked
  bool close_delimited = false;  // the body ended at the peer's EOF
  bool keep_alive = false;       // llhttp_should_keep_alive: the connection may carry another
};

// Why a call failed. timeout and reset are the ones fault tests tell apart.
enum class ClientError {
  none,
  connect_failed,  // refused or unreachable
  timeout,         // nothing (or not enough) arrived before the deadline
  reset,           // ECONNRESET / EPIPE: the peer sent RST
  eof,             // a clean close before any byte of the response
  incomplete,      // a clean close in the middle of a response
  parse_error,     // the bytes are not a valid HTTP/1.1 response
  not_connected,
};
const char* to_string(ClientError error);

// What closed_by_peer saw.
enum class PeerClose { still_open, eof, reset, sent_data };
const char* to_string(PeerClose state);

class HttpClient {
 public:
  HttpClient() = default;
  ~HttpClient();
  HttpClient(HttpClient&& other) noexcept;
  HttpClient& operator=(HttpClient&& other) noexcept;
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Connects to 127.0.0.1:port (closing any previous connection).
  bool connect(int port, std::chrono::milliseconds timeout = 2s);
  bool connected() const { return fd_ >= 0; }
  void close();
  // Closes with SO_LINGER {1, 0}: the peer gets an RST.
  void reset();
  // shutdown(SHUT_WR): sends FIN, keeps reading.
  void shutdown_write();

  // Writes all bytes or fails (reset, timeout).
  bool send_raw(std::string_view bytes, std::chrono::milliseconds timeout = 2s);
  // Reads one response. head_request: the request was HEAD, so the response has no body
  // whatever its headers say (RFC 9112 6.3). Bytes after the response stay buffered for the
  // next call (pipelining).
  std::optional<Response> read_response(std::chrono::milliseconds timeout = 5s,
                                        bool head_request = false);
  // Reads n responses in order; stops at the first failure (fewer than n returned).
  std::vector<Response> read_responses(size_t n, std::chrono::milliseconds timeout = 5s);

  // Sends "METHOD path HTTP/1.1" with Host, Content-Length for a body, the given headers,
  // then reads the response (HEAD handled).
  std::optional<Response> request(
      std::string_view method, std::string_view path, std::string_view body = {},
      const std::vector<std::pair<std::string, std::string>>& headers = {},
      std::chrono::milliseconds timeout = 5s);
  std::optional<Response> get(std::string_view path,
                              const std::vector<std::pair<std::string, std::string>>& headers = {},
                              std::chrono::milliseconds timeout = 5s) {
    return request("GET", path, {}, headers, timeout);
  }

  // Waits up to timeout for the peer to close. Data that arrives instead stays buffered.
  PeerClose closed_by_peer(std::chrono::milliseconds timeout);

  ClientError last_error() const { return last_error_; }
  const std::string& last_error_detail() const { return last_error_detail_; }
  int local_port() const { return local_port_; }
  int fd() const { return fd_; }
  size_t buffered() const { return buffer_.size(); }

  // Serializes a request as request() sends it.
  static std::string format_request(std::string_view method, std::string_view path,
                                    std::string_view body,
                                    const std::vector<std::pair<std::string, std::string>>& headers,
                                    int port);

 private:
  bool fail(ClientError error, std::string detail = {});
  // Reads more bytes into buffer_ until deadline: >0 bytes read, 0 EOF, -1 error (set).
  long fill(std::chrono::steady_clock::time_point deadline);

  int fd_ = -1;
  int port_ = 0;
  int local_port_ = 0;
  bool peer_eof_ = false;
  std::string buffer_;
  ClientError last_error_ = ClientError::none;
  std::string last_error_detail_;
};

// One request on a fresh connection to 127.0.0.1:port (sent with Connection: close unless
// the headers say otherwise).
std::optional<Response> get(int port, std::string_view path,
                            const std::vector<std::pair<std::string, std::string>>& headers = {},
                            std::chrono::milliseconds timeout = 5s);
std::optional<Response> request(
    int port, std::string_view method, std::string_view path, std::string_view body = {},
    const std::vector<std::pair<std::string, std::string>>& headers = {},
    std::chrono::milliseconds timeout = 5s);

}  // namespace needle::test
