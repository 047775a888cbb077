#pragma once
// The one switch for needle's two reaches into Asio's epoll reactor (docs/decisions/0001 and
// 0004). Everything the data path asks of the reactor goes through two headers, and both are
// compiled against this switch:
//
//   net/receive_queue_hint.h  note_receive_queue_empty / _unknown, next_read_is_speculative,
//                             reactor_vouches_quiet (the pool's checkout)
//   net/draining_read.h       DrainingBuffer, whose read reports "the queue is empty"
//
// With the seam on (NEEDLE_REACTOR_SEAM 1) they read and write the reactor's per-descriptor
// try_speculative_ flag and look at whether the descriptor waits in the scheduler's queue. With
// it off they fall back to what stock Asio does, which is correct without any knowledge of its
// internals: hints do nothing, every read starts with its speculative recv(), and the reactor
// never vouches for a socket, so the pool's checkout always probes (DESIGN.md rule 2).
//
// The seam is on only for the Asio release it was read against (1.22.1) with the epoll reactor
// as the I/O backend. Another Asio version builds with the fallback, and
// tests/unit/net/reactor_seam_test.cc fails loudly (ReactorSeam.IsOnForThisAsio) until someone
// re-reads epoll_reactor.ipp and scheduler.ipp and moves the pin. Defining NEEDLE_NO_REACTOR_SEAM
// (CMake option NEEDLE_REACTOR_SEAM=OFF) forces the fallback.
#include <asio/detail/config.hpp>
#include <asio/version.hpp>

#if !defined(NEEDLE_NO_REACTOR_SEAM) && ASIO_VERSION == 102201 && defined(ASIO_HAS_EPOLL) && \
    !defined(ASIO_HAS_IOCP) && !defined(ASIO_HAS_IO_URING_AS_DEFAULT)
#define NEEDLE_REACTOR_SEAM 1
#else
#define NEEDLE_REACTOR_SEAM 0
#endif

namespace needle::net {

inline constexpr bool kReactorSeam = NEEDLE_REACTOR_SEAM != 0;
// The Asio release the seam was read against, for the loud test's message.
inline constexpr int kReactorSeamAsioVersion = 102201;

}  // namespace needle::net
