#pragma once
// The keys of DNS discovery and overload protection (docs/config.md "Discovery by DNS",
// "Circuit breakers", "Slow start", "Rate limiting"), read from a [cluster.NAME] table and from
// a [[route]]'s [route.rate_limit] table. Templates over toml_loader.cc's table reader, so the
// keys are recorded (and unknown ones reported) like every other key, with file:line:key
// errors; toml_loader.cc calls them with one line each.
#include <string>

#include <fmt/format.h>

#include "config/config.h"

namespace needle::config {

template <class Reader>
void read_cluster_discovery(Reader& r, ClusterConfig& c) {
  Millis refresh{};
  if (r.duration("dns_refresh", refresh)) {
    if (refresh > Millis(0)) c.dns.refresh = refresh;
    if (refresh <= Millis(0)) {
      r.context().error(r.take("dns_refresh")->source(), r.key("dns_refresh"),
                        "must be longer than 0s");
    }
  }
  r.duration("dns_refresh_min", c.dns.refresh_min);
  if (r.duration("dns_refresh_max", c.dns.refresh_max) && c.dns.refresh_max < c.dns.refresh_min) {
    r.context().error(r.take("dns_refresh_max")->source(), r.key("dns_refresh_max"),
                      fmt::format("{} ms is below dns_refresh_min ({} ms)",
                                  c.dns.refresh_max.count(), c.dns.refresh_min.count()));
  }
  HostPort resolver;
  if (r.host_port("resolver", resolver) && resolver.port != 0) c.dns.resolver = resolver;
  r.integer("max_connections", c.breakers.max_connections);
  r.integer("max_pending", c.breakers.max_pending);
  r.integer("max_requests", c.breakers.max_requests);
  r.duration("slow_start", c.slow_start);
}

// [route.rate_limit]: rate = 10.0, burst = 20, key = "client_address" | "header",
// header = "X-Api-Key", max_keys = 100000.
template <class Reader>
void read_route_rate_limit(Reader& r, RouteConfig& route) {
  const auto* node = r.take("rate_limit");
  if (!node) return;
  const auto* table = node->as_table();
  if (!table) {
    r.wrong_type("rate_limit", *node, "a table: write [route.rate_limit] after the [[route]]");
    return;
  }
  Reader sub(r.context(), *table, r.key("rate_limit"));
  RateLimitConfig limit;
  if (!sub.number("rate", limit.rate)) sub.missing("rate", "rate = 100  # requests per second");
  if (!sub.integer("burst", limit.burst)) sub.missing("burst", "burst = 20");
  std::string key = "client_address";
  sub.string("key", key);
  sub.string("header", limit.header);
  sub.integer("max_keys", limit.max_keys);
  if (const auto* rate = sub.take("rate"); rate && !(limit.rate > 0)) {
    r.context().error(rate->source(), sub.key("rate"), "must be more than 0 per second");
  }
  if (const auto* burst = sub.take("burst"); burst && limit.burst == 0) {
    r.context().error(burst->source(), sub.key("burst"), "must be at least 1");
  }
  if (key == "header") {
    limit.key = RateLimitKey::header;
    if (limit.header.empty()) sub.missing("header", R"(header = "X-Api-Key")");
  } else if (key != "client_address") {
    r.context().error(sub.take("key")->source(), sub.key("key"),
                      fmt::format(R"("{}" is not one of "client_address", "header")", key));
  }
  if (const auto* max_keys = sub.take("max_keys"); max_keys && limit.max_keys == 0) {
    r.context().error(max_keys->source(), sub.key("max_keys"), "must be at least 1");
  }
  sub.finish("[route.rate_limit]");
  route.rate_limit = limit;
}

}  // namespace needle::config
