#pragma once
// Tells Asio's epoll reactor that a socket's receive queue is known to be empty, so the next
// async read on it is queued for the next EPOLLIN edge instead of first trying a recv() that
// would return EAGAIN (the speculative read Asio 1.22 makes at the start of every read).
//
// Call it only right after a synchronous check on this thread that saw the queue empty with no
// FIN and no error pending (a recv(MSG_PEEK | MSG_DONTWAIT) that returned EAGAIN), with no
// scheduler turn in between. Then every byte, FIN or RST that arrives later raises a new edge,
// and the reactor, on that edge, switches speculative reads back on and performs any queued read.
// A hint given later than the check could hide an edge the reactor already consumed (its read
// would then wait for a second edge that may never come), so the hint belongs next to the check.
//
// Asio keeps this state in a private member of the reactor's per-descriptor data; it is reached
// through an explicit template instantiation, which C++ exempts from access checking
// ([temp.spec.general]/6). Pinned to the Asio version (static_assert in the .cc);
// docs/decisions/0001-draining-reads.md.
#include <asio/ip/tcp.hpp>

#include "net/io_types.h"

namespace needle::net {

void note_receive_queue_empty(Socket& socket);

// The opposite, always safe: the next read tries a recv() first, as Asio's stock reads do. For a
// read that must see a RST queued behind bytes a draining read took (net/draining_read.h).
void note_receive_queue_unknown(Socket& socket);

// Whether the next async read on `socket` starts with a speculative recv(). false: since the
// flag was last turned off (a hint above, or a draining read that emptied the queue), the
// reactor has harvested no event on the socket; the pool's checkout relies on that
// (upstream/host_pool.cc).
bool next_read_is_speculative(Socket& socket);

}  // namespace needle::net
