#pragma once
// The URL doctor probes: plain http only ("http://HOST[:PORT][/PATH[?QUERY]]"; the scheme may be
// left out). https is refused with a reason: doctor measures the plain-HTTP hop a proxy uses.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace needle::doctor {

struct TargetUrl {
  std::string host;  // DNS name or IP literal (IPv6 without brackets)
  uint16_t port = 80;
  std::string path = "/";         // origin-form request target, query included
  std::string host_header;        // "host" or "host:port" (RFC 9110 7.2), IPv6 bracketed
  std::string authority() const;  // "host:port", IPv6 bracketed
};

struct TargetUrlParse {
  std::optional<TargetUrl> url;
  std::string error;  // set iff !url
};

TargetUrlParse parse_target_url(std::string_view text);

}  // namespace needle::doctor
