#include "http/serializer.h"

#include <gtest/gtest.h>

#include <string>

#include "http/parser.h"
#include "parse_driver.h"

namespace needle::http {
namespace {

RequestHead request(std::string_view text) {
  RequestParser parser({});
  std::vector<std::string_view> body;
  const FeedResult r = parser.feed(text, body);
  EXPECT_EQ(r.stop, ParseStop::head_complete) << parser.error().cause;
  return parser.head();
}

ResponseHead response(std::string_view text, bool head_request = false) {
  ResponseParser parser({});
  parser.set_request_is_head(head_request);
  std::vector<std::string_view> body;
  const FeedResult r = parser.feed(text, body);
  EXPECT_EQ(r.stop, ParseStop::head_complete) << parser.error().cause;
  return parser.head();
}

std::string upstream(const RequestHead& head, BodyFraming framing = BodyFraming::none,
                     UpstreamRequestContext ctx = {"10.0.0.2", "http", "rid-1", ""}) {
  std::string out;
  write_upstream_request_head(head, ctx, framing, out);
  return out;
}

std::string downstream(const ResponseHead& head, DownstreamResponseContext ctx,
                       BodyFraming* framing = nullptr) {
  std::string out;
  const BodyFraming f = write_downstream_response_head(head, ctx, out);
  if (framing != nullptr) *framing = f;
  return out;
}

// --- upstream request head --------------------------------------------------------------------

TEST(SerializerUpstream, MinimalGet) {
  EXPECT_EQ(upstream(request("GET /p?q=1 HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n\r\n")),
            "GET /p?q=1 HTTP/1.1\r\n"
            "Host: example.com\r\n"
            "Accept: */*\r\n"
            "X-Forwarded-For: 10.0.0.2\r\n"
            "X-Forwarded-Proto: http\r\n"
            "X-Forwarded-Host: example.com\r\n"
            "Via: 1.1 needle\r\n"
            "X-Request-Id: rid-1\r\n"
            "\r\n");
}

TEST(SerializerUpstream, RemovesHopByHopAndConnectionListedFields) {
  const RequestHead head = request(
      "GET / HTTP/1.1\r\n"
      "Host: a\r\n"
      "Connection: keep-alive, X-Hop, x-other\r\n"
      "Keep-Alive: timeout=5\r\n"
      "X-Hop: secret\r\n"
      "X-Other: 1\r\n"
      "TE: trailers\r\n"
      "Trailer: X-T\r\n"
      "Upgrade: h2c\r\n"
      "Proxy-Connection: keep-alive\r\n"
      "Expect: 100-continue\r\n"
      "X-Kept: yes\r\n"
      "\r\n");
  EXPECT_EQ(upstream(head),
            "GET / HTTP/1.1\r\n"
            "Host: a\r\n"
            "X-Kept: yes\r\n"
            "X-Forwarded-For: 10.0.0.2\r\n"
            "X-Forwarded-Proto: http\r\n"
            "X-Forwarded-Host: a\r\n"
            "Via: 1.1 needle\r\n"
            "X-Request-Id: rid-1\r\n"
            "\r\n");
}

TEST(SerializerUpstream, ConnectionCannotStripForwardingFields) {
  const RequestHead head = request(
      "GET / HTTP/1.1\r\nHost: a\r\nConnection: X-Forwarded-For, Host, Via\r\n"
      "X-Forwarded-For: 198.51.100.7\r\n\r\n");
  // A trusted peer's chain (server.trusted_proxies) is extended; Connection cannot strip it.
  EXPECT_EQ(upstream(head, BodyFraming::none,
                     {.client_address = "10.0.0.2", .request_id = "rid-1", .peer_trusted = true}),
            "GET / HTTP/1.1\r\n"
            "Host: a\r\n"
            "X-Forwarded-For: 198.51.100.7, 10.0.0.2\r\n"
            "X-Forwarded-Proto: http\r\n"
            "X-Forwarded-Host: a\r\n"
            "Via: 1.1 needle\r\n"
            "X-Request-Id: rid-1\r\n"
            "\r\n");
}

TEST(SerializerUpstream, AbsoluteFormBecomesOriginForm) {
  EXPECT_TRUE(upstream(request("GET http://a.example:8080/x/y?z=1 HTTP/1.1\r\n"
                               "Host: a.example:8080\r\n\r\n"))
                  .starts_with("GET /x/y?z=1 HTTP/1.1\r\nHost: a.example:8080\r\n"));
  EXPECT_TRUE(upstream(request("GET http://a.example HTTP/1.1\r\nHost: a.example\r\n\r\n"))
                  .starts_with("GET / HTTP/1.1\r\nHost: a.example\r\n"));
  EXPECT_TRUE(upstream(request("GET https://a.example?q HTTP/1.1\r\nHost: a.example\r\n\r\n"))
                  .starts_with("GET /?q HTTP/1.1\r\nHost: a.example\r\n"));
  // HTTP/1.0 with absolute-form and no Host: the authority becomes the Host.
  EXPECT_EQ(upstream(request("GET http://b.example/ HTTP/1.0\r\n\r\n")),
            "GET / HTTP/1.1\r\n"
            "Host: b.example\r\n"
            "X-Forwarded-For: 10.0.0.2\r\n"
            "X-Forwarded-Proto: http\r\n"
            "X-Forwarded-Host: b.example\r\n"
            "Via: 1.0 needle\r\n"
            "X-Request-Id: rid-1\r\n"
            "\r\n");
}

TEST(SerializerUpstream, AsteriskFormKept) {
  EXPECT_TRUE(upstream(request("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n"))
                  .starts_with("OPTIONS * HTTP/1.1\r\n"));
}

// The session's normalized target (Router::route) replaces the received one, in either form.
TEST(SerializerUpstream, NormalizedTargetReplacesTheReceivedOne) {
  const UpstreamRequestContext ctx{"10.0.0.2", "http", "rid-1", "/admin?q=%2f"};
  EXPECT_TRUE(upstream(request("GET /public/../admin?q=%2f HTTP/1.1\r\nHost: a\r\n\r\n"),
                       BodyFraming::none, ctx)
                  .starts_with("GET /admin?q=%2f HTTP/1.1\r\nHost: a\r\n"));
  EXPECT_TRUE(upstream(request("GET http://a/public/../admin?q=%2f HTTP/1.1\r\nHost: a\r\n\r\n"),
                       BodyFraming::none, ctx)
                  .starts_with("GET /admin?q=%2f HTTP/1.1\r\nHost: a\r\n"));
}

TEST(SerializerUpstream, AppendsToExistingForwardingChains) {
  const RequestHead head = request(
      "GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 1.1.1.1, 2.2.2.2\r\n"
      "Via: 1.1 cdn\r\nX-Forwarded-For: 3.3.3.3\r\n"
      "X-Request-Id: from-client\r\n\r\n");
  EXPECT_EQ(upstream(head, BodyFraming::none,
                     {.client_address = "10.0.0.2",
                      .proto = "https",
                      .request_id = "rid-1",
                      .peer_trusted = true}),
            "GET / HTTP/1.1\r\n"
            "Host: a\r\n"
            "X-Forwarded-For: 1.1.1.1, 2.2.2.2, 3.3.3.3, 10.0.0.2\r\n"
            "X-Forwarded-Proto: https\r\n"
            "X-Forwarded-Host: a\r\n"
            "Via: 1.1 cdn, 1.1 needle\r\n"
            "X-Request-Id: rid-1\r\n"  // the session's choice wins: it is what the log shows
            "\r\n");
}

TEST(SerializerUpstream, ClientRequestIdKeptWhenTheSessionGivesNone) {
  const std::string out =
      upstream(request("GET / HTTP/1.1\r\nHost: a\r\nX-Request-Id: from-client\r\n\r\n"),
               BodyFraming::none, {"10.0.0.2", "http", "", ""});
  EXPECT_NE(out.find("X-Request-Id: from-client\r\n"), std::string::npos);
}

TEST(SerializerUpstream, NoRequestIdWhenNoneGivenOrPresent) {
  const std::string out = upstream(request("GET / HTTP/1.1\r\nHost: a\r\n\r\n"), BodyFraming::none,
                                   {"10.0.0.2", "http", "", ""});
  EXPECT_EQ(out.find("X-Request-Id"), std::string::npos);
}

TEST(SerializerUpstream, FramingIsRewritten) {
  const RequestHead cl = request("POST /u HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\n");
  EXPECT_EQ(upstream(cl, BodyFraming::content_length),
            "POST /u HTTP/1.1\r\n"
            "Host: a\r\n"
            "X-Forwarded-For: 10.0.0.2\r\n"
            "X-Forwarded-Proto: http\r\n"
            "X-Forwarded-Host: a\r\n"
            "Via: 1.1 needle\r\n"
            "X-Request-Id: rid-1\r\n"
            "Content-Length: 11\r\n"
            "\r\n");
  const RequestHead chunked =
      request("POST /u HTTP/1.1\r\nTransfer-Encoding: chunked\r\nHost: a\r\n\r\n");
  EXPECT_EQ(upstream(chunked, BodyFraming::chunked),
            "POST /u HTTP/1.1\r\n"
            "Host: a\r\n"
            "X-Forwarded-For: 10.0.0.2\r\n"
            "X-Forwarded-Proto: http\r\n"
            "X-Forwarded-Host: a\r\n"
            "Via: 1.1 needle\r\n"
            "X-Request-Id: rid-1\r\n"
            "Transfer-Encoding: chunked\r\n"
            "\r\n");
  // needle buffered a chunked body and sends it with a length instead.
  RequestHead buffered = chunked;
  buffered.content_length = 5;
  const std::string out = upstream(buffered, BodyFraming::content_length);
  EXPECT_NE(out.find("Content-Length: 5\r\n"), std::string::npos);
  EXPECT_EQ(out.find("Transfer-Encoding"), std::string::npos);
}

TEST(SerializerUpstream, OutputParsesBackToTheSameRequest) {
  const RequestHead head = request(
      "PUT http://h.example/r HTTP/1.1\r\nHost: h.example\r\nContent-Length: 3\r\n"
      "Connection: close, X-A\r\nX-A: 1\r\nX-B: 2\r\n\r\n");
  const std::string wire = upstream(head, BodyFraming::content_length) + "abc";
  RequestParser parser({});
  test_support::ParseRun run = test_support::drive_whole(parser, wire);
  ASSERT_EQ(run.stop, ParseStop::message_complete) << parser.error().cause;
  EXPECT_EQ(run.body, "abc");
  EXPECT_EQ(parser.head().target, "/r");
  EXPECT_EQ(parser.head().host, "h.example");
  EXPECT_TRUE(parser.head().keep_alive);  // Connection: close is the client's, not upstream's
  EXPECT_EQ(parser.head().headers.find("X-A"), nullptr);
  EXPECT_EQ(*parser.head().headers.find("X-B"), "2");
}

// --- downstream response head -----------------------------------------------------------------

TEST(SerializerDownstream, ContentLengthPassesThrough) {
  BodyFraming framing;
  EXPECT_EQ(downstream(response("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                                "Content-Length: 5\r\nKeep-Alive: timeout=3\r\n\r\n"),
                       {}, &framing),
            "HTTP/1.1 200 OK\r\n"
            "Content-Type: text/plain\r\n"
            "Content-Length: 5\r\n"
            "\r\n");
  EXPECT_EQ(framing, BodyFraming::content_length);
}

TEST(SerializerDownstream, ChunkedAndUntilCloseBecomeChunkedForHttp11) {
  BodyFraming framing;
  EXPECT_EQ(downstream(response("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
                                "Trailer: X-T\r\nX-A: 1\r\n\r\n"),
                       {}, &framing),
            "HTTP/1.1 200 OK\r\n"
            "X-A: 1\r\n"
            "Transfer-Encoding: chunked\r\n"
            "\r\n");
  EXPECT_EQ(framing, BodyFraming::chunked);
  EXPECT_EQ(downstream(response("HTTP/1.0 200 OK\r\nX-A: 1\r\n\r\n"), {}, &framing),
            "HTTP/1.1 200 OK\r\n"
            "X-A: 1\r\n"
            "Transfer-Encoding: chunked\r\n"
            "\r\n");
  EXPECT_EQ(framing, BodyFraming::chunked);
}

TEST(SerializerDownstream, Http10ClientGetsUntilCloseInsteadOfChunked) {
  BodyFraming framing;
  DownstreamResponseContext ctx;
  ctx.client_version_minor = 0;
  ctx.keep_alive = true;  // wanted, but a close-delimited body rules it out
  EXPECT_EQ(
      downstream(response("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"), ctx, &framing),
      "HTTP/1.1 200 OK\r\n"
      "Connection: close\r\n"
      "\r\n");
  EXPECT_EQ(framing, BodyFraming::until_close);
}

TEST(SerializerDownstream, Http10ClientKeptAlive) {
  DownstreamResponseContext ctx;
  ctx.client_version_minor = 0;
  ctx.keep_alive_timeout = Millis(75000);
  EXPECT_EQ(downstream(response("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n"), ctx),
            "HTTP/1.1 200 OK\r\n"
            "Content-Length: 2\r\n"
            "Connection: keep-alive\r\n"
            "Keep-Alive: timeout=75\r\n"
            "\r\n");
}

TEST(SerializerDownstream, KeepAliveTimeoutAnnouncedOnlyWhenKeeping) {
  DownstreamResponseContext ctx;
  ctx.keep_alive_timeout = Millis(5500);
  EXPECT_EQ(downstream(response("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"), ctx),
            "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nKeep-Alive: timeout=5\r\n\r\n");
  ctx.keep_alive = false;
  EXPECT_EQ(downstream(response("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"), ctx),
            "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
}

TEST(SerializerDownstream, RemovesHopByHopAndConnectionListedFields) {
  const ResponseHead head = response(
      "HTTP/1.1 200 OK\r\n"
      "Connection: keep-alive, X-Internal\r\n"
      "Keep-Alive: timeout=5, max=100\r\n"
      "X-Internal: debug\r\n"
      "Upgrade: h2\r\n"
      "Proxy-Connection: close\r\n"
      "Set-Cookie: a=1\r\n"
      "Set-Cookie: b=2\r\n"
      "Content-Length: 0\r\n"
      "\r\n");
  EXPECT_EQ(downstream(head, {}),
            "HTTP/1.1 200 OK\r\n"
            "Set-Cookie: a=1\r\n"
            "Set-Cookie: b=2\r\n"
            "Content-Length: 0\r\n"
            "\r\n");
}

TEST(SerializerDownstream, HeadResponseKeepsContentLengthVerbatim) {
  BodyFraming framing;
  DownstreamResponseContext ctx;
  ctx.request_is_head = true;
  EXPECT_EQ(
      downstream(response("HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n", true), ctx, &framing),
      "HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n");
  EXPECT_EQ(framing, BodyFraming::none);
  // A HEAD answered with chunked framing: no body and no chunked announcement.
  EXPECT_EQ(downstream(response("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", true), ctx,
                       &framing),
            "HTTP/1.1 200 OK\r\n\r\n");
  EXPECT_EQ(framing, BodyFraming::none);
}

TEST(SerializerDownstream, NoBodyStatuses) {
  BodyFraming framing;
  EXPECT_EQ(downstream(response("HTTP/1.1 304 Not Modified\r\nETag: \"e\"\r\n"
                                "Content-Length: 77\r\n\r\n"),
                       {}, &framing),
            "HTTP/1.1 304 Not Modified\r\nETag: \"e\"\r\nContent-Length: 77\r\n\r\n");
  EXPECT_EQ(framing, BodyFraming::none);
  EXPECT_EQ(downstream(response("HTTP/1.1 204 No Content\r\n\r\n"), {}, &framing),
            "HTTP/1.1 204 No Content\r\n\r\n");
  EXPECT_EQ(framing, BodyFraming::none);
  DownstreamResponseContext closing;
  closing.keep_alive = false;
  EXPECT_EQ(downstream(response("HTTP/1.1 204 No Content\r\n\r\n"), closing),
            "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n");
}

TEST(SerializerDownstream, InterimResponse) {
  DownstreamResponseContext ctx;
  ctx.keep_alive = false;  // the decision is for the final response, never on a 1xx
  EXPECT_EQ(downstream(response("HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"), ctx),
            "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n");
}

TEST(SerializerDownstream, ReasonFallsBackToStandardPhrase) {
  EXPECT_EQ(downstream(response("HTTP/1.1 404 \r\nContent-Length: 0\r\n\r\n"), {}),
            "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
  EXPECT_EQ(downstream(response("HTTP/1.1 200 Fine\r\nContent-Length: 0\r\n\r\n"), {}),
            "HTTP/1.1 200 Fine\r\nContent-Length: 0\r\n\r\n");
}

// --- chunks, local responses, reasons ---------------------------------------------------------

TEST(SerializerChunks, ChunkHeaderIsHex) {
  std::string out;
  write_chunk_header(0, out);
  write_chunk_header(10, out);
  write_chunk_header(255, out);
  write_chunk_header(65536, out);
  EXPECT_EQ(out, "0\r\na\r\nff\r\n10000\r\n");
  EXPECT_EQ(kLastChunk, "0\r\n\r\n");
  EXPECT_EQ(kContinue100, "HTTP/1.1 100 Continue\r\n\r\n");
}

TEST(SerializerLocal, ErrorResponse) {
  std::string out;
  write_local_response(502, "upstream closed", true, "rid-9", out);
  EXPECT_EQ(out,
            "HTTP/1.1 502 Bad Gateway\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n"
            "Content-Length: 33\r\n"
            "X-Request-Id: rid-9\r\n"
            "Connection: close\r\n"
            "\r\n"
            "502 Bad Gateway: upstream closed\n");
  EXPECT_EQ(std::string_view("502 Bad Gateway: upstream closed\n").size(), 33u);
}

TEST(SerializerLocal, KeepAliveWithoutIdOrDetail) {
  std::string out = "prefix|";
  write_local_response(404, "", false, "", out);
  EXPECT_EQ(out,
            "prefix|HTTP/1.1 404 Not Found\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n"
            "Content-Length: 14\r\n"
            "\r\n"
            "404 Not Found\n");
}

// Found by fuzz_session: a 502 to a HEAD carried its text body, which a client reading a HEAD
// response (no body, RFC 9110 9.3.2) takes for the start of the next response.
TEST(SerializerLocal, AnswerToHeadEndsAfterTheHead) {
  std::string out;
  write_local_response(502, "upstream closed", false, "rid-9", out, /*head_request=*/true);
  EXPECT_EQ(out,
            "HTTP/1.1 502 Bad Gateway\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n"
            "Content-Length: 33\r\n"
            "X-Request-Id: rid-9\r\n"
            "\r\n");
  ResponseParser parser({});
  parser.set_request_is_head(true);
  test_support::ParseRun run = test_support::drive_whole(parser, out);
  ASSERT_EQ(run.stop, ParseStop::message_complete);
  EXPECT_EQ(run.consumed, out.size());
  EXPECT_EQ(parser.head().status, 502);
  EXPECT_TRUE(parser.head().keep_alive);
}

TEST(SerializerLocal, ParsesAsAResponse) {
  std::string out;
  write_local_response(431, "header section too large", true, "x", out);
  ResponseParser parser({});
  test_support::ParseRun run = test_support::drive_whole(parser, out);
  ASSERT_EQ(run.stop, ParseStop::message_complete);
  EXPECT_EQ(parser.head().status, 431);
  EXPECT_FALSE(parser.head().keep_alive);
  EXPECT_EQ(run.body, "431 Request Header Fields Too Large: header section too large\n");
}

TEST(SerializerReason, CommonStatuses) {
  EXPECT_EQ(reason_phrase(100), "Continue");
  EXPECT_EQ(reason_phrase(200), "OK");
  EXPECT_EQ(reason_phrase(204), "No Content");
  EXPECT_EQ(reason_phrase(301), "Moved Permanently");
  EXPECT_EQ(reason_phrase(304), "Not Modified");
  EXPECT_EQ(reason_phrase(400), "Bad Request");
  EXPECT_EQ(reason_phrase(408), "Request Timeout");
  EXPECT_EQ(reason_phrase(413), "Content Too Large");
  EXPECT_EQ(reason_phrase(414), "URI Too Long");
  EXPECT_EQ(reason_phrase(417), "Expectation Failed");
  EXPECT_EQ(reason_phrase(429), "Too Many Requests");
  EXPECT_EQ(reason_phrase(431), "Request Header Fields Too Large");
  EXPECT_EQ(reason_phrase(501), "Not Implemented");
  EXPECT_EQ(reason_phrase(502), "Bad Gateway");
  EXPECT_EQ(reason_phrase(503), "Service Unavailable");
  EXPECT_EQ(reason_phrase(504), "Gateway Timeout");
  EXPECT_EQ(reason_phrase(505), "HTTP Version Not Supported");
  EXPECT_EQ(reason_phrase(599), "");
}

TEST(SerializerHopByHop, Names) {
  for (std::string_view n : {"Connection", "keep-alive", "PROXY-CONNECTION", "TE", "Trailer",
                             "Transfer-Encoding", "upgrade"}) {
    EXPECT_TRUE(is_hop_by_hop(n)) << n;
  }
  for (std::string_view n : {"Content-Length", "Host", "Via", "Trailers", "Connections", "T"}) {
    EXPECT_FALSE(is_hop_by_hop(n)) << n;
  }
}

}  // namespace
}  // namespace needle::http
