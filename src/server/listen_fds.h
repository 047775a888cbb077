#pragma once
// Listening sockets handed to this process by the LISTEN_FDS protocol of sd_listen_fds(3): by a
// supervisor (systemd socket activation) or by the needle that started this one on SIGUSR2
// (docs/decisions/0009-binary-upgrade.md). An inherited socket whose bound address is a
// configured listener's (or the admin address) is used instead of binding one, so connections
// waiting in its accept queue are served by this process.
#include <optional>
#include <string>
#include <vector>

#include <asio/ip/tcp.hpp>

namespace needle::server {

struct InheritedSocket {
  int fd = -1;
  std::string name;  // LISTEN_FDNAMES entry ("unknown" when absent); for log lines only
  std::optional<asio::ip::tcp::endpoint> endpoint;  // nullopt: not a listening TCP socket
};

// sd_listen_fds(unset_environment=1): when LISTEN_PID is this process, the descriptors
// 3 .. 3+LISTEN_FDS-1, each marked close-on-exec; LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES are
// removed from the environment either way (a child must not take them for its own).
std::vector<InheritedSocket> take_inherited_sockets();

// The address a listening SOCK_STREAM socket is bound to (getsockname); nullopt for anything
// else (not a socket, not listening, not TCP).
std::optional<asio::ip::tcp::endpoint> listening_tcp_endpoint(int fd);

// The inherited sockets this process has not claimed yet. Owns their descriptors.
class InheritedSockets {
 public:
  explicit InheritedSockets(std::vector<InheritedSocket> sockets);
  ~InheritedSockets();
  InheritedSockets(const InheritedSockets&) = delete;
  InheritedSockets& operator=(const InheritedSockets&) = delete;

  // Every unclaimed socket bound to `endpoint`, in the order they were passed; the caller owns
  // them from now on.
  std::vector<int> claim(const asio::ip::tcp::endpoint& endpoint);
  // Closes (with a warning naming each) the sockets no configured address claimed.
  void close_unclaimed();
  size_t size() const { return sockets_.size(); }

 private:
  std::vector<InheritedSocket> sockets_;
};

}  // namespace needle::server
