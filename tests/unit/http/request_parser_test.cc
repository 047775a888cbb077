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

ParseRun parse(std::string_view input, const ParserLimits& limits = {}) {
  RequestParser parser(limits);
  return drive_whole(parser, input);
}

// Expects `input` to be rejected with `status`/`cause`, whole and split at every byte offset.
void expect_rejected(std::string_view input, int status, std::string_view cause,
                     const ParserLimits& limits = {}) {
  SCOPED_TRACE(::testing::Message() << "input: " << ::testing::PrintToString(std::string(input)));
  ParseRun whole = parse(input, limits);
  ASSERT_EQ(whole.stop, ParseStop::error);
  EXPECT_EQ(whole.error.status, status);
  EXPECT_EQ(whole.error.cause, cause);
  std::string mismatches;
  for (size_t cut = 1; cut < input.size(); ++cut) {
    RequestParser parser(limits);
    ParseRun split = drive(parser, input, {cut});
    if (split.stop != ParseStop::error || split.error.status != status ||
        split.error.cause != cause) {
      mismatches += " " + std::to_string(cut) + ":" + split.error.cause;
    }
  }
  EXPECT_EQ(mismatches, "") << "cuts that disagree";
}

constexpr std::string_view kGet =
    "GET /index.html?q=1 HTTP/1.1\r\n"
    "Host: example.com\r\n"
    "User-Agent: test\r\n"
    "Accept: */*\r\n"
    "\r\n";

TEST(RequestParser, ParsesSimpleGet) {
  RequestParser parser({});
  std::vector<std::string_view> body;
  FeedResult r = parser.feed(kGet, body);
  ASSERT_EQ(r.stop, ParseStop::head_complete);
  EXPECT_EQ(r.consumed, kGet.size());  // head_complete consumes exactly the head
  const RequestHead& h = parser.head();
  EXPECT_EQ(h.method, "GET");
  EXPECT_EQ(h.target, "/index.html?q=1");
  EXPECT_EQ(h.version_minor, 1);
  EXPECT_EQ(h.host, "example.com");
  EXPECT_EQ(h.framing, BodyFraming::none);
  EXPECT_TRUE(h.keep_alive);
  EXPECT_FALSE(h.expect_continue);
  ASSERT_EQ(h.headers.size(), 3u);
  EXPECT_EQ(h.headers.items()[1].name, "User-Agent");
  EXPECT_EQ(h.headers.items()[1].value, "test");
  // A bodiless message completes on the next feed, even with no bytes.
  r = parser.feed({}, body);
  EXPECT_EQ(r.stop, ParseStop::message_complete);
  EXPECT_EQ(r.consumed, 0u);
  EXPECT_TRUE(body.empty());
}

TEST(RequestParser, NeedMoreConsumesEverythingAndStartedTracksFirstByte) {
  RequestParser parser({});
  std::vector<std::string_view> body;
  EXPECT_FALSE(parser.started());
  FeedResult r = parser.feed("\r\n", body);  // an empty line before the request is ignored
  EXPECT_EQ(r.stop, ParseStop::need_more);
  EXPECT_EQ(r.consumed, 2u);
  EXPECT_FALSE(parser.started());
  r = parser.feed("GE", body);
  EXPECT_EQ(r.stop, ParseStop::need_more);
  EXPECT_EQ(r.consumed, 2u);
  EXPECT_TRUE(parser.started());
  r = parser.feed("T / HTTP/1.1\r\nHost: a\r\n\r\n", body);
  EXPECT_EQ(r.stop, ParseStop::head_complete);
  EXPECT_EQ(parser.head().method, "GET");
  parser.reset();
  EXPECT_FALSE(parser.started());
}

TEST(RequestParser, ContentLengthBodyIsZeroCopy) {
  const std::string msg = "POST /u HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\nhello world";
  RequestParser parser({});
  std::vector<std::string_view> body;
  FeedResult r = parser.feed(msg, body);
  ASSERT_EQ(r.stop, ParseStop::head_complete);
  EXPECT_EQ(parser.head().framing, BodyFraming::content_length);
  EXPECT_EQ(parser.head().content_length, 11u);
  const size_t head_size = r.consumed;
  r = parser.feed(std::string_view(msg).substr(head_size), body);
  ASSERT_EQ(r.stop, ParseStop::message_complete);
  EXPECT_EQ(r.consumed, 11u);
  ASSERT_EQ(body.size(), 1u);
  EXPECT_EQ(body[0], "hello world");
  EXPECT_EQ(body[0].data(), msg.data() + head_size);
}

