#pragma once
// Operational log lines (not the access log): "ts level component: message", to stderr.
// Thread-safe; one write(2) per line so lines from workers never interleave.
#include <string_view>

#include <fmt/format.h>

namespace needle::log {

enum class Level { debug, info, warn, error };

void set_level(Level level);
bool enabled(Level level);
void write(Level level, std::string_view component, std::string_view message);

template <typename... Args>
void info(std::string_view component, fmt::format_string<Args...> f, Args&&... args) {
  if (enabled(Level::info)) write(Level::info, component, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void warn(std::string_view component, fmt::format_string<Args...> f, Args&&... args) {
  if (enabled(Level::warn)) write(Level::warn, component, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void error(std::string_view component, fmt::format_string<Args...> f, Args&&... args) {
  if (enabled(Level::error)) write(Level::error, component, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void debug(std::string_view component, fmt::format_string<Args...> f, Args&&... args) {
  if (enabled(Level::debug)) write(Level::debug, component, fmt::format(f, std::forward<Args>(args)...));
}

}  // namespace needle::log
