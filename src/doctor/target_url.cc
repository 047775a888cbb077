#include "doctor/target_url.h"

#include <cctype>

#include <fmt/format.h>

namespace needle::doctor {

namespace {

std::string bracketed(const std::string& host) {
  return host.find(':') != std::string::npos ? "[" + host + "]" : host;
}

bool valid_target_char(unsigned char c) {
  return c > 0x20 && c < 0x7f && c != '#';
}

}  // namespace

std::string TargetUrl::authority() const {
  return fmt::format("{}:{}", bracketed(host), port);
}

TargetUrlParse parse_target_url(std::string_view text) {
  auto fail = [&](std::string message) { return TargetUrlParse{std::nullopt, std::move(message)}; };
  std::string_view rest = text;
  const size_t scheme_end = rest.find("://");
  if (scheme_end != std::string_view::npos) {
    std::string scheme(rest.substr(0, scheme_end));
    for (char& c : scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (scheme == "https") {
      return fail(
          "https is not supported: probe the plain-HTTP address the proxy connects to "
          "(e.g. http://127.0.0.1:3000/)");
    }
    if (scheme != "http")
      return fail(fmt::format("unsupported scheme \"{}\": use http://", scheme));
    rest.remove_prefix(scheme_end + 3);
  }
  const size_t path_at = rest.find_first_of("/?");
  std::string_view authority = rest.substr(0, path_at);
  std::string_view target = path_at == std::string_view::npos ? "" : rest.substr(path_at);
  if (authority.find('@') != std::string_view::npos)
    return fail("user info in the URL is not supported");
  if (authority.empty()) return fail("the URL has no host");

  TargetUrl url;
  std::string_view port_text;
  if (authority.front() == '[') {
    const size_t close = authority.find(']');
    if (close == std::string_view::npos) return fail("unterminated [IPv6] host");
    url.host = std::string(authority.substr(1, close - 1));
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return fail("unexpected text after ]");
      port_text = after.substr(1);
      if (port_text.empty()) return fail("empty port");
    }
  } else {
    const size_t colon = authority.rfind(':');
    if (colon != std::string_view::npos) {
      if (authority.find(':') != colon) return fail("IPv6 hosts need brackets: http://[::1]:80/");
      url.host = std::string(authority.substr(0, colon));
      port_text = authority.substr(colon + 1);
      if (port_text.empty()) return fail("empty port");
    } else {
      url.host = std::string(authority);
    }
  }
  if (url.host.empty()) return fail("the URL has no host");
  if (!port_text.empty()) {
    if (port_text.size() > 5) return fail(fmt::format("invalid port \"{}\"", port_text));
    unsigned value = 0;
    for (char c : port_text) {
      if (c < '0' || c > '9') return fail(fmt::format("invalid port \"{}\"", port_text));
      value = value * 10 + static_cast<unsigned>(c - '0');
    }
    if (value == 0 || value > 65535) return fail(fmt::format("port out of range: {}", port_text));
    url.port = static_cast<uint16_t>(value);
  }
  if (!target.empty()) {
    for (unsigned char c : target) {
      if (!valid_target_char(c)) return fail("the path has spaces, control bytes or a fragment");
    }
    url.path = target.front() == '?' ? "/" + std::string(target) : std::string(target);
  }
  url.host_header = url.port == 80 ? bracketed(url.host) : url.authority();
  return TargetUrlParse{std::move(url), {}};
}

}  // namespace needle::doctor