TEST(RequestParser, ChunkedBodyIsDecodedAndTrailersDropped) {
  ParseRun run = parse(
      "POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5;ext=1\r\nhello\r\n6\r\n world\r\nA\r\n0123456789\r\n0\r\nX-Trailer: t\r\n\r\n");
  ASSERT_EQ(run.stop, ParseStop::message_complete);
  EXPECT_EQ(run.body, "hello world0123456789");
}

TEST(RequestParser, ChunkedFramingAndHeaders) {
  RequestParser parser({});
  std::vector<std::string_view> body;
  const std::string msg =
      "POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n3\r\nabc\r\n0\r\nT: "
      "x\r\n\r\n";
  ASSERT_EQ(parser.feed(msg, body).stop, ParseStop::head_complete);
  EXPECT_EQ(parser.head().framing, BodyFraming::chunked);
  EXPECT_EQ(parser.head().headers.size(), 2u);
}

TEST(RequestParser, ContentLengthZeroCompletesAfterHead) {
  ParseRun run = parse("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n");
  EXPECT_EQ(run.stop, ParseStop::message_complete);
  EXPECT_TRUE(run.saw_head);
  EXPECT_EQ(run.body, "");
}

TEST(RequestParser, ValuesAreOwsTrimmedAndNamesKeepCase) {
  RequestParser parser({});
  ParseRun run = drive_whole(parser,
                             "GET / HTTP/1.1\r\nhOsT: a\r\nX-Pad:  \t a \t b \t \r\nX-Empty:\r\n"
                             "X-Empty2:   \r\n\r\n");
  ASSERT_EQ(run.stop, ParseStop::message_complete);
  const auto& items = parser.head().headers.items();
  ASSERT_EQ(items.size(), 4u);
  EXPECT_EQ(items[0].name, "hOsT");
  EXPECT_EQ(items[1].value, "a \t b");
  EXPECT_EQ(items[2].value, "");
  EXPECT_EQ(items[3].value, "");
  EXPECT_EQ(parser.head().host, "a");
}

// Every accepted message gives the same head, body and consumed count however the bytes are cut.
TEST(RequestParser, SplitAtEveryOffsetGivesTheSameResult) {
  const std::string_view messages[] = {
      kGet,
      "POST /upload HTTP/1.1\r\nHost: h:8080\r\nContent-Length: 10\r\nX-Long-Header-Name: "
      "some value with spaces\r\nConnection: keep-alive, X-Gone\r\n\r\n0123456789",
      "PUT /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n"
      "4;name=\"v\"\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nTrailer-A: 1\r\n\r\n",
      "GET http://Example.com:81/p?x HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
      "\r\nOPTIONS * HTTP/1.1\r\nHost: a\r\nX-Empty:\r\n\r\n",
  };
  for (std::string_view msg : messages) {
    SCOPED_TRACE(std::string(msg));
    RequestParser reference({});
    ParseRun whole = drive_whole(reference, msg);
    ASSERT_EQ(whole.stop, ParseStop::message_complete);
    ASSERT_EQ(whole.consumed, msg.size());
    const std::string expected_head = describe(reference.head());
    for (size_t cut = 1; cut < msg.size(); ++cut) {
      RequestParser parser({});
      ParseRun split = drive(parser, msg, {cut});
      ASSERT_EQ(split.stop, ParseStop::message_complete) << "cut " << cut;
      EXPECT_EQ(split.body, whole.body) << "cut " << cut;
      EXPECT_EQ(split.consumed, msg.size()) << "cut " << cut;
      EXPECT_EQ(describe(parser.head()), expected_head) << "cut " << cut;
    }
    RequestParser bytewise({});
    ParseRun bytes = drive(bytewise, msg, every_byte(msg.size()));
    ASSERT_EQ(bytes.stop, ParseStop::message_complete);
    EXPECT_EQ(bytes.body, whole.body);
    EXPECT_EQ(describe(bytewise.head()), expected_head);
  }
}

