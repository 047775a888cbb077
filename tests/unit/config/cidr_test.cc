#include "config/cidr.h"

#include <gtest/gtest.h>

namespace needle::config {
namespace {

CidrSet set_of(std::initializer_list<std::string_view> ranges) {
  CidrSet set;
  for (std::string_view text : ranges) {
    std::string problem;
    const auto cidr = parse_cidr(text, problem);
    EXPECT_TRUE(cidr) << text << ": " << problem;
    if (cidr) set.add(*cidr);
  }
  return set;
}

TEST(Cidr, Ipv4Ranges) {
  const CidrSet set = set_of({"10.0.0.0/8", "192.168.1.7", "172.16.0.0/12"});
  EXPECT_TRUE(set.contains("10.1.2.3"));
  EXPECT_TRUE(set.contains("10.255.255.255"));
  EXPECT_FALSE(set.contains("11.0.0.1"));
  EXPECT_TRUE(set.contains("192.168.1.7"));
  EXPECT_FALSE(set.contains("192.168.1.8"));
  EXPECT_TRUE(set.contains("172.31.255.1"));
  EXPECT_FALSE(set.contains("172.32.0.1"));
}

TEST(Cidr, Ipv6Ranges) {
  const CidrSet set = set_of({"::1/128", "2001:db8::/32", "fd00::/9"});
  EXPECT_TRUE(set.contains("::1"));
  EXPECT_TRUE(set.contains("[::1]"));
  EXPECT_FALSE(set.contains("::2"));
  EXPECT_TRUE(set.contains("2001:db8:ffff::1"));
  EXPECT_FALSE(set.contains("2001:db9::1"));
  EXPECT_TRUE(set.contains("fd7f::1"));  // 9 bits: fd00-fd7f
  EXPECT_FALSE(set.contains("fd80::1"));
}

// A client reaching a dual-stack listener shows up as ::ffff:a.b.c.d (RFC 4291 2.5.5.2).
TEST(Cidr, V4MappedAddressesMatchIpv4Ranges) {
  const CidrSet set = set_of({"10.0.0.0/8"});
  EXPECT_TRUE(set.contains("::ffff:10.9.8.7"));
  EXPECT_FALSE(set.contains("::ffff:11.9.8.7"));
  const CidrSet v6 = set_of({"::ffff:10.0.0.0/104"});
  EXPECT_TRUE(v6.contains("10.1.1.1"));
}

TEST(Cidr, ZeroPrefixAndNonAddresses) {
  const CidrSet all4 = set_of({"0.0.0.0/0"});
  EXPECT_TRUE(all4.contains("203.0.113.9"));
  EXPECT_FALSE(all4.contains("2001:db8::1"));
  EXPECT_FALSE(all4.contains("unknown"));
  EXPECT_FALSE(all4.contains(""));
  EXPECT_FALSE(all4.contains("10.0.0.1:80"));
  EXPECT_FALSE(CidrSet{}.contains("10.0.0.1"));
}

TEST(Cidr, RefusesBadRanges) {
  std::string problem;
  EXPECT_FALSE(parse_cidr("10.0.0.0/33", problem));
  EXPECT_FALSE(parse_cidr("::/129", problem));
  EXPECT_FALSE(parse_cidr("10.0.0.0/", problem));
  EXPECT_FALSE(parse_cidr("10.0.0.0/8x", problem));
  EXPECT_FALSE(parse_cidr("example.com/8", problem));
  EXPECT_FALSE(parse_cidr("", problem));
}

}  // namespace
}  // namespace needle::config
