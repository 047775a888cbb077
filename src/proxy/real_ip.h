#pragma once
// The client address behind trusted proxies (docs/config.md "Client address and
// X-Forwarded-*"), as nginx's realip module with real_ip_recursive on: starting at the peer,
// walk X-Forwarded-For right to left while the hop is in server.trusted_proxies; the first
// untrusted hop is the client. All trusted: the leftmost. An element that is not an address
// ends the walk at the hop before it. No allocation.
#include <string_view>

#include "config/cidr.h"
#include "http/message.h"

namespace needle::proxy {

std::string_view real_client_address(std::string_view peer_ip, bool peer_trusted,
                                     const http::HeaderList& headers,
                                     const config::CidrSet& trusted);

}  // namespace needle::proxy
