#include <gtest/gtest.h>

#include "config/config.h"
#include "config/value_text.h"

namespace needle::config {
namespace {

TEST(ConfigHostPort, ParsesIpv4HostNamesAndBracketedIpv6) {
  auto v4 = parse_host_port("127.0.0.1:8080");
  ASSERT_TRUE(v4);
  EXPECT_EQ(v4->host, "127.0.0.1");
  EXPECT_EQ(v4->port, 8080);

  auto v6 = parse_host_port("[::1]:8080");
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->host, "::1");  // brackets are syntax, not part of the address
  EXPECT_EQ(v6->port, 8080);

  auto name = parse_host_port("localhost:3000");
  ASSERT_TRUE(name);
  EXPECT_EQ(name->host, "localhost");
  EXPECT_EQ(name->port, 3000);

  auto dotted = parse_host_port("app.internal:80");
  ASSERT_TRUE(dotted);
  EXPECT_EQ(dotted->host, "app.internal");

  EXPECT_TRUE(parse_host_port("[2001:db8::42]:443"));
  EXPECT_TRUE(parse_host_port("my_service-1:1"));
  EXPECT_TRUE(parse_host_port("0.0.0.0:65535"));
}

TEST(ConfigHostPort, RejectsBadPorts) {
  EXPECT_FALSE(parse_host_port("127.0.0.1:0"));
  EXPECT_FALSE(parse_host_port("127.0.0.1:65536"));
  EXPECT_FALSE(parse_host_port("127.0.0.1:99999999999999999999"));
  EXPECT_FALSE(parse_host_port("127.0.0.1:-1"));
  EXPECT_FALSE(parse_host_port("127.0.0.1:+80"));
  EXPECT_FALSE(parse_host_port("127.0.0.1:80x"));
  EXPECT_FALSE(parse_host_port("127.0.0.1:"));
  EXPECT_FALSE(parse_host_port("127.0.0.1"));
  EXPECT_FALSE(parse_host_port("[::1]"));
  EXPECT_FALSE(parse_host_port("[::1]8080"));
}

TEST(ConfigHostPort, RejectsBadHosts) {
  EXPECT_FALSE(parse_host_port(""));
  EXPECT_FALSE(parse_host_port(":8080"));
  EXPECT_FALSE(parse_host_port("::1:8080"));  // IPv6 without brackets is ambiguous
  EXPECT_FALSE(parse_host_port("[::1:8080"));
  EXPECT_FALSE(parse_host_port("[not-ipv6]:80"));
  EXPECT_FALSE(parse_host_port("256.1.1.1:80"));
  EXPECT_FALSE(parse_host_port("http://127.0.0.1:3000"));
  EXPECT_FALSE(parse_host_port("host name:80"));
  EXPECT_FALSE(parse_host_port("-bad.example:80"));
  EXPECT_FALSE(parse_host_port("a..b:80"));
}

TEST(ConfigHostPort, ExplainsWhatIsWrong) {
  EXPECT_EQ(parse_host_port_explained("127.0.0.1:70000").problem, "port 70000 is above 65535");
  EXPECT_EQ(parse_host_port_explained("127.0.0.1:0").problem, "port 0 is not allowed (1-65535)");
  EXPECT_EQ(parse_host_port_explained("::1:80").problem,
            "\"::1:80\": an IPv6 address needs brackets, e.g. \"[::1]:8080\"");
  EXPECT_EQ(parse_host_port_explained("http://app:3000").problem,
            "\"http://app:3000\" has a URL scheme; write only host:port, e.g. \"app:3000\"");
  EXPECT_EQ(parse_host_port_explained(":8080").problem,
            "\":8080\" has no host; to listen on all interfaces write \"0.0.0.0:8080\"");
  EXPECT_TRUE(parse_host_port_explained("localhost:1").problem.empty());
}

TEST(ConfigHostPort, ToStringRoundTrips) {
  EXPECT_EQ((HostPort{"127.0.0.1", 8080}).to_string(), "127.0.0.1:8080");
  EXPECT_EQ((HostPort{"::1", 8080}).to_string(), "[::1]:8080");
  EXPECT_EQ((HostPort{"localhost", 3000}).to_string(), "localhost:3000");
  for (const char* text : {"127.0.0.1:8080", "[::1]:9901", "[2001:db8::1]:1", "app.internal:80"}) {
    auto parsed = parse_host_port(text);
    ASSERT_TRUE(parsed) << text;
    EXPECT_EQ(parsed->to_string(), text);
  }
}

TEST(ConfigSize, ParsesBytesAndBinaryUnits) {
  EXPECT_EQ(parse_size("0"), 0u);
  EXPECT_EQ(parse_size("65536"), 65536u);
  EXPECT_EQ(parse_size("512B"), 512u);
  EXPECT_EQ(parse_size("64KiB"), 64u * 1024);
  EXPECT_EQ(parse_size("64 KiB"), 64u * 1024);
  EXPECT_EQ(parse_size("1MiB"), 1u << 20);
  EXPECT_EQ(parse_size("1GiB"), 1ull << 30);
  EXPECT_EQ(parse_size("2TiB"), 2ull << 40);
}

TEST(ConfigSize, RejectsAmbiguousOrBrokenSizes) {
  EXPECT_FALSE(parse_size(""));
  EXPECT_FALSE(parse_size("KiB"));
  EXPECT_FALSE(parse_size("64KB"));  // decimal or binary? not guessed
  EXPECT_FALSE(parse_size("64k"));
  EXPECT_FALSE(parse_size("1.5MiB"));
  EXPECT_FALSE(parse_size("-1"));
  EXPECT_FALSE(parse_size("64  KiB"));
  EXPECT_FALSE(parse_size("64 "));
  EXPECT_FALSE(parse_size("99999999999999999999"));
  EXPECT_FALSE(parse_size("17179869184GiB"));  // overflows 64 bits
}

TEST(ConfigClosestMatch, SuggestsOnlyNearMisses) {
  const std::vector<std::string> keys = {"connect_timeout", "response_timeout", "hosts"};
  EXPECT_EQ(closest_match("conect_timeout", keys), "connect_timeout");
  EXPECT_EQ(closest_match("connect-timeout", keys), "connect_timeout");
  EXPECT_EQ(closest_match("Hosts", keys), "hosts");
  EXPECT_EQ(closest_match("host", keys), "hosts");
  EXPECT_FALSE(closest_match("weight", keys));
  EXPECT_FALSE(closest_match("x", keys));
}

}  // namespace
}  // namespace needle::config
