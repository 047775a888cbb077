#pragma once
// One c-ares channel (docs/architecture.md "Discovery by DNS"). resolve() is a blocking call
// that runs c-ares' event loop on the caller's thread until the answer or the timeout: it is
// meant for the discovery thread only, never a worker. Not thread-safe.
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/clock.h"
#include "config/config.h"

namespace needle::net {

struct DnsAnswer {
  // Literal addresses, sorted. IPv4 preferred: AAAA records are used only when the name has
  // no A record (Envoy's V4_PREFERRED), so "localhost" does not become ::1 and 127.0.0.1.
  std::vector<std::string> addresses;
  std::optional<Millis> ttl;  // smallest record TTL; nullopt when none (e.g. /etc/hosts)
  std::string error;          // empty on success; an empty answer is an error too
  bool ok() const { return error.empty(); }
};

class DnsResolver {
 public:
  // `server`: a literal "ip:port" to ask instead of /etc/resolv.conf's servers. Null and
  // `*error` set when c-ares cannot be set up.
  static std::unique_ptr<DnsResolver> create(const std::optional<config::HostPort>& server,
                                             std::string* error);
  ~DnsResolver();
  DnsResolver(const DnsResolver&) = delete;
  DnsResolver& operator=(const DnsResolver&) = delete;

  DnsAnswer resolve(const std::string& name, Millis timeout);

 private:
  struct Impl;
  explicit DnsResolver(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace needle::net
