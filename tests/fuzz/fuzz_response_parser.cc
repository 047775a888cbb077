// ResponseParser under arbitrary bytes in 1-3 reads, then finish() (the upstream closed), as
// Exchange::relay_response drives it: FeedResult contracts, coherent framing for every head,
// 502 for every error, and finish() never leaves the parser undecided.
#include <algorithm>
#include <string>
#include <vector>

#include "fuzz_common.h"
#include "http/parser.h"
#include "http/parser_common.h"
#include "http/serializer.h"

namespace {

using namespace needle::http;

void check_head(const ResponseHead& h, bool request_is_head) {
  FUZZ_CHECK(h.status >= 100 && h.status <= 999 && h.status != 101);
  FUZZ_CHECK(h.version_minor == 0 || h.version_minor == 1);
  for (const Header& f : h.headers.items()) {
    FUZZ_CHECK(!f.name.empty());
    FUZZ_CHECK(std::all_of(f.name.begin(), f.name.end(), detail::is_tchar));
    FUZZ_CHECK(f.value.find_first_of(std::string_view("\r\n\0", 3)) == std::string::npos);
  }
  const bool te = h.headers.find("Transfer-Encoding") != nullptr;
  const bool cl = h.headers.find("Content-Length") != nullptr;
  FUZZ_CHECK(!(te && cl));
  const bool no_body = h.status < 200 || h.status == 204 || h.status == 304 || request_is_head;
  if (no_body) FUZZ_CHECK(h.framing == BodyFraming::none);
  if (h.framing == BodyFraming::chunked) FUZZ_CHECK(te && h.version_minor == 1);
  if (h.framing == BodyFraming::content_length) FUZZ_CHECK(cl);
  if (h.framing == BodyFraming::until_close) FUZZ_CHECK(!te && !cl && !h.keep_alive);

  // What needle writes to the client parses back to the same status and a single framing.
  DownstreamResponseContext ctx;
  ctx.request_is_head = request_is_head;
  std::string out;
  const BodyFraming client = write_downstream_response_head(h, ctx, out);
  if (h.status < 200) return;  // interim heads are dropped, never written
  ParserLimits big;
  big.max_header_bytes = 1 << 20;
  big.max_header_count = 1 << 16;
  big.max_body_bytes = ~uint64_t{0};
  ResponseParser reparse(big);
  reparse.set_request_is_head(request_is_head);
  std::vector<std::string_view> body;
  const FeedResult r = reparse.feed(out, body);
  FUZZ_CHECK(r.stop == ParseStop::head_complete && r.consumed == out.size());
  FUZZ_CHECK(reparse.head().status == h.status);
  if (!no_body) FUZZ_CHECK(reparse.head().framing == client);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const uint64_t h = needle::fuzz::fnv1a(input);
  ParserLimits limits{.max_request_line = 8 * 1024,
                      .max_header_bytes = 64 * 1024,
                      .max_header_count = 200,
                      .max_body_bytes = ~uint64_t{0}};  // what DownstreamSession configures
  ResponseParser parser(limits);
  const bool request_is_head = (h >> 62) & 1;
  parser.set_request_is_head(request_is_head);
  std::string pending;
  std::vector<std::string_view> body;
  bool in_body = false;
  for (std::string_view piece : needle::fuzz::split_input(input, h)) {
    pending.append(piece);
    for (int guard = 0; guard < 100000; ++guard) {
      body.clear();
      const FeedResult r = parser.feed(pending, body);
      FUZZ_CHECK(r.consumed <= pending.size());
      for (std::string_view span : body) {
        FUZZ_CHECK(span.data() >= pending.data() &&
                   span.data() + span.size() <= pending.data() + r.consumed);
      }
      pending.erase(0, r.consumed);
      if (r.stop == ParseStop::error) {
        FUZZ_CHECK(parser.error().status == 502 && !parser.error().cause.empty());
        FUZZ_CHECK(parser.finish().stop == ParseStop::error);
        return 0;
      }
      if (r.stop == ParseStop::need_more) {
        FUZZ_CHECK(pending.empty());
        break;
      }
      if (r.stop == ParseStop::head_complete) {
        FUZZ_CHECK(!in_body);
        check_head(parser.head(), request_is_head);
        in_body = true;
        continue;
      }
      FUZZ_CHECK(in_body);
      const bool interim = parser.head().status < 200;
      parser.reset();
      if (!interim) parser.set_request_is_head(request_is_head);
      in_body = false;
      if (pending.empty()) break;
    }
  }
  const FeedResult fin = parser.finish();
  FUZZ_CHECK(fin.stop == ParseStop::message_complete || fin.stop == ParseStop::error);
  if (fin.stop == ParseStop::error) FUZZ_CHECK(parser.error().status == 502);
  return 0;
}
