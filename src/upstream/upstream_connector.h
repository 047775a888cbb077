#pragma once
// Opens one TCP connection to an upstream host: literal IPs are used as is, names go through
// the resolver; the whole attempt (resolve + connect) is bounded by `timeout`. TCP_NODELAY and
// non-blocking mode (net::write_now) are set on success. Errors are values: the cause says which
// step failed, and local_resource_exhausted says needle itself ran out of fds or buffers (the
// error keeps the errno, e.g. "Too many open files"), which is no fault of the host.
#include <optional>
#include <system_error>

#include <asio/ip/tcp.hpp>

#include "base/cause.h"
#include "base/clock.h"
#include "config/config.h"
#include "net/io_types.h"

namespace needle::upstream {

struct ConnectOutcome {
  std::optional<net::Socket> socket;  // set iff cause == Cause::none
  Cause cause = Cause::none;  // connect_refused / connect_timeout / connect_error /
                              // resolve_failed / local_resource_exhausted
  std::error_code error;
};

net::Task<ConnectOutcome> open_upstream_socket(const config::HostPort& address, Millis timeout);

}  // namespace needle::upstream
