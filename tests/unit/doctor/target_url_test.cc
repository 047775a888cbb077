#include "doctor/target_url.h"

#include <gtest/gtest.h>

namespace needle::doctor {
namespace {

TEST(DoctorTargetUrl, HostPortPath) {
  auto p = parse_target_url("http://127.0.0.1:3000/hello?x=1");
  ASSERT_TRUE(p.url) << p.error;
  EXPECT_EQ(p.url->host, "127.0.0.1");
  EXPECT_EQ(p.url->port, 3000);
  EXPECT_EQ(p.url->path, "/hello?x=1");
  EXPECT_EQ(p.url->host_header, "127.0.0.1:3000");
  EXPECT_EQ(p.url->authority(), "127.0.0.1:3000");
}

TEST(DoctorTargetUrl, Defaults) {
  auto p = parse_target_url("HTTP://app.internal");
  ASSERT_TRUE(p.url) << p.error;
  EXPECT_EQ(p.url->port, 80);
  EXPECT_EQ(p.url->path, "/");
  EXPECT_EQ(p.url->host_header, "app.internal");
  p = parse_target_url("localhost:8080?q");
  ASSERT_TRUE(p.url) << p.error;
  EXPECT_EQ(p.url->host, "localhost");
  EXPECT_EQ(p.url->path, "/?q");
}

TEST(DoctorTargetUrl, Ipv6) {
  auto p = parse_target_url("http://[::1]:8080/x");
  ASSERT_TRUE(p.url) << p.error;
  EXPECT_EQ(p.url->host, "::1");
  EXPECT_EQ(p.url->host_header, "[::1]:8080");
  EXPECT_FALSE(parse_target_url("http://::1:8080/").url);
}

TEST(DoctorTargetUrl, RejectsWithAReason) {
  auto p = parse_target_url("https://example.com/");
  EXPECT_FALSE(p.url);
  EXPECT_NE(p.error.find("https is not supported"), std::string::npos);
  EXPECT_FALSE(parse_target_url("ftp://x/").url);
  EXPECT_FALSE(parse_target_url("http://").url);
  EXPECT_FALSE(parse_target_url("http://h:0/").url);
  EXPECT_FALSE(parse_target_url("http://h:65536/").url);
  EXPECT_FALSE(parse_target_url("http://h:x/").url);
  EXPECT_FALSE(parse_target_url("http://h:/").url);
  EXPECT_FALSE(parse_target_url("http://u@h/").url);
  EXPECT_FALSE(parse_target_url("http://h/a b").url);
  EXPECT_FALSE(parse_target_url("http://h/a#frag").url);
}

}  // namespace
}  // namespace needle::doctor
