#pragma once
// An in-process fake upstream with exact fault timing, for tests that need a peer to misbehave
// at a given moment: close an idle connection at idle age T, reset the Nth request, answer
// late, answer half, answer garbage, or never answer. One thread runs a PeerLoop over the
// listener (127.0.0.1, port 0) and every connection, so timers fire within the kernel's timer
// slop, not a polling interval. Accessors are thread-safe; scripts are read at accept.
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "support/http_client.h"  // Headers
#include "support/peer_loop.h"

namespace needle::test {

using namespace std::chrono_literals;

// FIN: shutdown(SHUT_WR) then close(). RST: SO_LINGER {1, 0} then close().
enum class CloseHow { fin, rst };

// What the upstream does with one request, once it has read all of it.
struct ScriptedStep {
  enum class Action {
    respond,             // send the response below (after delay)
    reset,               // RST before any response byte
    close,               // close (close_how) before any response byte
    never_answer,        // keep reading, never answer; the connection stays open
    partial_then_close,  // send the first partial_bytes of the response, then close (close_how)
    garbage,             // send `garbage` instead of a status line, then close (close_how)
  };
  Action action = Action::respond;
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;  // sent as given, in order
  std::string body = "ok\n";
  bool echo_request_body = false;      // the body is the request's body
  bool chunked = false;                // Transfer-Encoding: chunked instead of Content-Length
  size_t chunk_size = 0;               // 0: the whole body in one chunk
  std::optional<int> keep_alive_hint;  // adds "Keep-Alive: timeout=N"
  bool connection_close = false;       // adds "Connection: close"; closes after the response
  // Closes (close_how) right behind the response without saying so in a header, as a server
  // that aborts once it has answered: the proxy finds out from the socket, not the message.
  bool close_after_response = false;
  CloseHow close_how = CloseHow::fin;  // for close, partial_then_close, garbage, connection_close
  std::chrono::milliseconds delay{0};  // before the first response byte (respond/partial/garbage)
  size_t partial_bytes = 0;
  std::string garbage = "SSH-2.0-OpenSSH_9.2\r\n\r\n";

  static ScriptedStep respond(int status, std::string body);
  static ScriptedStep reset_before_response();
  static ScriptedStep close_before_response();
  static ScriptedStep never_answer();
  static ScriptedStep partial_then_close(size_t bytes, std::string body);
  static ScriptedStep send_garbage(std::string bytes);
};

// How the upstream treats one connection.
struct ConnectionScript {
  std::vector<ScriptedStep> requests;  // the step for request i (0-based) on the connection
  ScriptedStep otherwise;              // for requests past that list
  // Close the connection once it has been idle this long: since its last response was
  // written (or since accept, before any request), with no byte of a new request received.
  std::optional<std::chrono::milliseconds> idle_close_after;
  CloseHow idle_close_how = CloseHow::fin;

  // The nth request (1-based) on the connection is reset before any response byte.
  ConnectionScript& reset_request(size_t nth);
  ConnectionScript& close_when_idle(std::chrono::milliseconds after, CloseHow how = CloseHow::fin);
};

struct ReceivedRequest {
  size_t connection = 0;  // 0-based, in accept order
  size_t index = 0;       // 0-based, on its connection
  std::string method;
  std::string target;
  Headers headers;
  std::string body;      // up to 1 MiB kept
  size_t body_size = 0;  // all of it
  std::string head;      // the raw bytes through the blank line that ends the header section
  std::chrono::steady_clock::time_point received_at;  // when the request was complete
};

class ScriptedUpstream {
 public:
  // Throws std::runtime_error if the listener cannot be set up.
  explicit ScriptedUpstream(ConnectionScript script = {});
  ~ScriptedUpstream();
  ScriptedUpstream(const ScriptedUpstream&) = delete;
  ScriptedUpstream& operator=(const ScriptedUpstream&) = delete;

  int port() const { return loop_.port(); }

  // For connections accepted from now on.
  void set_script(ConnectionScript script);
  // For the connection accepted in this position (0-based), if not yet accepted.
  void set_connection_script(size_t connection, ConnectionScript script);

  size_t connections_accepted() const;
  size_t open_connections() const;
  size_t idle_closes() const;  // connections closed by the idle rule
  size_t requests_received() const;
  size_t requests_on_connection(size_t connection) const;
  std::vector<ReceivedRequest> requests() const;
  std::vector<std::string> request_heads() const;

  // Block until the count is reached or timeout passes; true if reached.
  bool wait_for_requests(size_t n, std::chrono::milliseconds timeout) const;
  bool wait_for_connections(size_t n, std::chrono::milliseconds timeout) const;
  bool wait_for_idle_closes(size_t n, std::chrono::milliseconds timeout) const;

 private:
  struct Connection;
  void run();
  void on_readable(Connection& c);
  void on_writable(Connection& c);
  void process_input(Connection& c);
  void act(Connection& c, const ScriptedStep& step);
  void start_writing(Connection& c, std::string bytes, bool close_after, CloseHow how);
  void close_connection(Connection& c, CloseHow how);
  void notify();

  PeerLoop loop_;
  std::thread thread_;

  mutable std::mutex mutex_;  // guards everything below
  mutable std::condition_variable changed_;
  bool stopping_ = false;
  ConnectionScript script_;
  std::map<size_t, ConnectionScript> connection_scripts_;
  size_t accepted_ = 0;
  size_t open_ = 0;
  size_t idle_closes_ = 0;
  std::vector<size_t> requests_per_connection_;
  std::vector<ReceivedRequest> requests_;
};

}  // namespace needle::test
