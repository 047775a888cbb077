#pragma once
// Listening sockets. Each worker opens its own SO_REUSEPORT listener on every configured
// address, so the kernel spreads connections across workers with no shared accept queue.
#include <optional>
#include <string>
#include <system_error>

#include <asio/ip/tcp.hpp>

#include "config/config.h"
#include "net/io_types.h"

namespace needle::net {

// Resolves a listener/admin address at start-up (blocking getaddrinfo; never on the data path).
std::optional<asio::ip::tcp::endpoint> resolve_endpoint(const config::HostPort& address,
                                                        std::string* error);

// Opens, binds (SO_REUSEADDR + SO_REUSEPORT, TCP_INQ for the accepted sockets) and listens.
std::error_code open_listener(Acceptor& acceptor, const asio::ip::tcp::endpoint& endpoint,
                              bool reuse_port);

// Takes over `fd`, a listening TCP socket (inherited, or a dup of one: docs/decisions/
// 0009-binary-upgrade.md): the acceptor owns it from now on. Sets TCP_INQ as open_listener does.
std::error_code adopt_listener(Acceptor& acceptor, int fd);

// Per accepted client socket: TCP_NODELAY (responses are written in few, whole writes) and
// non-blocking mode (net::write_now).
void tune_accepted_socket(Socket& socket);

std::string endpoint_string(const asio::ip::tcp::endpoint& endpoint);

}  // namespace needle::net
