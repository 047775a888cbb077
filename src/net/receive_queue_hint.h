#pragma once
// What needle tells Asio's epoll reactor about a socket's receive queue, and asks it back.
// Half of the reactor seam (net/reactor_seam.h has the switch and the fallback; with the seam
// off every function here answers as stock Asio behaves: no hint, reads speculative, nothing
// vouched for).
//
// The reactor keeps, per socket, whether the next async read starts with a speculative recv()
// (try_speculative_[read_op]). It turns the flag on whenever it performs the socket's harvested
// EPOLLIN/EPOLLERR/EPOLLHUP edge (descriptor_state::perform_io), queued read or not; needle turns
// it off where the queue is known to be empty (here, and net/draining_read.h).
//
// note_receive_queue_empty: call it only right after a synchronous check on this thread that saw
// the queue empty with no FIN and no error pending (a recv(MSG_PEEK | MSG_DONTWAIT) that returned
// EAGAIN), with no scheduler turn in between. Then every byte, FIN or RST that arrives later
// raises a new edge, and the reactor, on that edge, switches speculative reads back on and
// performs any queued read. A hint given later than the check could hide an edge the reactor
// already performed (its read would then wait for a second edge that may never come), so the
// hint belongs next to the check. docs/decisions/0001-draining-reads.md.
//
// All of it assumes what needle's workers do: one thread runs the socket's io_context, and the
// calls are made on that thread.
#include <asio/ip/tcp.hpp>

#include "net/io_types.h"
#include "net/reactor_seam.h"

namespace needle::net {

void note_receive_queue_empty(Socket& socket);

// The opposite, always safe: the next read tries a recv() first, as Asio's stock reads do. For a
// read that must see a RST queued behind bytes a draining read took (net/draining_read.h).
void note_receive_queue_unknown(Socket& socket);

// Whether the next async read on `socket` starts with a speculative recv(). true with the seam
// off, and for a socket not (yet) registered with the reactor.
bool next_read_is_speculative(Socket& socket);

// Whether the reactor vouches that nothing (no byte, FIN or error) reached the socket before the
// last epoll_wait, since needle last saw its queue empty: the flag is still off, and no event
// harvested for the socket is waiting to be performed. The second half matters because the
// reactor turns the flag on only when it performs the event, after the handlers of the events
// harvested before it in the same epoll_wait batch; a handler among those (a session checking
// out a connection) would otherwise see an off flag with a FIN already queued
// (docs/decisions/0004-checkout-probe-from-the-reactor.md, "Same batch"). false with the seam off.
bool reactor_vouches_quiet(Socket& socket);

}  // namespace needle::net
