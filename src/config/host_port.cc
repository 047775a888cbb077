#include <arpa/inet.h>

#include <charconv>

#include <fmt/format.h>

#include "config/config.h"
#include "config/value_text.h"

namespace needle::config {
namespace {

bool is_ipv4_literal(const std::string& host) {
  in_addr addr{};
  return inet_pton(AF_INET, host.c_str(), &addr) == 1;
}

bool is_ipv6_literal(const std::string& host) {
  in6_addr addr{};
  return inet_pton(AF_INET6, host.c_str(), &addr) == 1;
}

bool looks_numeric(std::string_view host) {
  return host.find_first_not_of("0123456789.") == std::string_view::npos;
}

// RFC 1123 host names, plus '_' (common in internal DNS and Docker service names).
bool is_host_name(std::string_view host) {
  if (host.empty() || host.size() > 253) return false;
  if (host.back() == '.') host.remove_suffix(1);  // fully qualified "app.internal."
  size_t label_start = 0;
  while (label_start <= host.size()) {
    size_t dot = host.find('.', label_start);
    if (dot == std::string_view::npos) dot = host.size();
    const std::string_view label = host.substr(label_start, dot - label_start);
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') {
      return false;
    }
    for (char c : label) {
      const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '-' || c == '_';
      if (!ok) return false;
    }
    label_start = dot + 1;
  }
  return true;
}

HostPortParse fail(std::string problem) {
  return HostPortParse{std::nullopt, std::move(problem)};
}

}  // namespace

std::string HostPort::to_string() const {
  if (host.find(':') != std::string::npos) return fmt::format("[{}]:{}", host, port);
  return fmt::format("{}:{}", host, port);
}

HostPortParse parse_host_port_explained(std::string_view text) {
  if (text.empty()) return fail("the address is empty");
  if (const size_t scheme = text.find("://"); scheme != std::string_view::npos) {
    return fail(fmt::format("\"{}\" has a URL scheme; write only host:port, e.g. \"{}\"", text,
                            text.substr(scheme + 3)));
  }
  if (text.find_first_of(" \t/") != std::string_view::npos) {
    return fail(fmt::format("\"{}\" contains a space or '/'", text));
  }

  std::string host;
  std::string_view port_text;
  if (text.front() == '[') {
    const size_t close = text.find(']');
    if (close == std::string_view::npos)
      return fail(fmt::format("\"{}\" has no closing ']'", text));
    host = std::string(text.substr(1, close - 1));
    const std::string_view rest = text.substr(close + 1);
    if (rest.empty() || rest.front() != ':') {
      return fail(fmt::format("\"{}\" has no port after ']'", text));
    }
    port_text = rest.substr(1);
    if (!is_ipv6_literal(host)) {
      return fail(fmt::format("\"{}\" is not an IPv6 address", host));
    }
  } else {
    const size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) return fail(fmt::format("\"{}\" has no port", text));
    if (text.find(':') != colon) {
      return fail(fmt::format("\"{}\": an IPv6 address needs brackets, e.g. \"[::1]:8080\"", text));
    }
    host = std::string(text.substr(0, colon));
    port_text = text.substr(colon + 1);
    if (host.empty()) {
      return fail(fmt::format("\"{}\" has no host; to listen on all interfaces write \"0.0.0.0{}\"",
                              text, text));
    }
    if (looks_numeric(host) ? !is_ipv4_literal(host) : !is_host_name(host)) {
      return fail(fmt::format("\"{}\" is neither an IPv4 address nor a host name", host));
    }
  }

  if (port_text.empty()) return fail(fmt::format("\"{}\" has no port", text));
  unsigned long port = 0;
  const auto [end, ec] =
      std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec == std::errc::result_out_of_range ||
      (ec == std::errc{} && end == port_text.data() + port_text.size() && port > 65535)) {
    return fail(fmt::format("port {} is above 65535", port_text));
  }
  if (ec != std::errc{} || end != port_text.data() + port_text.size()) {
    return fail(fmt::format("port \"{}\" is not a number", port_text));
  }
  if (port == 0) return fail("port 0 is not allowed (1-65535)");
  return HostPortParse{HostPort{std::move(host), static_cast<uint16_t>(port)}, {}};
}

std::optional<HostPort> parse_host_port(std::string_view text) {
  return parse_host_port_explained(text).value;
}

}  // namespace needle::config
