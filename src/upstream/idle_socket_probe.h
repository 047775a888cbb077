#pragma once
// One non-blocking look at an idle socket: recv(fd, 1 byte, MSG_PEEK | MSG_DONTWAIT). Nothing is
// consumed; EAGAIN is the only answer that lets the connection be reused (DESIGN.md rule 2).
#include "upstream/pool_types.h"

namespace needle::upstream {

IdleSocketState peek_idle_socket(int fd);

}  // namespace needle::upstream
