#pragma once
// Internal to src/config: the keys of issue 19 (docs/config.md "Routing", "Header rules",
// "Weighted hosts", "Client address and X-Forwarded-*"), read from the same TOML tables as
// toml_loader.cc's readers, which call in here and list these keys as known.
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <toml++/toml.h>

#include "config/config.h"
#include "config/source_map.h"

namespace needle::config {

// Where errors go and where keys were found (toml_loader.cc's LoadContext, for this file).
struct SectionSink {
  const std::string& file;
  std::vector<ConfigError>& errors;
  SourceMap& places;

  void error(const toml::node& where, const std::string& key, std::string message);
  void record(const std::string& key, const toml::node& where);
};

// [[route]] keys besides host, path_prefix, cluster and ignore_client_abort.
extern const std::span<const std::string_view> kRouteSectionKeys;
void read_route_section(SectionSink& sink, const toml::table& table, const std::string& prefix,
                        RouteConfig& route);

// [server] keys: trusted_proxies, forwarded, server_header, via.
extern const std::span<const std::string_view> kServerForwardingKeys;
void read_server_forwarding(SectionSink& sink, const toml::table& table, ServerConfig& server);

// One `{ address = "10.0.0.1:80", weight = 3 }` entry of a cluster's hosts.
void read_weighted_host(SectionSink& sink, const std::string& key, const toml::table& table,
                        HostPort& host);

// Checks on the finished routes that need the whole config (validate.cc calls this).
void validate_route_section(const Config& config, const SourceMap& places,
                            std::vector<ConfigError>& errors);

// What makes two routes of one host the same match (validate.cc's duplicate check):
// "prefix /api", "exact /x", "regex ^/u/[0-9]+$", plus the methods.
std::string route_match_key(const RouteConfig& route);

}  // namespace needle::config
