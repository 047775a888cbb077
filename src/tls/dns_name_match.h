#pragma once
// Host name matching for SNI selection (RFC 6125 6.4): exact, case-insensitive, or a wildcard
// `*.example.com` as the whole left-most label, which matches exactly one label (6.4.3): it
// matches `api.example.com`, not `example.com` and not `a.b.example.com`.
#include <string_view>

namespace needle::tls {

// `pattern` is a SAN dNSName (lower case); `host` is the SNI as sent (any case, no trailing
// dot expected; one is ignored).
bool dns_name_matches(std::string_view pattern, std::string_view host);

}  // namespace needle::tls
