#pragma once
// [listener.tls] and [cluster.NAME.tls] (docs/config.md "TLS"). Each key is recorded in the
// source map, and every certificate, key and CA file is loaded and checked here (the contexts
// are built once and dropped), so `needle check` and a reload refuse a bad file with
// file:line:key: unreadable, not PEM, key not matching the certificate, expired.
#include <optional>
#include <string>
#include <vector>

#include <toml++/toml.h>

#include "config/config.h"
#include "config/source_map.h"

namespace needle::config {

struct TlsSectionContext {
  const std::string& file;
  std::vector<ConfigError>& errors;
  SourceMap& places;
};

// `node` is the value under `key` ("listener[0].tls", "cluster.api.tls").
void read_listener_tls(TlsSectionContext ctx, const std::string& key, const toml::node& node,
                       std::optional<ListenerTlsConfig>& out);
void read_cluster_tls(TlsSectionContext ctx, const std::string& key, const toml::node& node,
                      std::optional<UpstreamTlsConfig>& out);

}  // namespace needle::config
