// RequestParser under arbitrary bytes, fed in 1-3 reads as DownstreamSession feeds it: every
// documented FeedResult contract holds, every completed head is one needle can forward without
// ambiguity, every error has a request status and a cause. Pipelined messages are followed.
#include <algorithm>
#include <string>
#include <vector>

#include "fuzz_common.h"
#include "http/parser.h"
#include "http/parser_common.h"

namespace {

using namespace needle::http;

bool is_token(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), detail::is_tchar);
}

bool clean_value(std::string_view v) {
  for (unsigned char c : v) {
    if (c == '\r' || c == '\n' || c == 0 || (c < 0x20 && c != '\t') || c == 0x7f) return false;
  }
  return v.empty() || (!detail::is_ows(v.front()) && !detail::is_ows(v.back()));
}

void check_head(const RequestHead& h, const ParserLimits& limits) {
  FUZZ_CHECK(is_token(h.method));
  FUZZ_CHECK(!h.target.empty());
  FUZZ_CHECK(h.target.find('#') == std::string::npos);
  for (unsigned char c : h.target) FUZZ_CHECK(c > 0x20 && c != 0x7f);
  FUZZ_CHECK(h.version_minor == 0 || h.version_minor == 1);
  FUZZ_CHECK(h.headers.size() <= limits.max_header_count);
  for (const Header& f : h.headers.items()) {
    FUZZ_CHECK(is_token(f.name));
    FUZZ_CHECK(clean_value(f.value));
  }
  FUZZ_CHECK(h.headers.count("Host") <= 1);
  if (h.version_minor == 1) FUZZ_CHECK(!h.host.empty());
  FUZZ_CHECK(h.host.empty() || detail::is_valid_authority(h.host));
  const bool te = h.headers.find("Transfer-Encoding") != nullptr;
  const bool cl = h.headers.find("Content-Length") != nullptr;
  FUZZ_CHECK(!(te && cl));  // never both framings
  switch (h.framing) {
    case BodyFraming::chunked:
      FUZZ_CHECK(te && h.version_minor == 1);
      FUZZ_CHECK(detail::classify_transfer_encoding(h.headers) == detail::TransferCoding::chunked);
      break;
    case BodyFraming::content_length:
      FUZZ_CHECK(cl && h.content_length <= limits.max_body_bytes);
      break;
    case BodyFraming::none:
      FUZZ_CHECK(!te && !cl);
      break;
    case BodyFraming::until_close:
      FUZZ_CHECK(false);  // requests are never close-delimited (RFC 9112 6.3 item 7)
  }
}

void check_error(const ParseError& e) {
  // 405: CONNECT (needle opens no CONNECT tunnels: docs/config.md "Upgrade and WebSocket").
  FUZZ_CHECK(e.status == 400 || e.status == 405 || e.status == 413 || e.status == 414 ||
             e.status == 431 || e.status == 501 || e.status == 505);
  FUZZ_CHECK(!e.cause.empty());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const uint64_t h = needle::fuzz::fnv1a(input);
  ParserLimits limits;
  if (h & (1ull << 63)) {  // the corpus test's small limits, so the limit paths are reached
    limits.max_request_line = 1024;
    limits.max_header_bytes = 4096;
    limits.max_header_count = 20;
    limits.max_body_bytes = 1024;
  }
  RequestParser parser(limits);
  std::string pending;
  std::vector<std::string_view> body;
  bool in_body = false;
  uint64_t body_bytes = 0;
  for (std::string_view piece : needle::fuzz::split_input(input, h)) {
    pending.append(piece);
    for (int guard = 0; guard < 100000; ++guard) {
      body.clear();
      const FeedResult r = parser.feed(pending, body);
      FUZZ_CHECK(r.consumed <= pending.size());
      for (std::string_view span : body) {
        // Spans point into what was fed, inside the consumed part.
        FUZZ_CHECK(span.data() >= pending.data() &&
                   span.data() + span.size() <= pending.data() + r.consumed);
        body_bytes += span.size();
      }
      FUZZ_CHECK(body_bytes <= limits.max_body_bytes);
      pending.erase(0, r.consumed);
      if (r.stop == ParseStop::error) {
        check_error(parser.error());
        // Sticky until reset().
        body.clear();
        FUZZ_CHECK(parser.feed("GET / HTTP/1.1\r\n", body).stop == ParseStop::error);
        return 0;
      }
      if (r.stop == ParseStop::need_more) {
        FUZZ_CHECK(pending.empty());  // need_more consumes everything
        break;
      }
      if (r.stop == ParseStop::head_complete) {
        FUZZ_CHECK(!in_body);
        check_head(parser.head(), limits);
        in_body = true;
        continue;  // feed again, even with nothing pending
      }
      // message_complete
      FUZZ_CHECK(in_body);
      const RequestHead& head = parser.head();
      if (head.framing == BodyFraming::content_length)
        FUZZ_CHECK(body_bytes == head.content_length);
      if (head.framing == BodyFraming::none) FUZZ_CHECK(body_bytes == 0);
      body.clear();
      const FeedResult again = parser.feed(pending, body);  // until reset(): complete, consumes 0
      FUZZ_CHECK(again.stop == ParseStop::message_complete && again.consumed == 0);
      parser.reset();
      in_body = false;
      body_bytes = 0;
      if (pending.empty()) break;
    }
  }
  return 0;
}
