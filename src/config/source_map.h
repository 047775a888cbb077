#pragma once
// Internal to src/config: where each key of a Config came from, so that checks which run on the
// finished Config (validate.cc) can still report "file:line:column: key: message".
#include <map>
#include <string>
#include <vector>

#include "config/config.h"

namespace needle::config {

class SourceMap {
 public:
  // `shown_key` is what errors print for `key` (e.g. "--listen" for "listener[0].address"
  // when the config came from the command line); empty = `key` itself.
  void add(const std::string& key, int line, int column, std::string shown_key = {});

  // An error at `key`, placed where `key` was written or, if it was not written (a default
  // or a missing key), where its nearest written ancestor was: "route[0].cluster" falls back
  // to "route[0]", then "route".
  ConfigError error(const std::string& file, const std::string& key, std::string message) const;

  // The line `key` (or its nearest written ancestor) starts on; 0 when unknown.
  int line_of(const std::string& key) const;

 private:
  struct Place {
    int line = 0;
    int column = 0;
    std::string shown_key;
  };
  const Place* find(const std::string& key, bool& exact) const;

  std::map<std::string, Place, std::less<>> places_;
};

// Semantic checks on a loaded Config: ranges, references between sections, duplicates, and
// required values. The loader has already reported keys that were missing or unreadable; it
// leaves placeholders for them (HostPort with port 0, empty cluster name), which are skipped
// here so that one mistake yields one error.
void validate_config(const Config& config, const SourceMap& places,
                     std::vector<ConfigError>& errors);

// File order: by line and column; errors with no place (line 0) last. Stable.
void sort_errors(std::vector<ConfigError>& errors);

// parse_config and load_config_file that also hand back where each key was written
// (reload_check.cc places what a reload cannot apply).
LoadResult parse_config_placed(std::string_view toml_text, const std::string& source_name,
                               SourceMap& places);
LoadResult load_config_file_placed(const std::string& path, SourceMap& places);

}  // namespace needle::config
