#include "tls/dns_name_match.h"

#include <gtest/gtest.h>

namespace needle::tls {
namespace {

TEST(DnsNameMatch, ExactNamesIgnoreCaseAndATrailingDot) {
  EXPECT_TRUE(dns_name_matches("api.example.com", "api.example.com"));
  EXPECT_TRUE(dns_name_matches("api.example.com", "API.Example.COM"));
  EXPECT_TRUE(dns_name_matches("api.example.com", "api.example.com."));
  EXPECT_FALSE(dns_name_matches("api.example.com", "www.example.com"));
  EXPECT_FALSE(dns_name_matches("api.example.com", "api.example.co"));
  EXPECT_FALSE(dns_name_matches("api.example.com", ""));
}

// RFC 6125 6.4.3: the wildcard is the whole left-most label and stands for exactly one label.
TEST(DnsNameMatch, WildcardMatchesExactlyOneLabel) {
  EXPECT_TRUE(dns_name_matches("*.example.com", "api.example.com"));
  EXPECT_TRUE(dns_name_matches("*.example.com", "WWW.EXAMPLE.COM"));
  EXPECT_FALSE(dns_name_matches("*.example.com", "example.com"));
  EXPECT_FALSE(dns_name_matches("*.example.com", "a.b.example.com"));
  EXPECT_FALSE(dns_name_matches("*.example.com", ".example.com"));
  EXPECT_FALSE(dns_name_matches("*.example.com", "api.example.org"));
}

TEST(DnsNameMatch, WildcardOverAPublicSuffixOrPartialLabelNeverMatches) {
  EXPECT_FALSE(dns_name_matches("*.com", "example.com"));
  EXPECT_FALSE(dns_name_matches("a*.example.com", "api.example.com"));
  EXPECT_FALSE(dns_name_matches("*", "localhost"));
}

}  // namespace
}  // namespace needle::tls
