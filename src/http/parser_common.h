#pragma once
// Internal to needle_http: the llhttp glue shared by RequestParser and ResponseParser, and the
// small RFC 9110/9112 grammar helpers the parsers and the serializer use. Not a public API.
#include <llhttp.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "http/message.h"
#include "http/parser.h"

namespace needle::http::detail {

inline char ascii_lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c;
}

inline bool is_ows(char c) {
  return c == ' ' || c == '\t';
}

// RFC 9110 5.6.2 tchar.
bool is_tchar(char c);

inline std::string_view trim_ows(std::string_view s) {
  while (!s.empty() && is_ows(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_ows(s.back())) s.remove_suffix(1);
  return s;
}

// Calls fn(element) for every element of a comma-separated list (RFC 9110 5.6.1), OWS-trimmed,
// empty elements included; stops early when fn returns false.
template <typename Fn>
void for_each_list_element(std::string_view value, Fn&& fn) {
  while (true) {
    size_t comma = value.find(',');
    std::string_view element = trim_ows(value.substr(0, comma));
    if (!fn(element)) return;
    if (comma == std::string_view::npos) return;
    value.remove_prefix(comma + 1);
  }
}

enum class TransferCoding {
  chunked,      // exactly one "chunked" coding: the only framing needle decodes
  unsupported,  // a registered coding needle does not implement (gzip, ...) -> 501
  invalid,      // malformed or obfuscated (empty elements, "xchunked", chunked twice) -> 400
};
// Classifies every Transfer-Encoding field of `headers` taken together (RFC 9112 6.1).
TransferCoding classify_transfer_encoding(const HeaderList& headers);

// 1*DIGIT without sign, hex or whitespace, no overflow (RFC 9112 6.2). Every Content-Length field
// must carry the same value.
enum class ContentLengthCheck { ok, invalid, conflicting };
ContentLengthCheck parse_content_length(const HeaderList& headers, uint64_t& out);

// RFC 9110 7.2 / RFC 3986 3.2.2-3.2.3: host [ ":" port ], non-empty host (IP-literal or reg-name).
bool is_valid_authority(std::string_view authority);

// Authority of an absolute-form "http://" or "https://" target (RFC 9112 3.2.2); nullopt if
// `target` is not in absolute-form. `rest` receives the path-and-query that follows.
std::optional<std::string_view> absolute_form_authority(std::string_view target,
                                                        std::string_view* rest = nullptr);

// Owns one llhttp parser and everything the two message kinds share: head-size limits, header
// accumulation across split callbacks, the raw scan for what llhttp strict lets through
// (obs-fold, bare LF, extra SP in the request line), pause at head and at message end, and body
// spans. Request/response specifics (start line, framing rules) live in the subclasses.
class ParserCore {
 public:
  enum class Kind { request, response };

  ParserCore(Kind kind, const ParserLimits& limits, HeaderList& headers);
  virtual ~ParserCore() = default;
  ParserCore(const ParserCore&) = delete;
  ParserCore& operator=(const ParserCore&) = delete;

  FeedResult feed(std::string_view data, std::vector<std::string_view>& body);
  const ParseError& error() const { return error_; }
  bool started() const { return started_; }
  void reset();

 protected:
  enum class Phase {
    head,         // reading the start line and header section
    head_paused,  // on_headers_complete paused llhttp; the next feed() resumes into the body
    body,         // reading the body (and trailers)
    complete,     // on_message_complete paused llhttp; reset() before the next message
    error,        // sticky until reset()
  };

  // Records the first error and returns -1 (an llhttp callback error). Responses always get 502.
  int fail(int status, std::string_view cause);
  FeedResult fail_now(size_t consumed, int status, std::string_view cause);

  // Called from on_headers_complete after headers are final. Returns 0 to read the body as
  // llhttp frames it, 1 to read no body (HEAD responses, 1xx, 204, 304), or fail(...).
  virtual int on_head_complete() = 0;
  // Start-line spans (method, target, version for requests; version, reason for responses).
  virtual int on_start_line_part(int part, const char* at, size_t len) = 0;
  virtual void on_reset() = 0;

  enum StartLinePart { kMethod, kTarget, kVersion, kReason };

  const Kind kind_;
  const ParserLimits limits_;
  llhttp_t parser_;
  Phase phase_ = Phase::head;
  HeaderList& headers_;

 private:
  static const llhttp_settings_t kSettings;
  static ParserCore& self(llhttp_t* p) { return *static_cast<ParserCore*>(p->data); }

  static int cb_message_begin(llhttp_t* p);
  static int cb_method(llhttp_t* p, const char* at, size_t len);
  static int cb_url(llhttp_t* p, const char* at, size_t len);
  static int cb_version(llhttp_t* p, const char* at, size_t len);
  static int cb_status(llhttp_t* p, const char* at, size_t len);
  static int cb_header_field(llhttp_t* p, const char* at, size_t len);
  static int cb_header_field_complete(llhttp_t* p);
  static int cb_header_value(llhttp_t* p, const char* at, size_t len);
  static int cb_header_value_complete(llhttp_t* p);
  static int cb_headers_complete(llhttp_t* p);
  static int cb_chunk_header(llhttp_t* p);
  static int cb_body(llhttp_t* p, const char* at, size_t len);
  static int cb_message_complete(llhttp_t* p);

  Header& begin_header();
  bool in_trailers() const { return phase_ != Phase::head; }
  // Scans head bytes llhttp consumed; returns false (and sets error_) on a violation.
  bool scan_head(const char* p, size_t n);
  void set_llhttp_error(llhttp_errno_t err);

  ParseError error_;
  bool has_error_ = false;
  bool started_ = false;
  ParseStop paused_at_ = ParseStop::need_more;  // which callback paused llhttp
  std::vector<std::string_view>* body_out_ = nullptr;
  const char* feed_begin_ = nullptr;  // the data of the feed() in progress (for callbacks)
  char prev_feed_last_ = 0;           // the last byte consumed by the previous feed()

  size_t head_bytes_ = 0;        // bytes of this message's head consumed so far
  size_t start_line_bytes_ = 0;  // the start line without CRLF (max_request_line)
  size_t trailer_bytes_ = 0;
  uint64_t body_bytes_ = 0;  // decoded body bytes so far
  bool in_field_ = false;    // a header name is being accumulated (split callbacks)

  // Raw head scan state (see scan_head).
  enum class ScanState : uint8_t { leading, start_line, line_start, field_line, done };
  ScanState scan_state_ = ScanState::leading;
  bool scan_pending_cr_ = false;
  int start_line_spaces_ = 0;


};

}  // namespace needle::http::detail
