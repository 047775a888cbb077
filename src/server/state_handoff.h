#pragma once
// What a binary upgrade carries from the old process to the new one (docs/decisions/
// 0009-binary-upgrade.md): per worker, per upstream host, the idle-timeout estimator's evidence
// (docs/decisions/0006-idle-close-evidence.md) and what is left of an ejection. The old process
// writes it as a small versioned JSON file in a temporary directory named by
// NEEDLE_UPGRADE_STATE; the new one reads it before its workers start. A file that is missing,
// does not parse, or has another version is ignored (with a warning): the new process then
// learns from scratch, as after a restart, which costs fresh connections and never a request.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "upstream/connection_pool.h"

namespace needle::server {

inline constexpr int kUpgradeStateVersion = 1;

struct HostLearnedState {
  std::string cluster, host;  // host spelled as in /pools ("addr:port" or the name)
  upstream::HostPool::LearnedState state;
};

struct UpgradeState {
  std::vector<std::vector<HostLearnedState>> workers;  // index: the old process's worker
};

std::string render_upgrade_state(const UpgradeState& state);
// nullopt (and `why`) when the text is not a version-1 state.
std::optional<UpgradeState> parse_upgrade_state(std::string_view text, std::string* why);

}  // namespace needle::server
