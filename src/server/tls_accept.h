#pragma once
// The TLS opening of an accepted client on a [listener.tls] listener, before its session starts
// (docs/decisions/0008-tls-stream.md): the first bytes are peeked, and a plain HTTP request gets
// a 400 in plain text and a close (nginx's 497); otherwise the handshake runs under
// handshake_timeout. Each outcome is reported once to the observer (metrics).
#include <memory>
#include <optional>

#include "base/clock.h"
#include "net/io_types.h"
#include "net/stream.h"
#include "proxy/worker_context.h"
#include "tls/server_tls_context.h"
#include "tls/ticket_key_ring.h"

namespace needle::server {

// The ticket keys every worker's listener contexts share (decision 0007, 4), made on first use
// and kept for the life of the process (a reload's contexts use the same ring).
std::shared_ptr<tls::TicketKeyRing> listener_ticket_keys();

// The TLS stream of `socket` with its handshake done, or nullopt (the socket is closed then).
net::Task<std::optional<net::Stream>> accept_tls(net::Socket socket,
                                                 const tls::ServerTlsContext& context,
                                                 Millis handshake_timeout,
                                                 proxy::RequestObserver* observer);

}  // namespace needle::server
