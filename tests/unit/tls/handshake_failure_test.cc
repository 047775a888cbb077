#include "tls/handshake_failure.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

#include "memory_handshake.h"
#include "tls_test_util.h"

namespace needle::tls {
namespace {

using testing::handshake_on_bytes;
using testing::make_server;
using testing::three_certificate_settings;

TEST(HandshakeFailureName, EveryReasonHasItsOwnStableName) {
  std::set<std::string_view> names;
  for (int i = 0; i <= static_cast<int>(kLastHandshakeFailure); ++i) {
    names.insert(handshake_failure_name(static_cast<HandshakeFailure>(i)));
  }
  EXPECT_EQ(names.size(), static_cast<size_t>(kLastHandshakeFailure) + 1);
  EXPECT_EQ(handshake_failure_name(HandshakeFailure::plain_http_on_tls_port),
            "plain_http_on_tls_port");
  EXPECT_EQ(handshake_failure_name(HandshakeFailure::no_shared_cipher), "no_shared_cipher");
}

TEST(LooksLikePlainHttp, RequestLinesAreRecognisedAndTlsRecordsAreNot) {
  EXPECT_TRUE(looks_like_plain_http("GET / HTTP/1.1\r\n"));
  EXPECT_TRUE(looks_like_plain_http("OPTIONS * HTTP/1.1\r\n"));
  EXPECT_TRUE(looks_like_plain_http("M-SEARCH * HTTP/1.1\r\n"));
  EXPECT_FALSE(looks_like_plain_http(std::string("\x16\x03\x01\x02\x00", 5)));
  EXPECT_FALSE(looks_like_plain_http("GET"));  // not yet a request line
  EXPECT_FALSE(looks_like_plain_http(" GET / HTTP/1.1"));
  EXPECT_FALSE(looks_like_plain_http("get / HTTP/1.1"));
  EXPECT_FALSE(looks_like_plain_http(""));
}

// nginx's 497 case: a plain HTTP request on the TLS port. OpenSSL itself names GET/POST/HEAD/
// PUT; other methods are caught from the first bytes the server peeked.
TEST(ClassifyHandshakeFailure, PlainHttpOnTheTlsPort) {
  auto server = make_server(three_certificate_settings());
  ASSERT_TRUE(server);
  const std::string get = "GET / HTTP/1.1\r\nHost: api.example.com\r\n\r\n";
  EXPECT_EQ(handshake_on_bytes(server->new_ssl(), get, get),
            HandshakeFailure::plain_http_on_tls_port);
  EXPECT_EQ(handshake_on_bytes(server->new_ssl(), get, ""),  // from OpenSSL's own reason
            HandshakeFailure::plain_http_on_tls_port);
  const std::string options = "OPTIONS * HTTP/1.1\r\nHost: api.example.com\r\n\r\n";
  EXPECT_EQ(handshake_on_bytes(server->new_ssl(), options, options),
            HandshakeFailure::plain_http_on_tls_port);
  const std::string garbage = "\x01\x02\x03\x04\x05\x06\x07\x08";
  EXPECT_EQ(handshake_on_bytes(server->new_ssl(), garbage, garbage), HandshakeFailure::other);
}

}  // namespace
}  // namespace needle::tls
