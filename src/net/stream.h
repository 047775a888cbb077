#pragma once
// The connection the data path reads and writes: a TCP socket, plain or with TLS on it
// (docs/decisions/0008-tls-stream.md). The TLS half is an OpenSSL `SSL` bound to the socket's
// descriptor (SSL_set_fd) and driven by readiness waits on the socket, so the socket stays the
// one object every watch looks at: the pool's idle watch and checkout probe, the client abort
// watch and the keep-alive park peek the raw socket, and cancelling the socket (watchdogs)
// cancels a TLS operation too.
//
// The plain path pays one branch per primitive (net/socket_io.h): no coroutine frame of its own.
// Who owns what: the Stream owns the socket and the SSL; the SSL never owns the descriptor.
#include <memory>
#include <string>
#include <system_error>
#include <utility>

#include <asio/ip/tcp.hpp>

#include "net/io_types.h"

typedef struct ssl_st SSL;  // NOLINT: OpenSSL's own spelling, so no OpenSSL header here

namespace needle::net {

struct SslFree {
  void operator()(SSL* ssl) const;
};
using SslHandle = std::unique_ptr<SSL, SslFree>;

// What the access log and metrics want to know about a finished TLS handshake.
struct TlsSessionFacts {
  std::string version;  // "TLSv1.3"
  std::string cipher;   // "TLS_AES_128_GCM_SHA256"
  std::string sni;      // server name the client sent (server side), empty if none
  bool resumed = false;
};

class Stream {
 public:
  explicit Stream(Socket socket) : socket_(std::move(socket)) {}
  // `ssl` must not have a descriptor yet; the stream binds it to the socket's.
  Stream(Socket socket, SslHandle ssl);
  Stream(Stream&&) noexcept = default;
  Stream& operator=(Stream&&) noexcept = default;
  ~Stream() = default;

  Socket& socket() { return socket_; }
  const Socket& socket() const { return socket_; }
  bool is_tls() const { return ssl_ != nullptr; }
  SSL* ssl() const { return ssl_.get(); }
  // Plaintext or TLS records OpenSSL has read from the socket and not handed out yet: a peek at
  // the raw socket does not see them (the TLS reads never read ahead, so this is rare).
  bool has_buffered_input() const;
  TlsSessionFacts tls_facts() const;

  // The socket's own operations. shutdown() first sends a TLS close_notify when the
  // handshake is done (RFC 8446 6.1), without waiting for the peer's.
  void cancel(std::error_code& ec) { socket_.cancel(ec); }
  bool is_open() const { return socket_.is_open(); }
  void close(std::error_code& ec) { socket_.close(ec); }
  void shutdown(asio::socket_base::shutdown_type what, std::error_code& ec);
  asio::ip::tcp::endpoint remote_endpoint(std::error_code& ec) const {
    return socket_.remote_endpoint(ec);
  }

 private:
  Socket socket_;
  SslHandle ssl_;
};

}  // namespace needle::net
