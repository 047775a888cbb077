// DNS discovery's pure parts: which hosts are names, how an answer changes (the diff the log
// line reports), and the config the workers run once names are resolved.
#include "upstream/resolved_hosts.h"

#include <gtest/gtest.h>

namespace needle::upstream {
namespace {

using Strings = std::vector<std::string>;

TEST(ResolvedHosts, LiteralAddressesAreNeverResolved) {
  EXPECT_TRUE(is_literal_address("127.0.0.1"));
  EXPECT_TRUE(is_literal_address("::1"));
  EXPECT_TRUE(is_literal_address("fe80::1"));
  EXPECT_FALSE(is_literal_address("localhost"));
  EXPECT_FALSE(is_literal_address("app.internal"));
  EXPECT_FALSE(is_literal_address("127.0.0"));
}

TEST(ResolvedHosts, DiffNamesAddedRemovedAndKept) {
  const auto diff = diff_addresses({"10.0.0.1", "10.0.0.2"}, {"10.0.0.2", "10.0.0.3"});
  EXPECT_EQ(diff.added, Strings{"10.0.0.3"});
  EXPECT_EQ(diff.removed, Strings{"10.0.0.1"});
  EXPECT_EQ(diff.kept, 1u);
  EXPECT_TRUE(diff.changed());
  EXPECT_FALSE(diff_addresses({"10.0.0.1"}, {"10.0.0.1"}).changed());
  const auto first = diff_addresses({}, {"10.0.0.1", "10.0.0.2"});
  EXPECT_EQ(first.added.size(), 2u);
  EXPECT_EQ(first.kept, 0u);
}

config::Config declared() {
  config::Config c;
  config::ClusterConfig app;
  app.name = "app";
  app.hosts = {{"app.test", 8080}, {"127.0.0.9", 8080}, {"other.test", 81}};
  c.clusters.push_back(app);
  config::ClusterConfig api;
  api.name = "api";
  api.hosts = {{"app.test", 9000}};
  c.clusters.push_back(api);
  return c;
}

Strings hosts_of(const config::ClusterConfig& cluster) {
  Strings out;
  for (const auto& h : cluster.hosts) out.push_back(h.to_string());
  return out;
}

TEST(ResolvedHosts, EachAddressBecomesAHostWithTheDeclaredPort) {
  const ResolvedNames answers = {{"app", "app.test", {"10.0.0.1", "10.0.0.2"}},
                                 {"api", "app.test", {"10.0.0.7"}}};
  const auto expanded = expand_resolved_hosts(declared(), answers);
  EXPECT_EQ(hosts_of(expanded.clusters[0]),
            (Strings{"10.0.0.1:8080", "10.0.0.2:8080", "127.0.0.9:8080", "other.test:81"}));
  EXPECT_EQ(hosts_of(expanded.clusters[1]), Strings{"10.0.0.7:9000"});
}

TEST(ResolvedHosts, ANameWithoutAnAnswerStaysAName) {
  const ResolvedNames answers = {{"app", "app.test", {}}};
  const auto expanded = expand_resolved_hosts(declared(), answers);
  EXPECT_EQ(hosts_of(expanded.clusters[0]),
            (Strings{"app.test:8080", "127.0.0.9:8080", "other.test:81"}));
}

TEST(ResolvedHosts, AnAddressListedTwiceIsOneHost) {
  const ResolvedNames answers = {{"app", "app.test", {"127.0.0.9"}},
                                 {"app", "other.test", {"127.0.0.9"}}};
  const auto expanded = expand_resolved_hosts(declared(), answers);
  EXPECT_EQ(hosts_of(expanded.clusters[0]), (Strings{"127.0.0.9:8080", "127.0.0.9:81"}));
}

}  // namespace
}  // namespace needle::upstream
