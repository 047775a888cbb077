#include <gtest/gtest.h>

#include <string>

#include "http/parser.h"
#include "parse_driver.h"

namespace needle::http {
namespace {

using test_support::describe;
using test_support::drive;
using test_support::drive_whole;
using test_support::every_byte;
using test_support::ParseRun;

ParseRun parse(std::string_view input, bool finish = false, bool head_request = false,
               const ParserLimits& limits = {}) {
  ResponseParser parser(limits);
  parser.set_request_is_head(head_request);
  return drive_whole(parser, input, finish);
}

void expect_rejected(std::string_view input, std::string_view cause, bool finish = false,
                     const ParserLimits& limits = {}) {
  SCOPED_TRACE(::testing::Message() << "input: " << ::testing::PrintToString(std::string(input)));
  ParseRun whole = parse(input, finish, false, limits);
  ASSERT_EQ(whole.stop, ParseStop::error);
  EXPECT_EQ(whole.error.status, 502);
  EXPECT_EQ(whole.error.cause, cause);
  std::string mismatches;
  for (size_t cut = 1; cut < input.size(); ++cut) {
    ResponseParser parser(limits);
    ParseRun split = drive(parser, input, {cut}, finish);
    if (split.stop != ParseStop::error || split.error.status != 502 || split.error.cause != cause) {
      mismatches += " " + std::to_string(cut) + ":" + split.error.cause;
    }
  }
  EXPECT_EQ(mismatches, "") << "cuts that disagree";
}

TEST(ResponseParser, ContentLengthResponse) {
  ResponseParser parser({});
  ParseRun run = drive_whole(parser,
                             "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n"
                             "\r\nhello");
  ASSERT_EQ(run.stop, ParseStop::message_complete);
  EXPECT_TRUE(run.saw_head);
  EXPECT_EQ(run.body, "hello");
  const ResponseHead& h = parser.head();
  EXPECT_EQ(h.status, 200);
  EXPECT_EQ(h.reason, "OK");
  EXPECT_EQ(h.version_minor, 1);
  EXPECT_EQ(h.framing, BodyFraming::content_length);
  EXPECT_EQ(h.content_length, 5u);
  EXPECT_TRUE(h.keep_alive);
  EXPECT_FALSE(h.keep_alive_hint);
  EXPECT_EQ(h.headers.size(), 2u);
}

TEST(ResponseParser, ChunkedResponseIsDecoded) {
  ResponseParser parser({});
  ParseRun run = drive_whole(parser,
                             "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                             "3\r\nabc\r\n1;x=y\r\nd\r\n0\r\nServer-Timing: 1\r\n\r\n");
  ASSERT_EQ(run.stop, ParseStop::message_complete);
  EXPECT_EQ(run.body, "abcd");
  EXPECT_EQ(parser.head().framing, BodyFraming::chunked);
  EXPECT_EQ(parser.head().headers.size(), 1u);  // trailers are not headers
}

TEST(ResponseParser, UntilCloseCompletesOnFinish) {
  ResponseParser parser({});
  std::vector<std::string_view> body;
  const std::string head = "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n";
  FeedResult r = parser.feed(head, body);
  ASSERT_EQ(r.stop, ParseStop::head_complete);
  EXPECT_EQ(r.consumed, head.size());
  EXPECT_EQ(parser.head().framing, BodyFraming::until_close);
  EXPECT_FALSE(parser.head().keep_alive);  // the close ends the body: never reusable
  r = parser.feed("part one, ", body);
  EXPECT_EQ(r.stop, ParseStop::need_more);
  r = parser.feed("part two", body);
  EXPECT_EQ(r.stop, ParseStop::need_more);
  ASSERT_EQ(body.size(), 2u);
  EXPECT_EQ(body[1], "part two");
  r = parser.finish();
  EXPECT_EQ(r.stop, ParseStop::message_complete);
}

TEST(ResponseParser, UntilCloseWithNoBodyBytes) {
  ResponseParser parser({});
  std::vector<std::string_view> body;
  ASSERT_EQ(parser.feed("HTTP/1.0 200 OK\r\n\r\n", body).stop, ParseStop::head_complete);
  EXPECT_EQ(parser.finish().stop, ParseStop::message_complete);
  EXPECT_TRUE(body.empty());
}

TEST(ResponseParser, FinishOnIncompleteMessagesFails) {
  struct Case {
    std::string_view input;
    std::string_view cause;
  } cases[] = {
      {"", "closed_before_response"},
      {"HTTP/1.1 200 OK\r\nContent-Le", "truncated_head"},
      {"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n12345", "truncated_body"},
      {"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", "truncated_body"},
      {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", "truncated_body"},
      {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nabcde\r\n", "truncated_body"},
  };
  for (const Case& c : cases) {
    ParseRun run = parse(c.input, /*finish=*/true);
    EXPECT_EQ(run.stop, ParseStop::error) << c.input;
    EXPECT_EQ(run.error.status, 502) << c.input;
    EXPECT_EQ(run.error.cause, c.cause) << c.input;
  }
}

TEST(ResponseParser, FinishAfterBodilessHeadCompletes) {
  ResponseParser parser({});
  std::vector<std::string_view> body;
  ASSERT_EQ(parser.feed("HTTP/1.1 204 No Content\r\n\r\n", body).stop, ParseStop::head_complete);
  EXPECT_EQ(parser.finish().stop, ParseStop::message_complete);
}

TEST(ResponseParser, HeadResponseHasNoBodyDespiteContentLength) {
  const std::string first = "HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n";
  const std::string all = first + "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
  ResponseParser parser({});
  parser.set_request_is_head(true);
  ParseRun run = drive_whole(parser, all);
  ASSERT_EQ(run.stop, ParseStop::message_complete);
  EXPECT_EQ(run.consumed, first.size());  // the next response is not taken as a body
  EXPECT_EQ(run.body, "");
  EXPECT_EQ(parser.head().framing, BodyFraming::none);
  EXPECT_EQ(parser.head().content_length, 1234u);  // still describes the GET representation
  EXPECT_TRUE(parser.head().keep_alive);

  parser.reset();  // clears HEAD-ness: the next exchange is a GET unless told otherwise
  run = drive_whole(parser, std::string_view(all).substr(first.size()));
  ASSERT_EQ(run.stop, ParseStop::message_complete);
  EXPECT_EQ(parser.head().status, 404);
  EXPECT_EQ(parser.head().framing, BodyFraming::content_length);
}

TEST(ResponseParser, HeadResponseWithChunkedHasNoBody) {
  ParseRun run = parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nHTTP/1.1", false,
                       /*head_request=*/true);
  EXPECT_EQ(run.stop, ParseStop::message_complete);
  EXPECT_EQ(run.consumed,
            std::string_view("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n").size());
}

TEST(ResponseParser, Status204And304HaveNoBody) {
  for (std::string_view status : {"204 No Content", "304 Not Modified"}) {
    const std::string first = "HTTP/1.1 " + std::string(status) + "\r\nContent-Length: 42\r\n\r\n";
    ResponseParser parser({});
    ParseRun run = drive_whole(parser, first + "HTTP/1.1 200 OK\r\n");
    ASSERT_EQ(run.stop, ParseStop::message_complete) << status;
    EXPECT_EQ(run.consumed, first.size()) << status;
    EXPECT_EQ(parser.head().framing, BodyFraming::none);
    EXPECT_EQ(parser.head().content_length, 42u);
    EXPECT_TRUE(parser.head().keep_alive);
  }
}

TEST(ResponseParser, InterimResponsesThenFinal) {
  const std::string interim1 = "HTTP/1.1 100 Continue\r\n\r\n";
  const std::string interim2 = "HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n";
  const std::string final_response = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
  const std::string all = interim1 + interim2 + final_response;
  ResponseParser parser({});
  std::vector<std::string_view> body;
  std::string_view rest = all;

  FeedResult r = parser.feed(rest, body);
  ASSERT_EQ(r.stop, ParseStop::head_complete);
  EXPECT_EQ(parser.head().status, 100);
  rest.remove_prefix(r.consumed);
  r = parser.feed(rest, body);
  ASSERT_EQ(r.stop, ParseStop::message_complete);
  EXPECT_EQ(r.consumed, 0u);
  parser.reset();

  r = parser.feed(rest, body);
  ASSERT_EQ(r.stop, ParseStop::head_complete);
  EXPECT_EQ(parser.head().status, 103);
  EXPECT_EQ(*parser.head().headers.find("link"), "</s.css>; rel=preload");
  rest.remove_prefix(r.consumed);
  ASSERT_EQ(parser.feed(rest, body).stop, ParseStop::message_complete);
  parser.reset();

  ParseRun run = drive_whole(parser, rest);
  ASSERT_EQ(run.stop, ParseStop::message_complete);
  EXPECT_EQ(parser.head().status, 200);
  EXPECT_EQ(run.body, "ok");
}

TEST(ResponseParser, HeadRequestSurvivesInterimReset) {
  ResponseParser parser({});
  parser.set_request_is_head(true);
  ParseRun run = drive_whole(parser, "HTTP/1.1 100 Continue\r\n\r\n");
  ASSERT_EQ(run.stop, ParseStop::message_complete);
  parser.reset();  // after a 1xx, the final response still answers the HEAD
  run = drive_whole(parser, "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n");
  ASSERT_EQ(run.stop, ParseStop::message_complete);
  EXPECT_EQ(parser.head().framing, BodyFraming::none);
}

TEST(ResponseParser, SwitchingProtocolsIsRefused) {
  expect_rejected("HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: ws\r\n\r\n",
                  "unexpected_switching_protocols");
}

TEST(ResponseParser, KeepAliveByVersionAndConnection) {
  struct Case {
    std::string_view msg;
    bool keep;
  } cases[] = {
      {"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", true},
      {"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", false},
      {"HTTP/1.1 200 OK\r\nConnection: foo,Close\r\nContent-Length: 0\r\n\r\n", false},
      {"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", false},
      {"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n", true},
      {"HTTP/1.1 200 OK\r\n\r\n", false},  // until_close
  };
  for (const Case& c : cases) {
    ResponseParser parser({});
    std::vector<std::string_view> body;
    ASSERT_EQ(parser.feed(c.msg, body).stop, ParseStop::head_complete) << c.msg;
    EXPECT_EQ(parser.head().keep_alive, c.keep) << c.msg;
  }
}

TEST(ResponseParser, KeepAliveTimeoutHint) {
  struct Case {
    std::string_view header;
    std::optional<long long> ms;
  } cases[] = {
      {"Keep-Alive: timeout=5", 5000},
      {"Keep-Alive: timeout=5, max=100", 5000},
      {"Keep-Alive: max=100, Timeout = 65", 65000},
      {"Keep-Alive: timeout=\"7\"", 7000},
      {"Keep-Alive: timeout=0", 0},
      {"Keep-Alive: timeout=abc", std::nullopt},
      {"Keep-Alive: timeout=-1", std::nullopt},
      {"Keep-Alive: timeout=5.5", std::nullopt},
      {"Keep-Alive: timeout=", std::nullopt},
      {"Keep-Alive: timeout=99999999999", std::nullopt},
      {"Keep-Alive: max=100", std::nullopt},
      {"X-Keep-Alive: timeout=5", std::nullopt},
  };
  for (const Case& c : cases) {
    ResponseParser parser({});
    const std::string msg =
        "HTTP/1.1 200 OK\r\n" + std::string(c.header) + "\r\nContent-Length: 0\r\n\r\n";
    ASSERT_EQ(drive_whole(parser, msg).stop, ParseStop::message_complete) << c.header;
    if (c.ms) {
      ASSERT_TRUE(parser.head().keep_alive_hint) << c.header;
      EXPECT_EQ(parser.head().keep_alive_hint->count(), *c.ms) << c.header;
    } else {
      EXPECT_FALSE(parser.head().keep_alive_hint) << c.header;
    }
  }
}

TEST(ResponseParser, SplitAtEveryOffsetGivesTheSameResult) {
  struct Case {
    std::string_view msg;
    bool finish;
    bool head_request;
  } cases[] = {
      {"HTTP/1.1 200 OK\r\nContent-Length: 12\r\nKeep-Alive: timeout=5, max=9\r\n\r\nhello world!",
       false, false},
      {"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\nX-A:  v  \r\n\r\n"
       "1a;ext=\"q\"\r\nabcdefghijklmnopqrstuvwxyz\r\n3\r\n123\r\n0\r\nT: 1\r\n\r\n",
       false, false},
      {"HTTP/1.0 200 OK\r\nServer: old\r\n\r\nbody until the connection closes", true, false},
      {"HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\nContent-Length: 99\r\n\r\n", false, false},
      {"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n", false, true},
      {"HTTP/1.1 404 \r\nContent-Length: 0\r\n\r\n", false, false},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(std::string(c.msg));
    ResponseParser reference({});
    reference.set_request_is_head(c.head_request);
    ParseRun whole = drive_whole(reference, c.msg, c.finish);
    ASSERT_EQ(whole.stop, ParseStop::message_complete);
    const std::string expected_head = describe(reference.head());
    for (size_t cut = 1; cut < c.msg.size(); ++cut) {
      ResponseParser parser({});
      parser.set_request_is_head(c.head_request);
      ParseRun split = drive(parser, c.msg, {cut}, c.finish);
      ASSERT_EQ(split.stop, ParseStop::message_complete) << "cut " << cut;
      EXPECT_EQ(split.body, whole.body) << "cut " << cut;
      EXPECT_EQ(describe(parser.head()), expected_head) << "cut " << cut;
    }
    ResponseParser bytewise({});
    bytewise.set_request_is_head(c.head_request);
    ParseRun bytes = drive(bytewise, c.msg, every_byte(c.msg.size()), c.finish);
    ASSERT_EQ(bytes.stop, ParseStop::message_complete);
    EXPECT_EQ(bytes.body, whole.body);
    EXPECT_EQ(describe(bytewise.head()), expected_head);
  }
}

TEST(ResponseParser, PipelinedResponses) {
  const std::string first =
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n0\r\n\r\n";
  const std::string second = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nxyz";
  const std::string all = first + second;
  ResponseParser parser({});
  ParseRun run = drive_whole(parser, all);
  ASSERT_EQ(run.stop, ParseStop::message_complete);
  EXPECT_EQ(run.consumed, first.size());
  EXPECT_EQ(run.body, "ab");
  parser.reset();
  run = drive_whole(parser, std::string_view(all).substr(first.size()));
  ASSERT_EQ(run.stop, ParseStop::message_complete);
  EXPECT_EQ(run.body, "xyz");
}

TEST(ResponseParser, RejectsBadFraming) {
  expect_rejected("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
                  "content_length_with_transfer_encoding");
  expect_rejected("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
                  "content_length_with_transfer_encoding");
  expect_rejected("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "invalid_content_length");
  expect_rejected("HTTP/1.1 200 OK\r\nContent-Length: 0x10\r\n\r\n", "invalid_content_length");
  expect_rejected("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
                  "duplicate_content_length");
  expect_rejected("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
                  "unsupported_transfer_encoding");
  expect_rejected("HTTP/1.1 200 OK\r\nTransfer-Encoding: xchunked\r\n\r\n",
                  "invalid_transfer_encoding");
  expect_rejected("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
                  "transfer_encoding_in_http10");
  expect_rejected("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nxyz\r\n",
                  "invalid_chunk_size");
  expect_rejected("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n",
                  "invalid_chunk_framing");
  expect_rejected("HTTP/1.1 200 OK\r\nX: a\r\n b\r\nContent-Length: 0\r\n\r\n", "obs_fold");
}

TEST(ResponseParser, RejectsGarbageStatusLines) {
  expect_rejected("<html>hello</html>\r\n\r\n", "invalid_status_line");
  expect_rejected("HTTP/1.1 20 OK\r\n\r\n", "invalid_status_line");
  expect_rejected("HTTP/1.1 2000 OK\r\n\r\n", "invalid_status_line");
  expect_rejected("HTTP/1.1 abc OK\r\n\r\n", "invalid_status_line");
  expect_rejected("HTTP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n", "invalid_version");
  expect_rejected("HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n", "bare_lf");
}

TEST(ResponseParser, LimitBreachesAre502) {
  ParserLimits limits;
  limits.max_header_bytes = 64;
  expect_rejected("HTTP/1.1 200 OK\r\nX-Big: " + std::string(100, 'x') + "\r\n\r\n",
                  "header_section_too_large", false, limits);
  limits = {};
  limits.max_header_count = 2;
  expect_rejected("HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", "too_many_headers", false,
                  limits);
  limits = {};
  limits.max_request_line = 16;
  expect_rejected("HTTP/1.1 200 A long reason phrase\r\n\r\n", "status_line_too_long", false,
                  limits);
  limits = {};
  limits.max_body_bytes = 4;
  expect_rejected("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", "body_too_large", false, limits);
  expect_rejected("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\n",
                  "body_too_large", false, limits);
}

TEST(ResponseParser, ReusedAcrossResponses) {
  ResponseParser parser({});
  for (int i = 0; i < 20; ++i) {
    const std::string body = std::string(static_cast<size_t>(i), 'b');
    const std::string msg = "HTTP/1.1 200 OK\r\nX-N: " + std::to_string(i) +
                            "\r\nContent-Length: " + std::to_string(i) + "\r\n\r\n" + body;
    ParseRun run = drive_whole(parser, msg);
    ASSERT_EQ(run.stop, ParseStop::message_complete);
    EXPECT_EQ(run.body, body);
    EXPECT_EQ(*parser.head().headers.find("X-N"), std::to_string(i));
    EXPECT_EQ(parser.head().headers.size(), 2u);
    parser.reset();
  }
}

TEST(ResponseParser, StartedOnlyOnceBytesArrive) {
  ResponseParser parser({});
  EXPECT_FALSE(parser.started());
  std::vector<std::string_view> body;
  parser.feed("HT", body);
  EXPECT_TRUE(parser.started());
}

}  // namespace
}  // namespace needle::http
