// Header rules and forwarding headers in the serializer (docs/config.md "Header rules",
// "Client address and X-Forwarded-*").
#include <gtest/gtest.h>

#include <string>

#include "http/header_rules.h"
#include "http/parser.h"
#include "http/serializer.h"

namespace needle::http {
namespace {

RequestHead request(std::string_view text) {
  RequestParser parser({});
  std::vector<std::string_view> body;
  const FeedResult r = parser.feed(text, body);
  EXPECT_EQ(r.stop, ParseStop::head_complete) << parser.error().cause;
  return parser.head();
}

ResponseHead response(std::string_view text) {
  ResponseParser parser({});
  std::vector<std::string_view> body;
  const FeedResult r = parser.feed(text, body);
  EXPECT_EQ(r.stop, ParseStop::head_complete) << parser.error().cause;
  return parser.head();
}

ValueTemplate value(std::string_view text) {
  std::string problem;
  auto compiled = compile_value(text, problem);
  EXPECT_TRUE(compiled) << problem;
  return compiled.value_or(ValueTemplate{});
}

HeaderRule rule(HeaderRuleOp op, std::string name, std::string_view text = {}) {
  return HeaderRule{op, std::move(name), FieldId::other, value(text)};
}

const HeaderVariables kVars{.client_addr = "203.0.113.9",
                            .request_id = "rid-7",
                            .host = "shop.test",
                            .scheme = "http",
                            .request_uri = "/a?b=1"};

std::string upstream(std::string_view text, UpstreamRequestContext ctx) {
  std::string out;
  write_upstream_request_head(request(text), ctx, BodyFraming::none, out);
  return out;
}

TEST(HeaderRules, SetAddRemoveOnTheRequestWithVariables) {
  HeaderRuleSet rules;
  rules.push(rule(HeaderRuleOp::set, "X-Env", "prod"));
  rules.push(rule(HeaderRuleOp::add, "X-Tag", "$scheme://$host$request_uri from $client_addr"));
  rules.push(rule(HeaderRuleOp::remove, "Cookie"));
  rules.push(rule(HeaderRuleOp::set, "X-Request-Id", "$request_id-x"));
  const std::string out = upstream(
      "GET /a?b=1 HTTP/1.1\r\nHost: shop.test\r\nX-Env: dev\r\ncookie: s=1\r\nX-Tag: t0\r\n\r\n",
      {.client_address = "10.0.0.2", .request_id = "rid-7", .rules = &rules, .variables = &kVars});
  EXPECT_EQ(out,
            "GET /a?b=1 HTTP/1.1\r\n"
            "Host: shop.test\r\n"
            "X-Tag: t0\r\n"
            "X-Forwarded-For: 10.0.0.2\r\n"
            "X-Forwarded-Proto: http\r\n"
            "X-Forwarded-Host: shop.test\r\n"
            "Via: 1.1 needle\r\n"
            "X-Env: prod\r\n"
            "X-Tag: http://shop.test/a?b=1 from 203.0.113.9\r\n"
            "X-Request-Id: rid-7-x\r\n"
            "\r\n");
}

TEST(HeaderRules, SetOnAForwardingHeaderReplacesNeedlesOwn) {
  HeaderRuleSet rules;
  rules.push(rule(HeaderRuleOp::set, "X-Forwarded-Proto", "https"));
  rules.push(rule(HeaderRuleOp::remove, "Via"));
  const std::string out =
      upstream("GET / HTTP/1.1\r\nHost: a\r\nVia: 1.1 cdn\r\n\r\n",
               {.client_address = "10.0.0.2", .rules = &rules, .variables = &kVars});
  EXPECT_EQ(out,
            "GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 10.0.0.2\r\n"
            "X-Forwarded-Host: a\r\nX-Forwarded-Proto: https\r\n\r\n");
}

TEST(HeaderRules, ResponseRulesAndServer) {
  HeaderRuleSet rules;
  rules.push(rule(HeaderRuleOp::set, "Cache-Control", "no-store"));
  rules.push(rule(HeaderRuleOp::add, "X-Served-By", "needle $request_id"));
  rules.push(rule(HeaderRuleOp::remove, "X-Powered-By"));
  std::string out;
  write_downstream_response_head(
      response("HTTP/1.1 200 OK\r\nServer: Express\r\nX-Powered-By: Express\r\n"
               "cache-control: public\r\nContent-Length: 2\r\n\r\n"),
      {.server = "needle", .rules = &rules, .variables = &kVars}, out);
  EXPECT_EQ(out,
            "HTTP/1.1 200 OK\r\nServer: needle\r\nContent-Length: 2\r\n"
            "Cache-Control: no-store\r\nX-Served-By: needle rid-7\r\n\r\n");
}

TEST(HeaderRules, FramingFieldsAreRefusedAndValuesCannotSplitLines) {
  for (std::string_view name : {"Content-Length", "transfer-encoding", "Connection", "Keep-Alive",
                                "Upgrade", "TE", "Trailer", "Proxy-Connection", "Host"}) {
    EXPECT_TRUE(framing_field(name)) << name;
  }
  EXPECT_FALSE(framing_field("X-Forwarded-For"));
  EXPECT_FALSE(framing_field("Content-Type"));
  std::string problem;
  EXPECT_FALSE(compile_value("a\r\nContent-Length: 0", problem));
  EXPECT_FALSE(compile_value(std::string_view("a\0b", 3), problem));
  EXPECT_FALSE(compile_value("$nope", problem));
  EXPECT_FALSE(is_field_name("X Bad"));
  EXPECT_FALSE(is_field_name("X-Bad:"));
  EXPECT_TRUE(is_field_name("X-Good"));
  EXPECT_EQ(value("$$5").pieces.size(), 1u);
}

TEST(ForwardingHeaders, UntrustedPeerHasItsForwardingHeadersReplaced) {
  const std::string text =
      "GET / HTTP/1.1\r\nHost: a.test\r\nX-Forwarded-For: 1.2.3.4\r\n"
      "X-Forwarded-Proto: https\r\nX-Forwarded-Host: evil.test\r\nForwarded: for=1.2.3.4\r\n\r\n";
  EXPECT_EQ(upstream(text, {.client_address = "10.0.0.2", .forwarded = true}),
            "GET / HTTP/1.1\r\nHost: a.test\r\nX-Forwarded-For: 10.0.0.2\r\n"
            "X-Forwarded-Proto: http\r\nX-Forwarded-Host: a.test\r\n"
            "Forwarded: for=10.0.0.2;host=\"a.test\";proto=http\r\nVia: 1.1 needle\r\n\r\n");
  EXPECT_EQ(upstream(text, {.client_address = "10.0.0.2", .peer_trusted = true, .forwarded = true}),
            "GET / HTTP/1.1\r\nHost: a.test\r\nX-Forwarded-For: 1.2.3.4, 10.0.0.2\r\n"
            "X-Forwarded-Proto: https\r\nX-Forwarded-Host: evil.test\r\n"
            "Forwarded: for=1.2.3.4, for=10.0.0.2;host=\"a.test\";proto=http\r\n"
            "Via: 1.1 needle\r\n\r\n");
}

TEST(ForwardingHeaders, ForwardedQuotesIpv6AndViaCanBeOff) {
  EXPECT_EQ(
      upstream(
          "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
          {.client_address = "2001:db8::1", .proto = "https", .via = false, .forwarded = true}),
      "GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 2001:db8::1\r\n"
      "X-Forwarded-Proto: https\r\nX-Forwarded-Host: a\r\n"
      "Forwarded: for=\"[2001:db8::1]\";host=\"a\";proto=https\r\n\r\n");
}

TEST(ReturnResponse, RedirectWithVariablesAndNoBodyForHead) {
  std::vector<std::pair<std::string, ValueTemplate>> headers;
  headers.emplace_back("Location", value("https://$host$request_uri"));
  std::string out;
  write_return_response(301, headers, "", kVars, false, false, out);
  EXPECT_EQ(out,
            "HTTP/1.1 301 Moved Permanently\r\nLocation: https://shop.test/a?b=1\r\n"
            "Content-Length: 0\r\nX-Request-Id: rid-7\r\n\r\n");
  out.clear();
  write_return_response(200, {}, "ok\n", kVars, true, true, out);
  EXPECT_EQ(out,
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 3\r\n"
            "X-Request-Id: rid-7\r\nConnection: close\r\n\r\n");
}

}  // namespace
}  // namespace needle::http
