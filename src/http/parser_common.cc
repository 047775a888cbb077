#include "http/parser_common.h"

#include <algorithm>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace needle::http::detail {

namespace {

// llhttp needs a valid pointer even for an empty feed (resuming into a bodiless message end).
constexpr char kEmptyInput[1] = {0};

constexpr std::string_view kRegisteredCodings[] = {"gzip", "x-gzip", "deflate", "compress",
                                                   "x-compress"};

// Bytes before the first CR or LF in [p, p + n) (n if there is none). Field lines are short,
// so this looks at 16 bytes per step rather than calling memchr twice per line.
size_t line_span(const char* p, size_t n) {
  size_t i = 0;
#if defined(__SSE2__)
  const __m128i cr = _mm_set1_epi8('\r');
  const __m128i lf = _mm_set1_epi8('\n');
  for (; i + 16 <= n; i += 16) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i));
    const int hits = _mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(v, cr), _mm_cmpeq_epi8(v, lf)));
    if (hits != 0) return i + static_cast<size_t>(__builtin_ctz(static_cast<unsigned>(hits)));
  }
#endif
  for (; i < n; ++i) {
    if (p[i] == '\r' || p[i] == '\n') return i;
  }
  return n;
}

// SP bytes in [p, p + n), 16 at a time (request lines are a few dozen bytes; std::count goes
// byte by byte).
int count_spaces(const char* p, size_t n) {
  int count = 0;
  size_t i = 0;
#if defined(__SSE2__)
  const __m128i sp = _mm_set1_epi8(' ');
  for (; i + 16 <= n; i += 16) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i));
    count += __builtin_popcount(static_cast<unsigned>(_mm_movemask_epi8(_mm_cmpeq_epi8(v, sp))));
  }
#endif
  for (; i < n; ++i) count += p[i] == ' ' ? 1 : 0;
  return count;
}

}  // namespace

bool is_tchar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '.':
    case '^':
    case '_':
    case '`':
    case '|':
    case '~':
      return true;
    default:
      return false;
  }
}

TransferCoding classify_transfer_encoding(const HeaderList& headers) {
  int elements = 0;
  int chunked = 0;
  int registered = 0;
  bool invalid = false;
  for (const Header& h : headers.items()) {
    if (h.id != FieldId::transfer_encoding) continue;
    for_each_list_element(h.value, [&](std::string_view coding) {
      ++elements;
      // Empty elements (leading/trailing/double commas) and anything but a bare token (tabs,
      // parameters, quotes inside) are how smuggling payloads disguise "chunked".
      if (coding.empty() || !std::all_of(coding.begin(), coding.end(), is_tchar)) {
        invalid = true;
        return false;
      }
      if (iequals(coding, "chunked")) {
        ++chunked;
      } else if (std::any_of(std::begin(kRegisteredCodings), std::end(kRegisteredCodings),
                             [&](std::string_view known) { return iequals(coding, known); })) {
        ++registered;
      } else {
        invalid = true;  // "xchunked", "identity", "chunk": unknown look-alikes
        return false;
      }
      return true;
    });
    if (invalid) return TransferCoding::invalid;
  }
  if (chunked > 1) return TransferCoding::invalid;
  if (registered > 0) return TransferCoding::unsupported;
  if (chunked == 1 && elements == 1) return TransferCoding::chunked;
  return TransferCoding::invalid;
}

ContentLengthCheck parse_content_length(const HeaderList& headers, uint64_t& out) {
  bool seen = false;
  uint64_t first = 0;
  for (const Header& h : headers.items()) {
    if (h.id != FieldId::content_length) continue;
    std::string_view v = h.value;
    if (v.empty() || v.size() > 19) return ContentLengthCheck::invalid;  // 19 digits fit
    uint64_t n = 0;
    for (char c : v) {
      if (c < '0' || c > '9') return ContentLengthCheck::invalid;
      n = n * 10 + static_cast<uint64_t>(c - '0');
    }
    if (seen && n != first) return ContentLengthCheck::conflicting;
    seen = true;
    first = n;
  }
  out = first;
  return ContentLengthCheck::ok;
}

