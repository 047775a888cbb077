#include "server/listen_fds.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <charconv>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "base/log.h"
#include "net/listener.h"

namespace needle::server {
namespace {

// sd_listen_fds(3): passed descriptors start at 3.
constexpr int kListenFdsStart = 3;

std::optional<long> env_number(const char* name) {
  const char* text = std::getenv(name);
  if (text == nullptr) return std::nullopt;
  long value = 0;
  const std::string_view view(text);
  auto [end, ec] = std::from_chars(view.data(), view.data() + view.size(), value);
  if (ec != std::errc() || end != view.data() + view.size()) return std::nullopt;
  return value;
}

std::vector<std::string> split_names(const char* text) {
  std::vector<std::string> names;
  if (text == nullptr) return names;
  std::string_view rest(text);
  for (;;) {
    const size_t colon = rest.find(':');
    names.emplace_back(rest.substr(0, colon));
    if (colon == std::string_view::npos) break;
    rest.remove_prefix(colon + 1);
  }
  return names;
}

}  // namespace

std::vector<InheritedSocket> take_inherited_sockets() {
  const auto pid = env_number("LISTEN_PID");
  const auto count = env_number("LISTEN_FDS");
  const auto names = split_names(std::getenv("LISTEN_FDNAMES"));
  ::unsetenv("LISTEN_PID");
  ::unsetenv("LISTEN_FDS");
  ::unsetenv("LISTEN_FDNAMES");
  std::vector<InheritedSocket> sockets;
  if (!count) return sockets;
  if (!pid || *pid != ::getpid()) {
    log::warn("server", "LISTEN_FDS={} is for pid {}, not this process ({}): ignored", *count,
              pid ? std::to_string(*pid) : std::string("(unset)"), ::getpid());
    return sockets;
  }
  for (long i = 0; i < *count; ++i) {
    InheritedSocket socket;
    socket.fd = kListenFdsStart + static_cast<int>(i);
    ::fcntl(socket.fd, F_SETFD, FD_CLOEXEC);
    socket.name = static_cast<size_t>(i) < names.size() ? names[i] : "unknown";
    socket.endpoint = listening_tcp_endpoint(socket.fd);
    sockets.push_back(std::move(socket));
  }
  return sockets;
}

std::optional<asio::ip::tcp::endpoint> listening_tcp_endpoint(int fd) {
  int type = 0, listening = 0;
  socklen_t len = sizeof type;
  if (::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0 || type != SOCK_STREAM) {
    return std::nullopt;
  }
  len = sizeof listening;
  if (::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) != 0 || !listening) {
    return std::nullopt;
  }
  sockaddr_storage storage{};
  len = sizeof storage;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&storage), &len) != 0) return std::nullopt;
  if (storage.ss_family != AF_INET && storage.ss_family != AF_INET6) return std::nullopt;
  asio::ip::tcp::endpoint endpoint;
  std::memcpy(endpoint.data(), &storage, len);
  endpoint.resize(len);
  return endpoint;
}

InheritedSockets::InheritedSockets(std::vector<InheritedSocket> sockets)
    : sockets_(std::move(sockets)) {}

InheritedSockets::~InheritedSockets() {
  for (const auto& socket : sockets_) ::close(socket.fd);
}

std::vector<int> InheritedSockets::claim(const asio::ip::tcp::endpoint& endpoint) {
  std::vector<int> claimed;
  std::erase_if(sockets_, [&](const InheritedSocket& socket) {
    if (!socket.endpoint || *socket.endpoint != endpoint) return false;
    claimed.push_back(socket.fd);
    return true;
  });
  return claimed;
}

void InheritedSockets::close_unclaimed() {
  for (const auto& socket : sockets_) {
    log::warn("server", "inherited fd {} ({}, {}) matches no configured address: closed",
              socket.fd, socket.name,
              socket.endpoint ? net::endpoint_string(*socket.endpoint) : "not a TCP listener");
    ::close(socket.fd);
  }
  sockets_.clear();
}

}  // namespace needle::server
