#include "config/reload_check.h"

#include <algorithm>

#include <fmt/format.h>

#include "config/source_map.h"

namespace needle::config {

ReloadCheck::ReloadCheck(LoadResult loaded, std::shared_ptr<const SourceMap> places,
                         const Config& running)
    : loaded_(std::move(loaded)), places_(std::move(places)) {
  if (!loaded_.config) return;
  source_ = loaded_.config->source;
  refuse_what_cannot_change(running);
  if (!loaded_.errors.empty()) loaded_.config.reset();
}

ConfigError ReloadCheck::error_at(const std::string& key, std::string message) const {
  return places_->error(source_, key, std::move(message));
}

void ReloadCheck::refuse_what_cannot_change(const Config& running) {
  const Config& next = *loaded_.config;
  auto refuse = [&](const std::string& key, std::string what) {
    loaded_.errors.push_back(error_at(
        key, fmt::format("{}; a reload cannot apply this (restart needle to apply it, or put "
                         "the running value back)",
                         what)));
  };

  const size_t common = std::min(running.listeners.size(), next.listeners.size());
  for (size_t i = 0; i < common; ++i) {
    const std::string was = running.listeners[i].address.to_string();
    const std::string now = next.listeners[i].address.to_string();
    if (was == now) continue;
    refuse(fmt::format("listener[{}].address", i),
           fmt::format("listener address changed from {} to {}", was, now));
  }
  for (size_t i = common; i < next.listeners.size(); ++i) {
    refuse(fmt::format("listener[{}]", i),
           fmt::format("new listener {}", next.listeners[i].address.to_string()));
  }
  if (next.listeners.size() < running.listeners.size()) {
    refuse("listener", fmt::format("{} listener(s) removed (running: {}, file: {})",
                                   running.listeners.size() - next.listeners.size(),
                                   running.listeners.size(), next.listeners.size()));
  }
  if (next.server.workers != running.server.workers) {
    auto shown = [](unsigned n) {
      return n == 0 ? std::string("0 (one per core)") : fmt::format("{}", n);
    };
    refuse("server.workers",
           fmt::format("workers changed from {} to {}", shown(running.server.workers),
                       shown(next.server.workers)));
  }
  sort_errors(loaded_.errors);
}

ReloadCheck check_reload_file(const std::string& path, const Config& running) {
  auto places = std::make_shared<SourceMap>();
  LoadResult loaded = load_config_file_placed(path, *places);
  return ReloadCheck(std::move(loaded), std::move(places), running);
}

ReloadCheck check_reload_text(std::string_view toml_text, const std::string& source_name,
                              const Config& running) {
  auto places = std::make_shared<SourceMap>();
  LoadResult loaded = parse_config_placed(toml_text, source_name, *places);
  return ReloadCheck(std::move(loaded), std::move(places), running);
}

}  // namespace needle::config
