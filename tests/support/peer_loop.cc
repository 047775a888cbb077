#include "support/peer_loop.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <string>
#include <system_error>

namespace needle::test {
namespace {

timespec to_timespec(PeerLoop::Clock::duration d) {
  if (d < PeerLoop::Clock::duration::zero()) d = PeerLoop::Clock::duration::zero();
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(d).count();
  return timespec{static_cast<time_t>(ns / 1000000000), static_cast<long>(ns % 1000000000)};
}

}  // namespace

PeerLoop::PeerLoop(std::string_view what) {
  const std::string name(what);
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (listen_fd_ < 0) throw std::system_error(errno, std::generic_category(), name + " socket");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(listen_fd_, 512) != 0 ||
      ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    const int err = errno;
    ::close(listen_fd_);
    throw std::system_error(err, std::generic_category(), name + " bind/listen");
  }
  port_ = ntohs(addr.sin_port);
  wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd_ < 0) {
    const int err = errno;
    ::close(listen_fd_);
    throw std::system_error(err, std::generic_category(), name + " eventfd");
  }
}

PeerLoop::~PeerLoop() {
  ::close(listen_fd_);
  ::close(wake_fd_);
}

void PeerLoop::wake() {
  const uint64_t one = 1;
  const ssize_t ignored = ::write(wake_fd_, &one, sizeof one);
  (void)ignored;
}

bool PeerLoop::wait(std::vector<pollfd>& fds, std::optional<Clock::time_point> deadline) {
  fds[0] = {wake_fd_, POLLIN, 0};
  fds[1] = {listen_fd_, POLLIN, 0};
  timespec ts{};
  if (deadline) ts = to_timespec(*deadline - Clock::now());
  const int n = ::ppoll(fds.data(), fds.size(), deadline ? &ts : nullptr, nullptr);
  if (n < 0 && errno != EINTR) return false;
  if (n < 0) {
    for (auto& p : fds) p.revents = 0;  // interrupted: nothing is ready
  }
  if (fds[0].revents & POLLIN) {
    uint64_t count;
    const ssize_t ignored = ::read(wake_fd_, &count, sizeof count);
    (void)ignored;
  }
  return true;
}

int PeerLoop::accept() {
  const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
  if (fd < 0) return -1;
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

}  // namespace needle::test
