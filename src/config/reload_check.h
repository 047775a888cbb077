#pragma once
// What a running needle can take from a new config file on SIGHUP (docs/config.md "Reload
// (SIGHUP)"; docs/architecture.md "Reload and shutdown"). Listeners and the worker count are
// fixed for the life of the process: their sockets and threads exist once. A file that
// changes one of them is refused as a whole, with an error at the key, like any config error.
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"

namespace needle::config {

class SourceMap;

// A new config file checked against the running one.
class ReloadCheck {
 public:
  ReloadCheck(LoadResult loaded, std::shared_ptr<const SourceMap> places, const Config& running);

  // The file's errors, or else one error per key the reload cannot apply, in file order.
  // Empty: config() may be applied.
  const std::vector<ConfigError>& errors() const { return loaded_.errors; }
  const Config& config() const { return *loaded_.config; }  // only when errors() is empty
  // An error at `key`, placed where the file wrote it (for problems found while applying,
  // such as an admin address that cannot be bound).
  ConfigError error_at(const std::string& key, std::string message) const;

 private:
  void refuse_what_cannot_change(const Config& running);

  LoadResult loaded_;
  std::shared_ptr<const SourceMap> places_;
  std::string source_;  // the file
};

ReloadCheck check_reload_file(const std::string& path, const Config& running);
ReloadCheck check_reload_text(std::string_view toml_text, const std::string& source_name,
                              const Config& running);

}  // namespace needle::config
