#pragma once
// Test driver: plays the proxy's read loop over a parser, delivering `input` in the segments
// `cuts` describes, so every test can be repeated with bytes split at any position.
#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

#include "http/parser.h"

namespace needle::http::test_support {

struct ParseRun {
  ParseStop stop = ParseStop::need_more;  // message_complete, error, or need_more (input ran out)
  bool saw_head = false;
  std::string body;
  size_t consumed = 0;  // bytes of `input` the message used
  ParseError error;
};

// Read loop: append what arrived, feed everything pending, drop what was consumed; after
// head_complete feed the rest at once (possibly nothing); need_more consumes everything.
template <typename Parser>
ParseRun drive(Parser& parser, std::string_view input, const std::vector<size_t>& cuts,
               bool finish_at_eof = false) {
  ParseRun run;
  std::string pending;
  std::vector<std::string_view> body;
  size_t from = 0;
  std::vector<size_t> ends = cuts;
  ends.push_back(input.size());
  for (size_t end : ends) {
    if (end < from || end > input.size()) continue;
    pending.append(input.substr(from, end - from));
    from = end;
    for (int guard = 0; guard < 8; ++guard) {
      body.clear();
      const FeedResult r = parser.feed(pending, body);
      for (std::string_view span : body) {
        // Zero copy: every span lies inside what was fed.
        EXPECT_GE(span.data(), pending.data());
        EXPECT_LE(span.data() + span.size(), pending.data() + pending.size());
        run.body.append(span);
      }
      EXPECT_LE(r.consumed, pending.size());
      run.consumed += r.consumed;
      pending.erase(0, r.consumed);
      if (r.stop == ParseStop::head_complete) {
        EXPECT_FALSE(run.saw_head) << "head_complete twice";
        run.saw_head = true;
        continue;
      }
      if (r.stop == ParseStop::message_complete || r.stop == ParseStop::error) {
        run.stop = r.stop;
        run.error = parser.error();
        return run;
      }
      EXPECT_TRUE(pending.empty()) << "need_more must consume all input";
      break;
    }
  }
  if constexpr (requires { parser.finish(); }) {
    if (finish_at_eof) {
      const FeedResult r = parser.finish();
      run.stop = r.stop;
      run.error = parser.error();
    }
  }
  return run;
}

template <typename Parser>
ParseRun drive_whole(Parser& parser, std::string_view input, bool finish_at_eof = false) {
  return drive(parser, input, {}, finish_at_eof);
}

inline std::vector<size_t> every_byte(size_t n) {
  std::vector<size_t> cuts;
  for (size_t i = 1; i < n; ++i) cuts.push_back(i);
  return cuts;
}

inline std::string describe_headers(const HeaderList& headers) {
  std::string s;
  for (const Header& h : headers.items()) s += h.name + ": " + h.value + "|";
  return s;
}

inline std::string describe(const RequestHead& h) {
  return h.method + " " + h.target + " 1." + std::to_string(h.version_minor) + " host=" + h.host +
         " framing=" + std::to_string(static_cast<int>(h.framing)) +
         " cl=" + std::to_string(h.content_length) + " ka=" + std::to_string(h.keep_alive) +
         " ec=" + std::to_string(h.expect_continue) + " [" + describe_headers(h.headers) + "]";
}

inline std::string describe(const ResponseHead& h) {
  return std::to_string(h.status) + " " + h.reason + " 1." + std::to_string(h.version_minor) +
         " framing=" + std::to_string(static_cast<int>(h.framing)) +
         " cl=" + std::to_string(h.content_length) + " ka=" + std::to_string(h.keep_alive) +
         " hint=" + (h.keep_alive_hint ? std::to_string(h.keep_alive_hint->count()) : "-") + " [" +
         describe_headers(h.headers) + "]";
}

}  // namespace needle::http::test_support