bool is_valid_authority(std::string_view a) {
  if (a.empty()) return false;
  std::string_view port;
  if (a.front() == '[') {  // IP-literal
    size_t close = a.find(']');
    if (close == std::string_view::npos || close == 1) return false;
    for (char c : a.substr(1, close - 1)) {
      bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') ||
                c == ':' || c == '.' || c == 'v' || c == 'V';
      if (!ok) return false;
    }
    std::string_view after = a.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return false;
      port = after.substr(1);
    }
  } else {
    size_t colon = a.find(':');
    std::string_view host = a.substr(0, colon);
    if (host.empty()) return false;
    for (char c : host) {
      bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                std::strchr("-._~%!$&'()*+,;=", c) != nullptr;
      if (!ok || c == '\0') return false;
    }
    if (colon != std::string_view::npos) port = a.substr(colon + 1);
  }
  if (port.size() > 5) return false;
  return std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; });
}

std::optional<std::string_view> absolute_form_authority(std::string_view target,
                                                        std::string_view* rest) {
  size_t scheme_len = 0;
  if (target.size() >= 7 && iequals(target.substr(0, 7), "http://")) {
    scheme_len = 7;
  } else if (target.size() >= 8 && iequals(target.substr(0, 8), "https://")) {
    scheme_len = 8;
  } else {
    return std::nullopt;
  }
  std::string_view after = target.substr(scheme_len);
  size_t end = after.find_first_of("/?#");
  if (rest != nullptr)
    *rest = end == std::string_view::npos ? std::string_view{} : after.substr(end);
  return after.substr(0, end);
}

// ---------------------------------------------------------------------------------------------

const llhttp_settings_t ParserCore::kSettings = [] {
  llhttp_settings_t s;
  llhttp_settings_init(&s);
  s.on_message_begin = &ParserCore::cb_message_begin;
  s.on_method = &ParserCore::cb_method;
  s.on_url = &ParserCore::cb_url;
  s.on_version = &ParserCore::cb_version;
  s.on_status = &ParserCore::cb_status;
  s.on_header_field = &ParserCore::cb_header_field;
  s.on_header_field_complete = &ParserCore::cb_header_field_complete;
  s.on_header_value = &ParserCore::cb_header_value;
  s.on_header_value_complete = &ParserCore::cb_header_value_complete;
  s.on_headers_complete = &ParserCore::cb_headers_complete;
  s.on_chunk_header = &ParserCore::cb_chunk_header;
  s.on_body = &ParserCore::cb_body;
  s.on_message_complete = &ParserCore::cb_message_complete;
  return s;
}();

ParserCore::ParserCore(Kind kind, const ParserLimits& limits, HeaderList& headers)
    : kind_(kind), limits_(limits), headers_(headers) {
  llhttp_init(&parser_, kind == Kind::request ? HTTP_REQUEST : HTTP_RESPONSE, &kSettings);
  parser_.data = this;  // headers_ may not be constructed yet (a subclass member): no use here
}

void ParserCore::reset() {
  llhttp_reset(&parser_);  // keeps settings and data
  phase_ = Phase::head;
  has_error_ = false;
  error_ = ParseError{};
  started_ = false;
  paused_at_ = ParseStop::need_more;
  head_bytes_ = start_line_bytes_ = trailer_bytes_ = 0;
  body_bytes_ = 0;
  in_field_ = false;
  prev_feed_last_ = 0;
  scan_state_ = ScanState::leading;
  scan_pending_cr_ = false;
  start_line_spaces_ = 0;
  headers_.clear();  // keeps the Header slots and their capacity for the next message
  on_reset();
}

int ParserCore::fail(int status, std::string_view cause) {
  if (!has_error_) {
    has_error_ = true;
    error_.status = kind_ == Kind::response ? 502 : status;
    error_.cause.assign(cause);
  }
  return -1;
}

FeedResult ParserCore::fail_now(size_t consumed, int status, std::string_view cause) {
  fail(status, cause);
  phase_ = Phase::error;
  return {consumed, ParseStop::error};
}

