#include "upstream/idle_socket_probe.h"

#include <cerrno>

#include <sys/socket.h>
#include <sys/types.h>

namespace needle::upstream {

IdleSocketState peek_idle_socket(int fd) {
  for (;;) {
    char byte;
    ssize_t n = ::recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n > 0) return IdleSocketState::stray_bytes;
    if (n == 0) return IdleSocketState::closed;  // FIN
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return IdleSocketState::quiet;
    return IdleSocketState::closed;  // ECONNRESET, ETIMEDOUT, EBADF, ...
  }
}

}  // namespace needle::upstream
