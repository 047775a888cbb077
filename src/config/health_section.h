#pragma once
// Internal to src/config: [cluster.NAME.health_check] and [cluster.NAME.outlier_detection]
// (issue 20; docs/config.md "Health checks" and "Outlier detection"). read_cluster in
// toml_loader.cc hands the two nodes here; values are checked as they are read, so every error
// names file:line:column and the dotted key.
#include <string>
#include <vector>

#include <toml++/toml.h>

#include "config/config.h"
#include "config/source_map.h"

namespace needle::config {

// Where errors go and where keys were found (toml_loader.cc's LoadContext, for this file).
struct HealthSectionSink {
  const std::string& file;
  std::vector<ConfigError>& errors;
  SourceMap& places;
};

// `health_check` / `outlier_detection`: the nodes under those keys of the cluster's table, or
// null when absent; `cluster_key` is "cluster.NAME".
void read_cluster_health(HealthSectionSink sink, const std::string& cluster_key,
                         const toml::node* health_check, const toml::node* outlier_detection,
                         ClusterConfig& cluster);

}  // namespace needle::config