TEST(RequestParser, PipelinedRequestsInOneBuffer) {
  const std::string first = "POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc";
  const std::string second = "GET /b HTTP/1.1\r\nHost: b\r\n\r\n";
  const std::string third =
      "DELETE /c HTTP/1.1\r\nHost: c\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
  const std::string all = first + second + third;
  RequestParser parser({});
  std::vector<std::string_view> body;
  std::string_view rest = all;

  FeedResult r = parser.feed(rest, body);
  ASSERT_EQ(r.stop, ParseStop::head_complete);
  rest.remove_prefix(r.consumed);
  r = parser.feed(rest, body);
  ASSERT_EQ(r.stop, ParseStop::message_complete);
  EXPECT_EQ(r.consumed, 3u);  // the body only: the next request stays unconsumed
  rest.remove_prefix(r.consumed);
  EXPECT_EQ(rest, second + third);
  // Feeding again before reset() changes nothing.
  EXPECT_EQ(parser.feed(rest, body).consumed, 0u);

  parser.reset();
  body.clear();
  r = parser.feed(rest, body);
  ASSERT_EQ(r.stop, ParseStop::head_complete);
  EXPECT_EQ(r.consumed, second.size());
  EXPECT_EQ(parser.head().target, "/b");
  EXPECT_EQ(parser.head().headers.size(), 1u);  // no leftovers from the first request
  rest.remove_prefix(r.consumed);
  r = parser.feed(rest, body);
  ASSERT_EQ(r.stop, ParseStop::message_complete);
  EXPECT_EQ(r.consumed, 0u);

  parser.reset();
  r = parser.feed(rest, body);
  ASSERT_EQ(r.stop, ParseStop::head_complete);
  EXPECT_EQ(parser.head().method, "DELETE");
  rest.remove_prefix(r.consumed);
  r = parser.feed(rest, body);
  ASSERT_EQ(r.stop, ParseStop::message_complete);
  EXPECT_EQ(r.consumed, rest.size());
  EXPECT_TRUE(body.empty());
}

TEST(RequestParser, ReusedAcrossManyRequests) {
  RequestParser parser({});
  for (int i = 0; i < 50; ++i) {
    const std::string msg = "GET /" + std::to_string(i) + " HTTP/1.1\r\nHost: h" +
                            std::to_string(i) + "\r\nX-" + std::to_string(i % 3) + ": v\r\n\r\n";
    ParseRun run = drive_whole(parser, msg);
    ASSERT_EQ(run.stop, ParseStop::message_complete);
    EXPECT_EQ(parser.head().target, "/" + std::to_string(i));
    EXPECT_EQ(parser.head().host, "h" + std::to_string(i));
    ASSERT_EQ(parser.head().headers.size(), 2u);
    EXPECT_EQ(parser.head().headers.items()[1].name, "X-" + std::to_string(i % 3));
    parser.reset();
  }
}

TEST(RequestParser, ErrorIsSticky) {
  RequestParser parser({});
  std::vector<std::string_view> body;
  ASSERT_EQ(parser.feed("BAD\x01 / HTTP/1.1\r\n", body).stop, ParseStop::error);
  const FeedResult again = parser.feed(kGet, body);
  EXPECT_EQ(again.stop, ParseStop::error);
  EXPECT_EQ(again.consumed, 0u);
  parser.reset();
  EXPECT_EQ(parser.feed(kGet, body).stop, ParseStop::head_complete);
}

// --- keep-alive, Expect, Host ---------------------------------------------------------------

TEST(RequestParser, KeepAliveByVersionAndConnection) {
  struct Case {
    std::string_view msg;
    bool keep;
  } cases[] = {
      {"GET / HTTP/1.1\r\nHost: a\r\n\r\n", true},
      {"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", false},
      {"GET / HTTP/1.1\r\nHost: a\r\nConnection: X-Foo, CLOSE\r\n\r\n", false},
      {"GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\n\r\n", true},
      {"GET / HTTP/1.0\r\n\r\n", false},
      {"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", true},
      {"GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n", false},
  };
  for (const Case& c : cases) {
    RequestParser parser({});
    ASSERT_EQ(drive_whole(parser, c.msg).stop, ParseStop::message_complete) << c.msg;
    EXPECT_EQ(parser.head().keep_alive, c.keep) << c.msg;
  }
}

