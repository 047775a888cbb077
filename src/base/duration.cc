#include "base/duration.h"

#include <cmath>
#include <cstdlib>

#include <fmt/format.h>

namespace needle {

std::optional<Millis> parse_duration(std::string_view text) {
  size_t unit_at = 0;
  while (unit_at < text.size() && (std::isdigit(static_cast<unsigned char>(text[unit_at])) ||
                                   text[unit_at] == '.')) {
    ++unit_at;
  }
  if (unit_at == 0 || unit_at == text.size()) return std::nullopt;
  std::string number(text.substr(0, unit_at));
  if (number.front() == '.' || number.back() == '.' ||
      number.find('.') != number.rfind('.')) {
    return std::nullopt;
  }
  const double value = std::strtod(number.c_str(), nullptr);
  const std::string_view unit = text.substr(unit_at);
  double scale = 0;
  if (unit == "ms") scale = 1;
  else if (unit == "s") scale = 1000;
  else if (unit == "m") scale = 60'000;
  else if (unit == "h") scale = 3'600'000;
  else return std::nullopt;
  const double ms = value * scale;
  if (!std::isfinite(ms) || ms > 1e12) return std::nullopt;
  return Millis(static_cast<long long>(std::llround(ms)));
}

std::string format_duration(Millis d) {
  const long long ms = d.count();
  if (ms != 0 && ms % 3'600'000 == 0) return fmt::format("{}h", ms / 3'600'000);
  if (ms != 0 && ms % 60'000 == 0) return fmt::format("{}m", ms / 60'000);
  if (ms != 0 && ms % 1000 == 0) return fmt::format("{}s", ms / 1000);
  return fmt::format("{}ms", ms);
}

}  // namespace needle
