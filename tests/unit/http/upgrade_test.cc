// Which Upgrade offers are forwarded (RFC 9110 7.8), the heads that carry them, and the
// response parser's 101 rules.
#include "http/upgrade.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "http/parser.h"
#include "http/serializer.h"

namespace needle::http {
namespace {

const std::vector<std::string> kWebSocket = {"websocket"};

RequestHead request(std::string_view text) {
  RequestParser parser({});
  std::vector<std::string_view> body;
  const FeedResult r = parser.feed(text, body);
  EXPECT_EQ(r.stop, ParseStop::head_complete) << parser.error().cause;
  return parser.head();
}

UpgradeOffer decide(std::string_view fields, const std::vector<std::string>& allowed = kWebSocket,
                    std::string_view start = "GET /ws HTTP/1.1") {
  return decide_upgrade(request(std::string(start) + "\r\nHost: a\r\n" + std::string(fields) +
                                "\r\n"),
                        allowed);
}

TEST(DecideUpgrade, AWebSocketHandshakeIsTunnelled) {
  const UpgradeOffer offer = decide("Connection: keep-alive, Upgrade\r\nUpgrade: WebSocket\r\n");
  EXPECT_EQ(offer.decision, UpgradeDecision::tunnel);
  EXPECT_EQ(offer.protocols, "WebSocket");
}

TEST(DecideUpgrade, NoUpgradeFieldIsNone) {
  EXPECT_EQ(decide("Connection: upgrade\r\n").decision, UpgradeDecision::none);
}

TEST(DecideUpgrade, OnlyAllowedProtocolsAreOffered) {
  const UpgradeOffer offer = decide(
      "Connection: Upgrade\r\nUpgrade: h2c, foo/2, websocket, bar\r\n", {"websocket", "foo"});
  EXPECT_EQ(offer.decision, UpgradeDecision::tunnel);
  EXPECT_EQ(offer.protocols, "foo/2, websocket");  // a name without version allows every version
  EXPECT_EQ(decide("Connection: Upgrade\r\nUpgrade: foo/2\r\n", {"foo/1"}).decision,
            UpgradeDecision::removed);
}

TEST(DecideUpgrade, H2cIsNeverOffered) {
  EXPECT_EQ(decide("Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n", {"h2c"}).decision,
            UpgradeDecision::removed);
}

TEST(DecideUpgrade, RemovedWhenTheRequestCannotSwitch) {
  EXPECT_EQ(decide("Upgrade: websocket\r\n").decision, UpgradeDecision::removed);  // no option
  EXPECT_EQ(decide("Connection: Upgrade\r\nUpgrade: websocket\r\n", kWebSocket,
                   "GET /ws HTTP/1.0")
                .decision,
            UpgradeDecision::removed);
  EXPECT_EQ(decide("Connection: Upgrade\r\nUpgrade: websocket\r\nContent-Length: 3\r\n",
                   kWebSocket, "POST /ws HTTP/1.1")
                .decision,
            UpgradeDecision::removed);
  EXPECT_EQ(decide("Connection: Upgrade\r\nUpgrade: websocket\r\n", {}).decision,
            UpgradeDecision::removed);
}

TEST(UpgradeHeads, TheOfferGoesUpstreamInNeedlesOwnConnectionField) {
  const RequestHead head = request(
      "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, X-Hop\r\nX-Hop: 1\r\n"
      "Upgrade: h2c, websocket\r\nSec-WebSocket-Key: k\r\n\r\n");
  const UpgradeOffer offer = decide_upgrade(head, kWebSocket);
  std::string out;
  write_upstream_request_head(head, {.client_address = "10.0.0.2",
                                     .proto = "http",
                                     .request_id = "rid",
                                     .upgrade = offer.protocols},
                              BodyFraming::none, out);
  EXPECT_EQ(out,
            "GET /ws HTTP/1.1\r\nHost: a\r\nSec-WebSocket-Key: k\r\nX-Forwarded-For: 10.0.0.2\r\n"
            "X-Forwarded-Proto: http\r\nX-Forwarded-Host: a\r\nVia: 1.1 needle\r\n"
            "X-Request-Id: rid\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n");
}

ResponseHead parse_101(std::string_view text, bool upgrade_requested, ParseStop* stop,
                       std::string* cause = nullptr, size_t* consumed = nullptr) {
  ResponseParser parser({});
  parser.set_upgrade_requested(upgrade_requested);
  std::vector<std::string_view> body;
  const FeedResult r = parser.feed(text, body);
  *stop = r.stop;
  if (cause) *cause = parser.error().cause;
  if (consumed) *consumed = r.consumed;
  return parser.head();
}

TEST(UpgradeResponse, A101IsAcceptedOnlyAfterAnOffer) {
  const std::string head =
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
  ParseStop stop;
  size_t consumed = 0;
  const ResponseHead ok = parse_101(head + "\x81\x05hello", true, &stop, nullptr, &consumed);
  EXPECT_EQ(stop, ParseStop::head_complete);
  EXPECT_EQ(consumed, head.size());  // the frame behind the head is the tunnel's
  EXPECT_TRUE(switches_to_offered(ok, "websocket"));
  EXPECT_FALSE(switches_to_offered(ok, "foo"));
  std::string out;
  write_switching_response_head(ok, out);
  EXPECT_EQ(out,
            "HTTP/1.1 101 Switching Protocols\r\n"
            "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
            "Connection: upgrade\r\nUpgrade: websocket\r\n\r\n");

  std::string cause;
  parse_101(head, false, &stop, &cause);
  EXPECT_EQ(stop, ParseStop::error);
  EXPECT_EQ(cause, "unexpected_switching_protocols");
  parse_101("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n\r\n", true, &stop,
            &cause);
  EXPECT_EQ(stop, ParseStop::error);
  EXPECT_EQ(cause, "switching_protocols_without_upgrade");
}

TEST(UpgradeResponse, ConnectIsNotAllowed) {
  RequestParser parser({});
  std::vector<std::string_view> body;
  EXPECT_EQ(parser.feed("CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n", body).stop,
            ParseStop::error);
  EXPECT_EQ(parser.error().status, 405);
  EXPECT_EQ(parser.error().cause, "connect_not_supported");
}

TEST(ProtocolName, TokensWithAnOptionalVersion) {
  EXPECT_TRUE(is_protocol_name("websocket"));
  EXPECT_TRUE(is_protocol_name("HTTP/2.0"));
  EXPECT_FALSE(is_protocol_name(""));
  EXPECT_FALSE(is_protocol_name("web socket"));
  EXPECT_FALSE(is_protocol_name("a/"));
  EXPECT_TRUE(is_h2c("H2C"));
  EXPECT_FALSE(is_h2c("h2"));
}

}  // namespace
}  // namespace needle::http