TEST(RequestParser, ExpectContinue) {
  struct Case {
    std::string_view msg;
    bool expect;
  } cases[] = {
      {"PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nx", true},
      {"PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\nx", true},
      {"PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n\r\nx", false},
      {"PUT / HTTP/1.1\r\nHost: a\r\nExpect: something\r\nContent-Length: 1\r\n\r\nx", false},
      {"PUT / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nx", false},
  };
  for (const Case& c : cases) {
    RequestParser parser({});
    ASSERT_EQ(drive_whole(parser, c.msg).stop, ParseStop::message_complete) << c.msg;
    EXPECT_EQ(parser.head().expect_continue, c.expect) << c.msg;
  }
}

TEST(RequestParser, HostRules) {
  expect_rejected("GET / HTTP/1.1\r\n\r\n", 400, "missing_host");
  expect_rejected("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", 400, "multiple_host");
  expect_rejected("GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n", 400, "multiple_host");
  expect_rejected("GET / HTTP/1.1\r\nHost:\r\n\r\n", 400, "invalid_host");
  expect_rejected("GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400, "invalid_host");
  expect_rejected("GET / HTTP/1.1\r\nHost: a:80x\r\n\r\n", 400, "invalid_host");
  expect_rejected("GET / HTTP/1.1\r\nHost: user@a\r\n\r\n", 400, "invalid_host");

  RequestParser v10({});
  ASSERT_EQ(drive_whole(v10, "GET / HTTP/1.0\r\n\r\n").stop, ParseStop::message_complete);
  EXPECT_EQ(v10.head().host, "");
  RequestParser v6({});
  ASSERT_EQ(drive_whole(v6, "GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n").stop,
            ParseStop::message_complete);
  EXPECT_EQ(v6.head().host, "[::1]:8080");
}

TEST(RequestParser, AbsoluteFormAuthorityIsTheHost) {
  RequestParser parser({});
  ASSERT_EQ(drive_whole(parser,
                        "GET http://api.example.com:8080/v1?x=1 HTTP/1.1\r\n"
                        "Host: API.example.com:8080\r\n\r\n")
                .stop,
            ParseStop::message_complete);
  EXPECT_EQ(parser.head().host, "api.example.com:8080");
  EXPECT_EQ(parser.head().target, "http://api.example.com:8080/v1?x=1");

  RequestParser v10({});
  ASSERT_EQ(drive_whole(v10, "GET https://b.example/ HTTP/1.0\r\n\r\n").stop,
            ParseStop::message_complete);
  EXPECT_EQ(v10.head().host, "b.example");

  expect_rejected("GET http://a.example/ HTTP/1.1\r\nHost: b.example\r\n\r\n", 400,
                  "host_mismatch");
  expect_rejected("GET http://a.example/ HTTP/1.1\r\nHost: a.example:80\r\n\r\n", 400,
                  "host_mismatch");
  expect_rejected("GET http://u@a.example/ HTTP/1.1\r\nHost: a.example\r\n\r\n", 400,
                  "invalid_target");
  expect_rejected("GET ftp://a.example/ HTTP/1.1\r\nHost: a.example\r\n\r\n", 400,
                  "invalid_target");
}

TEST(RequestParser, TargetForms) {
  RequestParser options({});
  EXPECT_EQ(drive_whole(options, "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n").stop,
            ParseStop::message_complete);
  expect_rejected("GET * HTTP/1.1\r\nHost: a\r\n\r\n", 400, "invalid_target");
  expect_rejected("GET /a#frag HTTP/1.1\r\nHost: a\r\n\r\n", 400, "invalid_target");
  expect_rejected("GET /a\x7f HTTP/1.1\r\nHost: a\r\n\r\n", 400, "invalid_target");
  expect_rejected("CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n", 405,
                  "connect_not_supported");
}

// --- versions, methods, request line -----------------------------------------------------------

TEST(RequestParser, OnlyHttp10And11) {
  expect_rejected("GET / HTTP/0.9\r\nHost: a\r\n\r\n", 400, "invalid_version");
  expect_rejected("GET /\r\n\r\n", 400, "invalid_request_line");  // HTTP/0.9 simple request
  expect_rejected("GET / HTTP/1.2\r\nHost: a\r\n\r\n", 400, "invalid_version");
  expect_rejected("GET / HTTP/3.0\r\nHost: a\r\n\r\n", 400, "invalid_version");
  expect_rejected("GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505, "http_version_not_supported");
  expect_rejected("GET / http/1.1\r\nHost: a\r\n\r\n", 400, "invalid_request_line");
}

TEST(RequestParser, MethodsAreTokensLlhttpKnows) {
  expect_rejected("get / HTTP/1.1\r\nHost: a\r\n\r\n", 400, "invalid_method");
  expect_rejected("FROB / HTTP/1.1\r\nHost: a\r\n\r\n", 400, "invalid_method");
  RequestParser parser({});
  EXPECT_EQ(drive_whole(parser, "PATCH /x HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n").stop,
            ParseStop::message_complete);
  EXPECT_EQ(parser.head().method, "PATCH");
}

TEST(RequestParser, RequestLineNeedsSingleSpaces) {
  expect_rejected("GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400, "invalid_request_line");
  expect_rejected("GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", 400, "invalid_request_line");
  expect_rejected("GET / HTTP/1.1 \r\nHost: a\r\n\r\n", 400, "invalid_version");
}

// --- line endings, control bytes, obs-fold ----------------------------------------------------

TEST(RequestParser, RejectsObsFold) {
  expect_rejected("GET / HTTP/1.1\r\nHost: a\r\nX-A: one\r\n two\r\n\r\n", 400, "obs_fold");
  expect_rejected("GET / HTTP/1.1\r\nHost: a\r\nX-A: one\r\n\ttwo\r\n\r\n", 400, "obs_fold");
  expect_rejected("GET / HTTP/1.1\r\n Host: a\r\n\r\n", 400, "obs_fold");
  // A folded Transfer-Encoding is the classic smuggling form: obs_fold wins over framing rules.
  expect_rejected("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n",
                  400, "obs_fold");
}

TEST(RequestParser, RejectsBareLineEndingsAndControlBytes) {
  expect_rejected("GET / HTTP/1.1\nHost: a\r\n\r\n", 400, "bare_lf");
  expect_rejected("GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n", 400, "bare_lf");
  expect_rejected("GET / HTTP/1.1\r\nHost: a\r\n\n", 400, "bare_lf");
  expect_rejected("GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n", 400, "bare_cr");
  expect_rejected("GET / HTTP/1.1\r\nHost: a\r\n\r\r\n", 400, "bare_cr");
  expect_rejected("GET /\r HTTP/1.1\r\nHost: a\r\n\r\n", 400, "bare_cr");
  expect_rejected(std::string_view("GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n", 34), 400,
                  "invalid_header");
  expect_rejected(std::string_view("GET / HTTP/1.1\r\nHost: a\r\nX\0: ab\r\n\r\n", 34), 400,
                  "invalid_header");
  expect_rejected("GET / HTTP/1.1\r\nHost: a\r\nX: a\x01z\r\n\r\n", 400, "invalid_header");
  expect_rejected("GET / HTTP/1.1\r\nHost: a\r\nX: a\x7fz\r\n\r\n", 400, "invalid_header");
}

TEST(RequestParser, RejectsWhitespaceBeforeColonAndBadNames) {
  expect_rejected("GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400, "invalid_header");
  expect_rejected("GET / HTTP/1.1\r\nHost\t: a\r\n\r\n", 400, "invalid_header");
  expect_rejected("GET / HTTP/1.1\r\nHost: a\r\nX(y): z\r\n\r\n", 400, "invalid_header");
  expect_rejected("GET / HTTP/1.1\r\nHost: a\r\n: z\r\n\r\n", 400, "invalid_header");
  expect_rejected("GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n", 400, "invalid_header");
}

TEST(RequestParser, AcceptsObsTextInValues) {
  RequestParser parser({});
  ASSERT_EQ(drive_whole(parser, "GET / HTTP/1.1\r\nHost: a\r\nX: caf\xc3\xa9\r\n\r\n").stop,
            ParseStop::message_complete);
  EXPECT_EQ(*parser.head().headers.find("x"), "caf\xc3\xa9");
}

// --- framing ------------------------------------------------------------------------------------

TEST(RequestParser, RejectsContentLengthWithTransferEncoding) {
  expect_rejected(
      "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", 400,
      "content_length_with_transfer_encoding");
  expect_rejected(
      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", 400,
      "content_length_with_transfer_encoding");
  expect_rejected(
      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\nContent-Length: 5\r\n\r\n", 400,
      "content_length_with_transfer_encoding");
}

TEST(RequestParser, UnsupportedTransferCodingsAre501) {
  expect_rejected("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", 501,
                  "unsupported_transfer_encoding");
  expect_rejected("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501,
                  "unsupported_transfer_encoding");
  expect_rejected(
      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: deflate\r\nTransfer-Encoding: "
      "chunked\r\n\r\n",
      501, "unsupported_transfer_encoding");
}

TEST(RequestParser, ObfuscatedTransferEncodingsAre400) {
  const std::string_view values[] = {
      "xchunked",  "chunked, chunked", ", chunked",   "chunked,", "chunked,,",
      "chun\tked", "\"chunked\"",      "chunked;q=1", "identity", "chunk",
  };
  for (std::string_view v : values) {
    expect_rejected(
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: " + std::string(v) + "\r\n\r\n0\r\n\r\n",
        400, "invalid_transfer_encoding");
  }
  expect_rejected(
      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: "
      "chunked\r\n\r\n0\r\n\r\n",
      400, "invalid_transfer_encoding");
  expect_rejected("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400,
                  "transfer_encoding_in_http10");
  // Trailing HTAB is OWS, but llhttp strict does not take it after "chunked"; refused, not guessed.
  expect_rejected("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\t\r\n\r\n0\r\n\r\n",
                  400, "invalid_transfer_encoding");
}

TEST(RequestParser, ChunkedIsCaseInsensitiveWithOws) {
  for (std::string_view v : {"chunked", "CHUNKED", "Chunked  "}) {
    RequestParser parser({});
    ParseRun run =
        drive_whole(parser, "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: " + std::string(v) +
                                "\r\n\r\n1\r\nz\r\n0\r\n\r\n");
    ASSERT_EQ(run.stop, ParseStop::message_complete) << v << " " << run.error.cause;
    EXPECT_EQ(run.body, "z");
  }
}

TEST(RequestParser, RejectsInvalidContentLength) {
  for (std::string_view v :
       {"+5", "-5", "0x5", "5 5", "5,5", "5, 5", "five", "1e3", "99999999999999999999999", ""}) {
    expect_rejected(
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: " + std::string(v) + "\r\n\r\nhello", 400,
        "invalid_content_length");
  }
}

TEST(RequestParser, RejectsRepeatedContentLength) {
  // llhttp strict refuses any second Content-Length, even an identical one (no folding).
  expect_rejected("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
                  400, "duplicate_content_length");
  expect_rejected("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
                  400, "duplicate_content_length");
}

TEST(RequestParser, RejectsBadChunkFraming) {
  const std::string head = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
  expect_rejected(head + "zz\r\n", 400, "invalid_chunk_size");
  expect_rejected(head + "0x5\r\nhello\r\n0\r\n\r\n", 400, "invalid_chunk_size");
  expect_rejected(head + "-1\r\n", 400, "invalid_chunk_size");
  expect_rejected(head + "5 \r\nhello\r\n0\r\n\r\n", 400, "invalid_chunk_size");
  expect_rejected(head + "fffffffffffffffffff\r\n", 400, "invalid_chunk_size");
  expect_rejected(head + "5\nhello\r\n0\r\n\r\n", 400, "invalid_chunk_size");
  expect_rejected(head + "5;a=b\rc\r\nhello\r\n0\r\n\r\n", 400, "invalid_chunk_framing");
  expect_rejected(head + "5;a=b\nc\r\nhello\r\n0\r\n\r\n", 400, "invalid_chunk_framing");
  expect_rejected(head + "5\r\nhelloXX0\r\n\r\n", 400, "invalid_chunk_framing");
  expect_rejected(head + "5\r\nhello\n0\r\n\r\n", 400, "invalid_chunk_framing");
}

// --- limits -------------------------------------------------------------------------------------

TEST(RequestParser, RequestLineLimitIs414) {
  ParserLimits limits;
  limits.max_request_line = 30;
  // "GET " (4) + target (17) + " HTTP/1.1" (9) == 30 fits exactly.
  const std::string fits = "GET /" + std::string(16, 'a') + " HTTP/1.1\r\nHost: a\r\n\r\n";
  EXPECT_EQ(parse(fits, limits).stop, ParseStop::message_complete);
  const std::string over = "GET /" + std::string(17, 'a') + " HTTP/1.1\r\nHost: a\r\n\r\n";
  expect_rejected(over, 414, "request_line_too_long", limits);
  // Rejected before the line ends: no need to buffer an endless target.
  RequestParser parser(limits);
  std::vector<std::string_view> body;
  EXPECT_EQ(parser.feed("GET /" + std::string(100, 'a'), body).stop, ParseStop::error);
  EXPECT_EQ(parser.error().status, 414);
}

TEST(RequestParser, HeaderSectionLimitIs431) {
  ParserLimits limits;
  limits.max_header_bytes = 64;
  std::string fits = "GET / HTTP/1.1\r\nHost: a\r\nX: ";
  fits += std::string(64 - fits.size() - 4, 'v') + "\r\n\r\n";
  ASSERT_EQ(fits.size(), 64u);
  EXPECT_EQ(parse(fits, limits).stop, ParseStop::message_complete);
  std::string over = fits;
  over.insert(over.find("vv"), "v");
  expect_rejected(over, 431, "header_section_too_large", limits);
  // An endless header section is cut off at the limit, not buffered.
  RequestParser parser(limits);
  std::vector<std::string_view> body;
  FeedResult r = parser.feed("GET / HTTP/1.1\r\nX: " + std::string(1000, 'v'), body);
  EXPECT_EQ(r.stop, ParseStop::error);
  EXPECT_LE(r.consumed, 64u);
  EXPECT_EQ(parser.error().status, 431);
}

TEST(RequestParser, HeaderCountLimitIs431) {
  ParserLimits limits;
  limits.max_header_count = 3;
  EXPECT_EQ(parse("GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\n\r\n", limits).stop,
            ParseStop::message_complete);
  expect_rejected("GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", 431,
                  "too_many_headers", limits);
}

TEST(RequestParser, DeclaredBodyOverLimitIs413AtHead) {
  ParserLimits limits;
  limits.max_body_bytes = 10;
  EXPECT_EQ(
      parse("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n0123456789", limits).stop,
      ParseStop::message_complete);
  // No body byte has to arrive for the rejection.
  expect_rejected("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\n", 413, "body_too_large",
                  limits);
}

TEST(RequestParser, DecodedChunkedBodyOverLimitIs413) {
  ParserLimits limits;
  limits.max_body_bytes = 10;
  const std::string head = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
  ParseRun ok = parse(head + "5\r\n01234\r\n5\r\n56789\r\n0\r\n\r\n", limits);
  EXPECT_EQ(ok.stop, ParseStop::message_complete);
  EXPECT_EQ(ok.body, "0123456789");
  expect_rejected(head + "5\r\n01234\r\n6\r\n", 413, "body_too_large", limits);
  expect_rejected(head + "ffffffff\r\n", 413, "body_too_large", limits);
}

TEST(RequestParser, UpgradeRequestIsAnOrdinaryMessage) {
  // needle does not tunnel: the request is forwarded without Upgrade, and pipelined bytes after
  // it are the next request, not another protocol.
  const std::string first =
      "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n";
  const std::string all = first + "GET /next HTTP/1.1\r\nHost: a\r\n\r\n";
  RequestParser parser({});
  ParseRun run = drive_whole(parser, all);
  ASSERT_EQ(run.stop, ParseStop::message_complete);
  EXPECT_EQ(run.consumed, first.size());
  parser.reset();
  run = drive_whole(parser, std::string_view(all).substr(first.size()));
  ASSERT_EQ(run.stop, ParseStop::message_complete);
  EXPECT_EQ(parser.head().target, "/next");
}

}  // namespace
}  // namespace needle::http