FeedResult ParserCore::feed(std::string_view data, std::vector<std::string_view>& body) {
  switch (phase_) {
    case Phase::error:
      return {0, ParseStop::error};
    case Phase::complete:
      return {0, ParseStop::message_complete};
    case Phase::head_paused:
      llhttp_resume(&parser_);
      phase_ = Phase::body;
      break;
    case Phase::head:
    case Phase::body:
      break;
  }
  const char* begin = data.empty() ? kEmptyInput : data.data();
  size_t len = data.size();
  const bool in_head = phase_ == Phase::head;
  // Never hand llhttp more head bytes than the limit allows: the header section cannot grow
  // past max_header_bytes in memory, and the limit is exact.
  if (in_head) len = std::min(len, limits_.max_header_bytes - head_bytes_);

  body_out_ = &body;
  feed_begin_ = begin;
  paused_at_ = ParseStop::need_more;
  const llhttp_errno_t err = llhttp_execute(&parser_, begin, len);
  body_out_ = nullptr;

  size_t consumed = len;
  if (err != HPE_OK) {
    const char* pos = llhttp_get_error_pos(&parser_);
    if (pos >= begin && pos <= begin + len) consumed = static_cast<size_t>(pos - begin);
  }
  if (consumed > 0) prev_feed_last_ = begin[consumed - 1];
  if (in_head) {
    head_bytes_ += consumed;
    // On an llhttp error include the offending byte: a bare LF is then reported as such.
    const bool llhttp_failed = err != HPE_OK && err != HPE_PAUSED;
    const size_t scanned = llhttp_failed ? std::min(consumed + 1, len) : consumed;
    if (!scan_head(begin, scanned)) {
      phase_ = Phase::error;
      return {consumed, ParseStop::error};
    }
  }
  if (err == HPE_OK) {
    if (phase_ == Phase::head && head_bytes_ >= limits_.max_header_bytes) {
      return fail_now(consumed, 431, "header_section_too_large");
    }
    return {consumed, ParseStop::need_more};
  }
  if (err == HPE_PAUSED && paused_at_ == ParseStop::head_complete) {
    phase_ = Phase::head_paused;
    return {consumed, ParseStop::head_complete};
  }
  if (err == HPE_PAUSED && paused_at_ == ParseStop::message_complete) {
    phase_ = Phase::complete;
    return {consumed, ParseStop::message_complete};
  }
  set_llhttp_error(err);
  phase_ = Phase::error;
  return {consumed, ParseStop::error};
}

// The raw view of the head, for what llhttp strict (8.1) lets through: obs-fold (RFC 9112 5.2
// says reject with 400), a bare LF ending the start line (RFC 9112 2.2), runs of SP between
// request-line elements (RFC 9112 3: single SP). It also measures the start line for
// max_request_line. llhttp rejects the rest (bare CR, bare LF after a field, NUL/CTLs, SP before
// the colon) itself. Called with head bytes only, in order, across feeds.
bool ParserCore::scan_head(const char* p, size_t n) {
  auto reject = [this](int status, std::string_view cause) {
    has_error_ = true;  // the raw view wins over whatever llhttp or a callback said later on
    error_.status = kind_ == Kind::response ? 502 : status;
    error_.cause.assign(cause);
    return false;
  };
  for (size_t i = 0; i < n && scan_state_ != ScanState::done; ++i) {
    const char c = p[i];
    if (scan_pending_cr_) {
      if (c != '\n') return reject(400, "bare_cr");
      scan_pending_cr_ = false;
      switch (scan_state_) {
        case ScanState::leading:
          break;  // RFC 9112 2.2: empty lines before the start line are ignored
        case ScanState::start_line:
          if (kind_ == Kind::request && start_line_spaces_ != 2) {
            return reject(400, "invalid_request_line");
          }
          scan_state_ = ScanState::line_start;
          break;
        case ScanState::line_start:
          scan_state_ = ScanState::done;
          break;
        case ScanState::field_line:
          scan_state_ = ScanState::line_start;
          break;
        case ScanState::done:
          break;
      }
      continue;
    }
    if (c == '\r') {
      scan_pending_cr_ = true;
      continue;
    }
    if (c == '\n') {
      if (scan_state_ == ScanState::leading) continue;
      return reject(400, "bare_lf");
    }
    switch (scan_state_) {
      case ScanState::line_start:
        if (c == ' ' || c == '\t') return reject(400, "obs_fold");
        scan_state_ = ScanState::field_line;
        break;
      case ScanState::leading:
        scan_state_ = ScanState::start_line;
        [[fallthrough]];
      case ScanState::start_line: {
        // The rest of the line (or of this feed) at once: its length and its spaces.
        const char* from = p + i;
        const size_t span = line_span(from, n - i);
        if (kind_ == Kind::request) start_line_spaces_ += count_spaces(from, span);
        start_line_bytes_ += span;
        if (start_line_bytes_ > limits_.max_request_line) {
          return reject(414,
                        kind_ == Kind::request ? "request_line_too_long" : "status_line_too_long");
        }
        i += span - 1;  // span >= 1 (c is neither CR nor LF): the loop lands on the line end
        break;
      }
      case ScanState::field_line: {
        // Only the line's end matters here (NUL and other CTLs: llhttp rejects them with a
        // precise error): jump to the next CR or LF, so the loop lands on it. Lines that end in
        // CRLF followed by an ordinary byte (the next field line) are crossed in the same step;
        // anything else after the CRLF (SP/HTAB, CR, LF) or a line cut by the feed's end is
        // left to the byte-wise states above.
        size_t end = i + 1 + line_span(p + i + 1, n - i - 1);
        while (end + 2 < n && p[end] == '\r' && p[end + 1] == '\n') {
          const char next = p[end + 2];
          if (next == ' ' || next == '\t' || next == '\r' || next == '\n') break;
          end += 3 + line_span(p + end + 3, n - end - 3);
        }
        i = end - 1;
        break;
      }
      case ScanState::done:
        break;
    }
  }
  return true;
}

