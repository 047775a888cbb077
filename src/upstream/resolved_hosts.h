#pragma once
// What DNS discovery learned, and the config the workers run with it (docs/architecture.md
// "Discovery by DNS"): each host name of a cluster becomes one host per address of its last
// good answer; literal addresses, and names without an answer yet, stay as written.
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"

namespace needle::upstream {

struct ResolvedName {
  std::string cluster;
  std::string name;
  std::vector<std::string> addresses;  // sorted, unique; empty: no good answer yet
};
using ResolvedNames = std::vector<ResolvedName>;

// An IPv4 or IPv6 literal (no brackets): never resolved.
bool is_literal_address(std::string_view host);

// `declared` with every name host replaced by its answer's addresses (same port, in answer
// order, duplicates of a host already listed dropped).
config::Config expand_resolved_hosts(const config::Config& declared, const ResolvedNames& answers);

// How an answer changed. Inputs sorted; outputs sorted.
struct AddressDiff {
  std::vector<std::string> added;
  std::vector<std::string> removed;
  size_t kept = 0;
  bool changed() const { return !added.empty() || !removed.empty(); }
};
AddressDiff diff_addresses(const std::vector<std::string>& before,
                           const std::vector<std::string>& after);

}  // namespace needle::upstream
