#pragma once
// Protocol upgrades through the proxy (RFC 9110 7.8, RFC 6455 4): which Upgrade offers of a
// request are forwarded, and the heads that carry them (docs/config.md "Upgrade and
// WebSocket"). Pure functions over parsed heads; the tunnel after a 101 is src/proxy/tunnel.h.
#include <span>
#include <string>
#include <string_view>

#include "http/message.h"

namespace needle::http {

// RFC 9110 7.8: protocol-name ["/" protocol-version], both tokens.
bool is_protocol_name(std::string_view text);
// "h2c" (any case, any version): never forwarded. HTTP/2 over cleartext is not something needle
// speaks, and a tunnel opened by it would carry requests the proxy never sees (RFC 9113 3.1
// removed the upgrade; nginx drops it too).
bool is_h2c(std::string_view protocol);

enum class UpgradeDecision : uint8_t {
  none,     // the request carries no Upgrade field
  removed,  // Upgrade is dropped (as every hop-by-hop field): the request goes on as HTTP/1.1
  tunnel,   // forwarded with Connection: upgrade and `protocols`; a 101 opens a tunnel
};

struct UpgradeOffer {
  UpgradeDecision decision = UpgradeDecision::none;
  std::string protocols;  // tunnel: the offered protocols the route allows, "a, b"
};

// What to do with a request's Upgrade field, given the route's allowed protocol names
// (lower-case; a name without a version allows every version). Removed, not tunnelled:
// HTTP/1.0 requests (RFC 9110 7.8: MUST ignore), Upgrade not listed in Connection (7.8: the
// sender MUST list it), requests with a body (a tunnel starts after the request; needle does
// not hold a body back for it), and when no offered protocol is allowed (h2c never is).
UpgradeOffer decide_upgrade(const RequestHead& head, std::span<const std::string> allowed);

// A 101's Upgrade field names one protocol the request offered (RFC 9110 15.2.2: the server
// switches to one of the protocols listed in the request's Upgrade).
bool switches_to_offered(const ResponseHead& response, std::string_view offered);

// The 101 head for the client: the upstream's fields without hop-by-hop ones (RFC 9110 7.6.1),
// then "Connection: upgrade" and the upstream's Upgrade value.
void write_switching_response_head(const ResponseHead& head, std::string& out);

}  // namespace needle::http
