#include "net/listener.h"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cstring>

#include <fmt/format.h>

namespace needle::net {

std::optional<asio::ip::tcp::endpoint> resolve_endpoint(const config::HostPort& address,
                                                        std::string* error) {
  std::error_code ec;
  const auto ip = asio::ip::make_address(address.host, ec);
  if (!ec) return asio::ip::tcp::endpoint(ip, address.port);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* result = nullptr;
  const int rc = ::getaddrinfo(address.host.c_str(), nullptr, &hints, &result);
  if (rc != 0 || result == nullptr) {
    if (error) *error = fmt::format("cannot resolve '{}': {}", address.host, gai_strerror(rc));
    return std::nullopt;
  }
  asio::ip::tcp::endpoint endpoint;
  if (result->ai_family == AF_INET) {
    const auto* sin = reinterpret_cast<const sockaddr_in*>(result->ai_addr);
    endpoint = asio::ip::tcp::endpoint(
        asio::ip::address_v4(ntohl(sin->sin_addr.s_addr)), address.port);
  } else {
    const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(result->ai_addr);
    asio::ip::address_v6::bytes_type bytes;
    std::memcpy(bytes.data(), sin6->sin6_addr.s6_addr, bytes.size());
    endpoint = asio::ip::tcp::endpoint(asio::ip::address_v6(bytes), address.port);
  }
  ::freeaddrinfo(result);
  return endpoint;
}

std::error_code open_listener(Acceptor& acceptor, const asio::ip::tcp::endpoint& endpoint,
                              bool reuse_port) {
  std::error_code ec;
  acceptor.open(endpoint.protocol(), ec);
  if (ec) return ec;
  acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (ec) return ec;
  const int one = 1;
  if (reuse_port) {
    if (::setsockopt(acceptor.native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) {
      return {errno, std::system_category()};
    }
  }
  // Accepted sockets inherit TCP_INQ: their reads report the bytes left behind, which lets
  // request-head reads skip Asio's speculative recv (net/draining_read.h). Without it (kernels
  // before 4.18) those reads behave like any other.
  (void)::setsockopt(acceptor.native_handle(), IPPROTO_TCP, TCP_INQ, &one, sizeof one);
  acceptor.bind(endpoint, ec);
  if (ec) return ec;
  acceptor.listen(4096, ec);
  if (ec) return ec;
  // Registered again as a descriptor that may be shared: a listening socket may live on in
  // another process (SIGUSR2 hands it on, docs/decisions/0009-binary-upgrade.md), and Asio
  // removes only such descriptors from its epoll set on close (a plain close() leaves an
  // open file description registered, and its events keep waking this reactor).
  const int fd = acceptor.release(ec);
  if (ec) return ec;
  acceptor.assign(endpoint.protocol(), fd, ec);
  return ec;
}

std::error_code adopt_listener(Acceptor& acceptor, int fd) {
  sockaddr_storage storage{};
  socklen_t len = sizeof storage;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&storage), &len) != 0) {
    return {errno, std::system_category()};
  }
  const int one = 1;
  (void)::setsockopt(fd, IPPROTO_TCP, TCP_INQ, &one, sizeof one);  // as open_listener
  std::error_code ec;
  acceptor.assign(storage.ss_family == AF_INET6 ? asio::ip::tcp::v6() : asio::ip::tcp::v4(), fd,
                  ec);
  return ec;
}

void tune_accepted_socket(Socket& socket) {
  std::error_code ignored;
  socket.set_option(asio::ip::tcp::no_delay(true), ignored);
  socket.non_blocking(true, ignored);  // for write_now (socket_io.h); async operations unchanged
}

std::string endpoint_string(const asio::ip::tcp::endpoint& endpoint) {
  if (endpoint.address().is_v6()) {
    return fmt::format("[{}]:{}", endpoint.address().to_string(), endpoint.port());
  }
  return fmt::format("{}:{}", endpoint.address().to_string(), endpoint.port());
}

}  // namespace needle::net
