#pragma once
// Human durations as written in config and on the command line: "250ms", "5s", "2m", "1h",
// "1.5s"; a bare number is rejected so units are never guessed.
#include <optional>
#include <string>
#include <string_view>

#include "base/clock.h"

namespace needle {

std::optional<Millis> parse_duration(std::string_view text);
// Shortest exact spelling: 1500ms -> "1500ms", 5000ms -> "5s", 120000ms -> "2m".
std::string format_duration(Millis d);

}  // namespace needle
