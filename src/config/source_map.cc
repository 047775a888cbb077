#include "config/source_map.h"

#include <algorithm>
#include <tuple>

namespace needle::config {
namespace {

// "cluster.app.hosts[1]" -> "cluster.app.hosts" -> "cluster.app" -> "cluster" -> "".
std::string parent_key(const std::string& key) {
  const size_t cut = key.find_last_of(".[");
  return cut == std::string::npos ? std::string() : key.substr(0, cut);
}

}  // namespace

void SourceMap::add(const std::string& key, int line, int column, std::string shown_key) {
  places_[key] = Place{line, column, std::move(shown_key)};
}

const SourceMap::Place* SourceMap::find(const std::string& key, bool& exact) const {
  exact = true;
  for (std::string k = key; !k.empty(); k = parent_key(k)) {
    if (auto it = places_.find(k); it != places_.end()) return &it->second;
    exact = false;
  }
  return nullptr;
}

ConfigError SourceMap::error(const std::string& file, const std::string& key,
                             std::string message) const {
  ConfigError e{file, 0, 0, key, std::move(message)};
  bool exact = false;
  if (const Place* place = find(key, exact)) {
    e.line = place->line;
    e.column = place->column;
    if (exact && !place->shown_key.empty()) e.key = place->shown_key;
  }
  return e;
}

int SourceMap::line_of(const std::string& key) const {
  bool exact = false;
  const Place* place = find(key, exact);
  return place ? place->line : 0;
}

void sort_errors(std::vector<ConfigError>& errors) {
  std::stable_sort(errors.begin(), errors.end(), [](const ConfigError& a, const ConfigError& b) {
    auto rank = [](const ConfigError& e) { return std::make_tuple(e.line == 0, e.line, e.column); };
    return rank(a) < rank(b);
  });
}

}  // namespace needle::config
