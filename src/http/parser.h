#pragma once
// Incremental HTTP/1.1 parsers over llhttp (strict mode, no lenient flags). No I/O here:
// callers feed bytes and get the head, decoded body spans and completion back.
// Rules llhttp does not enforce itself are enforced here (obs-fold, Host rules, Transfer-Encoding
// other than exactly "chunked", conflicting Content-Length, limits); every rejection carries the
// HTTP status to answer with and a stable snake_case cause for the log.
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "http/message.h"

namespace needle::http {

struct ParserLimits {
  size_t max_request_line = 8 * 1024;   // start line without CRLF -> 414 (502 for responses)
  size_t max_header_bytes = 32 * 1024;  // whole head incl. start line and final CRLF -> 431
  size_t max_header_count = 100;        // -> 431
  uint64_t max_body_bytes = 1ull << 30; // declared or decoded body -> 413
};

struct ParseError {
  int status = 400;   // requests: 400, 413, 414, 431, 501, 505 (HTTP/2.0); responses: always 502
  std::string cause;  // stable snake_case: "obs_fold", "content_length_with_transfer_encoding"...
};

// Driving a parser from a read loop (the same for both parsers):
//   feed(buffered bytes) ->
//     need_more:        everything was consumed (consumed == input size); the parser keeps its
//                       own state, so the caller's buffer can be reused. Read more and feed it.
//     head_complete:    consumed is exactly the rest of the head; head() is final. Call feed()
//                       again with the bytes after it, *even if there are none*: a bodiless
//                       message (GET, 204, HEAD response, 1xx, Content-Length: 0) reports
//                       message_complete from that call with consumed == 0.
//     message_complete: consumed ends exactly at the message's last byte; what follows is the
//                       next pipelined message. Call reset() and feed it. Until reset(), feed()
//                       returns message_complete again with consumed == 0.
//     error:            sticky until reset(); answer error().status and close the connection.
// Body spans appended to `body` point into the data passed to that feed() call: use them before
// the buffer is changed. The parser objects are meant to live as long as the connection.
enum class ParseStop {
  need_more,          // all input consumed, message not complete
  head_complete,      // head() is ready; call feed() again with the rest for the body
  message_complete,   // whole message done; call reset() before the next one
  error,              // error() says why; the connection must be closed
};

struct FeedResult {
  size_t consumed = 0;  // bytes of the input used; the rest belongs to the next call/message
  ParseStop stop = ParseStop::need_more;
};

class RequestParser {
 public:
  explicit RequestParser(const ParserLimits& limits);
  ~RequestParser();
  RequestParser(const RequestParser&) = delete;
  RequestParser& operator=(const RequestParser&) = delete;

  // Decoded body bytes (chunk framing removed) are appended to `body` as views into `data`.
  FeedResult feed(std::string_view data, std::vector<std::string_view>& body);
  const RequestHead& head() const;
  const ParseError& error() const;
  bool started() const;  // some bytes of a message were consumed (for 408 vs silent close)
  void reset();          // ready for the next message on the same connection

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

class ResponseParser {
 public:
  explicit ResponseParser(const ParserLimits& limits);
  ~ResponseParser();
  ResponseParser(const ResponseParser&) = delete;
  ResponseParser& operator=(const ResponseParser&) = delete;

  // Set before the first feed() of a message: the response answers a HEAD request (no body).
  // reset() clears it, except after a 1xx: the final response answers the same request.
  void set_request_is_head(bool is_head);
  // Set before the first feed() too: the request was forwarded with Upgrade (http/upgrade.h), so
  // a 101 may answer it; reset() clears it. A 101 then comes out as head_complete: the bytes
  // after its head belong to the new protocol, and the caller stops feeding. Without it, a 101
  // is refused ("unexpected_switching_protocols").
  void set_upgrade_requested(bool requested);
  // Interim 1xx responses come out as head_complete then message_complete with status < 200.
  // 1xx/204/304 and HEAD responses have no body whatever their Content-Length says;
  // head().content_length still carries its value.
  FeedResult feed(std::string_view data, std::vector<std::string_view>& body);
  // The upstream closed: completes an until_close body (message_complete) or fails (error:
  // "closed_before_response" if no byte arrived, "truncated_head", "truncated_body").
  FeedResult finish();
  const ResponseHead& head() const;
  const ParseError& error() const;
  bool started() const;
  void reset();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace needle::http
