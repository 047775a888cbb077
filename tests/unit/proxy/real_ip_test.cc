#include "proxy/real_ip.h"

#include <gtest/gtest.h>

namespace needle::proxy {
namespace {

config::CidrSet trusted() {
  config::CidrSet set;
  std::string problem;
  set.add(*config::parse_cidr("10.0.0.0/8", problem));
  set.add(*config::parse_cidr("::1/128", problem));
  return set;
}

std::string real(std::string_view peer, std::initializer_list<std::string_view> xff) {
  http::HeaderList headers;
  headers.add("Host", "a");
  for (std::string_view line : xff) headers.add("X-Forwarded-For", line);
  const config::CidrSet set = trusted();
  return std::string(real_client_address(peer, set.contains(peer), headers, set));
}

// nginx realip with real_ip_recursive on.
TEST(RealIp, FirstUntrustedHopFromTheRight) {
  EXPECT_EQ(real("10.0.0.1", {"203.0.113.9, 10.0.0.7"}), "203.0.113.9");
  EXPECT_EQ(real("10.0.0.1", {"198.51.100.1, 203.0.113.9"}), "203.0.113.9");
  EXPECT_EQ(real("::1", {"203.0.113.9"}), "203.0.113.9");
  // Several field lines are one list (RFC 9110 5.3).
  EXPECT_EQ(real("10.0.0.1", {"203.0.113.9", "10.0.0.9"}), "203.0.113.9");
  EXPECT_EQ(real("10.0.0.1", {"2001:db8::5"}), "2001:db8::5");
}

TEST(RealIp, UntrustedPeerIsTheClientWhateverItClaims) {
  EXPECT_EQ(real("203.0.113.50", {"1.2.3.4"}), "203.0.113.50");
}

TEST(RealIp, AllTrustedGivesTheLeftmostAndGarbageStopsTheWalk) {
  EXPECT_EQ(real("10.0.0.1", {"10.0.0.3, 10.0.0.2"}), "10.0.0.3");
  EXPECT_EQ(real("10.0.0.1", {"evil, 10.0.0.2"}), "10.0.0.2");
  EXPECT_EQ(real("10.0.0.1", {}), "10.0.0.1");
  EXPECT_EQ(real("10.0.0.1", {" , 203.0.113.9 ,"}), "203.0.113.9");
}

}  // namespace
}  // namespace needle::proxy