void ParserCore::set_llhttp_error(llhttp_errno_t err) {
  if (has_error_) return;  // a callback already said why
  const int status = 400;
  const char* reason = llhttp_get_error_reason(&parser_);
  std::string_view why = reason != nullptr ? reason : "";
  switch (err) {
    case HPE_INVALID_METHOD:
      fail(status, "invalid_method");
      break;
    case HPE_INVALID_URL:
      fail(status, "invalid_target");
      break;
    case HPE_INVALID_VERSION:
      fail(status, "invalid_version");
      break;
    case HPE_INVALID_STATUS:
      fail(status, "invalid_status_line");
      break;
    case HPE_INVALID_CONSTANT:
      fail(status, kind_ == Kind::request ? "invalid_request_line" : "invalid_status_line");
      break;
    case HPE_INVALID_HEADER_TOKEN:
      fail(status, "invalid_header");
      break;
    case HPE_UNEXPECTED_SPACE:
      fail(status, "obs_fold");  // SP/HTAB before the first field line
      break;
    case HPE_CR_EXPECTED:
    case HPE_LF_EXPECTED:
      fail(status, "invalid_line_ending");
      break;
    case HPE_INVALID_CONTENT_LENGTH:
      fail(status, "invalid_content_length");
      break;
    case HPE_UNEXPECTED_CONTENT_LENGTH:
      fail(status, why.starts_with("Duplicate") ? "duplicate_content_length"
                                                : "content_length_with_transfer_encoding");
      break;
    case HPE_INVALID_TRANSFER_ENCODING:
      fail(status, "invalid_transfer_encoding");
      break;
    case HPE_INVALID_CHUNK_SIZE:
      fail(status, "invalid_chunk_size");
      break;
    case HPE_STRICT:
      // In 8.1 strict only chunk framing produces HPE_STRICT ("Expected LF after chunk size",
      // "Expected CRLF after chunk", ...) besides header-end line endings.
      fail(status, phase_ == Phase::head ? "invalid_line_ending" : "invalid_chunk_framing");
      break;
    case HPE_PAUSED_UPGRADE:
      fail(status, "unsupported_upgrade");
      break;
    case HPE_PAUSED_H2_UPGRADE:
      // "PRI * HTTP/2.0" + "SM": the HTTP/2 connection preface (RFC 9113 3.4) on an HTTP/1.1
      // port, answered like any HTTP/2.0 request line (corpus: requests/172-http2-preface).
      fail(505, "http_version_not_supported");
      break;
    default:
      fail(status, "malformed_message");
      break;
  }
}

// --- llhttp callbacks ------------------------------------------------------------------------

int ParserCore::cb_message_begin(llhttp_t* p) {
  self(p).started_ = true;
  return 0;
}

int ParserCore::cb_method(llhttp_t* p, const char* at, size_t len) {
  return self(p).on_start_line_part(kMethod, at, len);
}

int ParserCore::cb_url(llhttp_t* p, const char* at, size_t len) {
  return self(p).on_start_line_part(kTarget, at, len);
}

int ParserCore::cb_version(llhttp_t* p, const char* at, size_t len) {
  return self(p).on_start_line_part(kVersion, at, len);
}

int ParserCore::cb_status(llhttp_t* p, const char* at, size_t len) {
  return self(p).on_start_line_part(kReason, at, len);
}

