#pragma once
// Internal to src/config: readers for the textual values of a config (host:port, sizes,
// durations) that say why a value was rejected, and the "did you mean" helper.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"

namespace needle::config {

inline constexpr std::string_view kHostPortForms =
    R"(expected "host:port" such as "127.0.0.1:8080", "[::1]:8080" or "localhost:3000")"
    " (port 1-65535)";
inline constexpr std::string_view kDurationForms =
    R"(expected a duration string such as "250ms", "5s", "1.5s", "2m" or "1h")";
inline constexpr std::string_view kSizeForms =
    R"(expected a size: an integer number of bytes, or a string such as "64KiB", "1MiB")"
    R"( or "1GiB")";

struct HostPortParse {
  std::optional<HostPort> value;
  std::string problem;  // set iff !value: what is wrong, e.g. "port 70000 is above 65535"
};
HostPortParse parse_host_port_explained(std::string_view text);

// The candidate closest to `word` by edit distance, if it is close enough to be a likely
// typo ("conect_timeout" -> "connect_timeout"); nullopt otherwise.
std::optional<std::string> closest_match(std::string_view word,
                                         const std::vector<std::string>& candidates);

}  // namespace needle::config
