#pragma once
// Address ranges for `server.trusted_proxies` (docs/config.md "Client address and
// X-Forwarded-*"). Every address is held as 16 bytes: IPv4 as its v4-mapped IPv6 form
// (::ffff:a.b.c.d, RFC 4291 2.5.5.2) with the prefix length moved up by 96, so an IPv4 range
// also covers a client that reaches a dual-stack listener as ::ffff:a.b.c.d.
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace needle::config {

struct IpAddress16 {
  std::array<uint8_t, 16> bytes{};
};

// "10.1.2.3", "::1", "::ffff:10.1.2.3", "[::1]". No allocation. nullopt if not an address.
std::optional<IpAddress16> parse_ip(std::string_view text);

struct Cidr {
  IpAddress16 network;
  unsigned prefix_bits = 128;  // in the 16-byte form

  bool contains(const IpAddress16& address) const;
};

// "10.0.0.0/8", "::1/128", "192.168.1.7" (a single address). nullopt and `problem` set if not.
std::optional<Cidr> parse_cidr(std::string_view text, std::string& problem);

class CidrSet {
 public:
  void add(const Cidr& cidr) { ranges_.push_back(cidr); }
  bool empty() const { return ranges_.empty(); }
  bool contains(const IpAddress16& address) const;
  // False for text that is not an address.
  bool contains(std::string_view address_text) const;

 private:
  std::vector<Cidr> ranges_;
};

}  // namespace needle::config
