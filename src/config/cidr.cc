#include "config/cidr.h"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>

namespace needle::config {

std::optional<IpAddress16> parse_ip(std::string_view text) {
  if (text.size() >= 2 && text.front() == '[' && text.back() == ']') {
    text = text.substr(1, text.size() - 2);
  }
  char buffer[INET6_ADDRSTRLEN + 1];
  if (text.empty() || text.size() >= sizeof(buffer)) return std::nullopt;
  std::memcpy(buffer, text.data(), text.size());
  buffer[text.size()] = '\0';
  IpAddress16 out;
  if (text.find(':') == std::string_view::npos) {
    in_addr v4;
    if (inet_pton(AF_INET, buffer, &v4) != 1) return std::nullopt;
    out.bytes[10] = 0xff;
    out.bytes[11] = 0xff;
    std::memcpy(out.bytes.data() + 12, &v4, 4);
    return out;
  }
  if (inet_pton(AF_INET6, buffer, out.bytes.data()) != 1) return std::nullopt;
  return out;
}

bool Cidr::contains(const IpAddress16& address) const {
  unsigned bits = prefix_bits;
  for (size_t i = 0; i < 16 && bits > 0; ++i) {
    const unsigned take = bits >= 8 ? 8 : bits;
    const uint8_t mask = static_cast<uint8_t>(0xff00u >> take);
    if ((address.bytes[i] & mask) != (network.bytes[i] & mask)) return false;
    bits -= take;
  }
  return true;
}

std::optional<Cidr> parse_cidr(std::string_view text, std::string& problem) {
  const size_t slash = text.find('/');
  const std::string_view address_text = text.substr(0, slash);
  const auto address = parse_ip(address_text);
  if (!address) {
    problem = "is not an IP address or range; e.g. \"10.0.0.0/8\", \"::1/128\", \"192.0.2.7\"";
    return std::nullopt;
  }
  const bool v4 = address_text.find(':') == std::string_view::npos;
  const unsigned max_bits = v4 ? 32 : 128;
  unsigned bits = max_bits;
  if (slash != std::string_view::npos) {
    const std::string_view digits = text.substr(slash + 1);
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), bits);
    if (digits.empty() || ec != std::errc() || end != digits.data() + digits.size() ||
        bits > max_bits) {
      problem =
          v4 ? "has a prefix length that is not 0-32" : "has a prefix length that is not 0-128";
      return std::nullopt;
    }
  }
  Cidr cidr{*address, v4 ? bits + 96 : bits};
  // Host bits set below the prefix ("10.1.2.3/8") are ignored, as nginx's set_real_ip_from.
  return cidr;
}

bool CidrSet::contains(const IpAddress16& address) const {
  for (const Cidr& range : ranges_) {
    if (range.contains(address)) return true;
  }
  return false;
}

bool CidrSet::contains(std::string_view address_text) const {
  if (ranges_.empty()) return false;
  const auto address = parse_ip(address_text);
  return address && contains(*address);
}

}  // namespace needle::config
