#include "upstream/resolved_hosts.h"

#include <arpa/inet.h>

#include <algorithm>

namespace needle::upstream {

bool is_literal_address(std::string_view host) {
  const std::string text(host);
  unsigned char buffer[sizeof(in6_addr)];
  return inet_pton(AF_INET, text.c_str(), buffer) == 1 ||
         inet_pton(AF_INET6, text.c_str(), buffer) == 1;
}

config::Config expand_resolved_hosts(const config::Config& declared, const ResolvedNames& answers) {
  config::Config expanded = declared;
  for (auto& cluster : expanded.clusters) {
    std::vector<config::HostPort> hosts;
    auto add = [&](config::HostPort host) {
      const bool listed = std::any_of(hosts.begin(), hosts.end(), [&](const auto& h) {
        return h.host == host.host && h.port == host.port;
      });
      if (!listed) hosts.push_back(std::move(host));
    };
    for (const auto& host : cluster.hosts) {
      const auto answer = std::find_if(answers.begin(), answers.end(), [&](const auto& a) {
        return a.cluster == cluster.name && a.name == host.host;
      });
      if (is_literal_address(host.host) || answer == answers.end() || answer->addresses.empty()) {
        add(host);
        continue;
      }
      for (const auto& address : answer->addresses) add(config::HostPort{address, host.port});
    }
    cluster.hosts = std::move(hosts);
  }
  return expanded;
}

AddressDiff diff_addresses(const std::vector<std::string>& before,
                           const std::vector<std::string>& after) {
  AddressDiff diff;
  std::set_difference(after.begin(), after.end(), before.begin(), before.end(),
                      std::back_inserter(diff.added));
  std::set_difference(before.begin(), before.end(), after.begin(), after.end(),
                      std::back_inserter(diff.removed));
  diff.kept = after.size() - diff.added.size();
  return diff;
}

}  // namespace needle::upstream