Header& ParserCore::begin_header() { return headers_.append_empty(); }

int ParserCore::cb_header_field(llhttp_t* p, const char* at, size_t len) {
  ParserCore& s = self(p);
  if (s.in_trailers()) {
    // Trailer fields (RFC 9112 7.1.2) are read and dropped: needle never forwards them.
    if (len > 0) s.in_field_ = true;
    s.trailer_bytes_ += len;
    if (s.trailer_bytes_ > s.limits_.max_header_bytes) return s.fail(431, "trailers_too_large");
    return 0;
  }
  if (!s.in_field_) {
    if (s.headers_.size() >= s.limits_.max_header_count) return s.fail(431, "too_many_headers");
    s.begin_header();
    s.in_field_ = true;
  }
  s.headers_.back().name.append(at, len);
  return 0;
}

int ParserCore::cb_header_field_complete(llhttp_t* p) {
  ParserCore& s = self(p);
  if (s.in_trailers()) {
    // Dropped, but held to the header rules: an empty name (": v") is as malformed here
    // (corpus: requests/145-chunk-trailer-empty-name).
    if (!s.in_field_) return s.fail(400, "invalid_header");
    s.in_field_ = false;
    return 0;
  }
  // llhttp 8.1 strict accepts an empty field name (": v") and would glue its value onto the
  // previous field. RFC 9110 5.1: field-name = token, at least one tchar.
  if (!s.in_field_ || s.headers_.back().name.empty()) return s.fail(400, "invalid_header");
  s.in_field_ = false;
  s.headers_.classify_last();
  return 0;
}

int ParserCore::cb_header_value(llhttp_t* p, const char* at, size_t len) {
  ParserCore& s = self(p);
  if (s.in_trailers()) {
    // scan_head sees only the head. llhttp hands an obs-fold over as one more value span that
    // starts right after the LF (with the SP/HTAB); an ordinary value span never follows a LF.
    // RFC 9112 5.2: reject with 400 (corpus: requests/141-chunk-trailer-obs-fold).
    const char before = at > s.feed_begin_ ? at[-1] : s.prev_feed_last_;
    if (before == '\n') return s.fail(400, "obs_fold");
    s.trailer_bytes_ += len;
    if (s.trailer_bytes_ > s.limits_.max_header_bytes) return s.fail(431, "trailers_too_large");
    return 0;
  }
  if (s.headers_.size() == 0) return s.fail(400, "invalid_header");  // cannot happen in llhttp
  s.headers_.back().value.append(at, len);
  return 0;
}

int ParserCore::cb_header_value_complete(llhttp_t* p) {
  ParserCore& s = self(p);
  if (s.in_trailers() || s.headers_.size() == 0) return 0;
  std::string& v = s.headers_.back().value;
  // RFC 9110 5.5: leading/trailing OWS is not part of the value. llhttp skips leading SP itself.
  size_t end = v.size();
  while (end > 0 && is_ows(v[end - 1])) --end;
  size_t start = 0;
  while (start < end && is_ows(v[start])) ++start;
  if (end != v.size()) v.resize(end);
  if (start != 0) v.erase(0, start);
  return 0;
}

int ParserCore::cb_headers_complete(llhttp_t* p) {
  ParserCore& s = self(p);
  const int rc = s.on_head_complete();
  if (rc < 0) return -1;
  if (rc == 1) p->flags |= F_SKIPBODY;  // what returning 1 does; we need to pause as well
  s.paused_at_ = ParseStop::head_complete;
  return HPE_PAUSED;
}

int ParserCore::cb_chunk_header(llhttp_t* p) {
  ParserCore& s = self(p);
  // parser->content_length holds this chunk's size here.
  if (p->content_length > s.limits_.max_body_bytes - s.body_bytes_) {
    return s.fail(413, "body_too_large");
  }
  s.body_bytes_ += p->content_length;
  return 0;
}

int ParserCore::cb_body(llhttp_t* p, const char* at, size_t len) {
  ParserCore& s = self(p);
  if (s.body_out_ != nullptr && len > 0) s.body_out_->emplace_back(at, len);
  return 0;
}

int ParserCore::cb_message_complete(llhttp_t* p) {
  self(p).paused_at_ = ParseStop::message_complete;
  return HPE_PAUSED;
}

}  // namespace needle::http::detail
