#include "config/config.h"

#include <cerrno>
#include <cstdio>
#include <cstring>

#include <fmt/format.h>

#include "config/source_map.h"
#include "config/value_text.h"

namespace needle::config {

std::string_view lb_policy_name(LbPolicy policy) {
  switch (policy) {
    case LbPolicy::round_robin:
      return "round_robin";
    case LbPolicy::least_request:
      return "least_request";
  }
  return "unknown";
}

std::string_view retry_non_idempotent_name(RetryNonIdempotent mode) {
  switch (mode) {
    case RetryNonIdempotent::never:
      return "never";
    case RetryNonIdempotent::idempotency_key:
      return "idempotency-key";
    case RetryNonIdempotent::reused_connection:
      return "reused-connection";
  }
  return "unknown";
}

const ClusterConfig* Config::find_cluster(std::string_view name) const {
  for (const auto& cluster : clusters) {
    if (cluster.name == name) return &cluster;
  }
  return nullptr;
}

std::string ConfigError::to_string() const {
  std::string out = file;
  if (line > 0) {
    out += fmt::format(":{}", line);
    if (column > 0) out += fmt::format(":{}", column);
  }
  out += ": ";
  if (!key.empty()) out += key + ": ";
  out += message;
  return out;
}

LoadResult load_config_file(const std::string& path) {
  SourceMap places;
  return load_config_file_placed(path, places);
}

LoadResult load_config_file_placed(const std::string& path, SourceMap& places) {
  auto fail = [&](std::string message) {
    LoadResult result;
    result.errors.push_back(ConfigError{path, 0, 0, "", std::move(message)});
    return result;
  };
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (!file) return fail(fmt::format("cannot open config file: {}", std::strerror(errno)));
  std::string text;
  char buffer[16 * 1024];
  size_t n = 0;
  while ((n = std::fread(buffer, 1, sizeof buffer, file)) > 0) text.append(buffer, n);
  const bool read_failed = std::ferror(file) != 0;
  const int read_errno = errno;
  std::fclose(file);
  if (read_failed) {
    return fail(fmt::format("cannot read config file: {}", std::strerror(read_errno)));
  }
  return parse_config_placed(text, path, places);
}

LoadResult quick_config(const std::string& listen, const std::vector<std::string>& upstreams,
                        unsigned workers, const std::string& admin) {
  LoadResult result;
  Config config;
  config.source = "<command line>";
  SourceMap places;
  auto flag_error = [&](const std::string& flag, const std::string& problem) {
    result.errors.push_back(
        ConfigError{config.source, 0, 0, flag, fmt::format("{}; {}", problem, kHostPortForms)});
  };

  places.add("server.workers", 0, 0, "--workers");
  config.server.workers = workers;

  places.add("listener", 0, 0, "--listen");
  places.add("listener[0].address", 0, 0, "--listen");
  ListenerConfig listener;
  auto parsed_listen = parse_host_port_explained(listen);
  if (parsed_listen.value) {
    listener.address = *parsed_listen.value;
  } else {
    flag_error("--listen", parsed_listen.problem);
  }
  config.listeners.push_back(std::move(listener));

  places.add("admin.address", 0, 0, "--admin");
  if (admin == "off") {
    config.admin.address.reset();
  } else if (!admin.empty()) {
    auto parsed_admin = parse_host_port_explained(admin);
    if (parsed_admin.value) {
      config.admin.address = *parsed_admin.value;
    } else {
      flag_error("--admin", parsed_admin.problem + R"( (or "off"))");
    }
  }

  ClusterConfig cluster;
  cluster.name = "default";
  places.add("cluster.default.hosts", 0, 0, "--upstream");
  for (size_t i = 0; i < upstreams.size(); ++i) {
    places.add(fmt::format("cluster.default.hosts[{}]", i), 0, 0, "--upstream");
    auto parsed = parse_host_port_explained(upstreams[i]);
    if (!parsed.value) flag_error("--upstream", parsed.problem);
    // An unreadable upstream stays as a placeholder (port 0) so it is not also "no hosts".
    cluster.hosts.push_back(parsed.value.value_or(HostPort{}));
  }
  config.clusters.push_back(std::move(cluster));
  config.routes.push_back(RouteConfig{std::nullopt, "/", "default"});

  validate_config(config, places, result.errors);
  if (result.errors.empty()) result.config = std::move(config);
  return result;
}

}  // namespace needle::config
