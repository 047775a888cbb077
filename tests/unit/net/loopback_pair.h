#pragma once
// A connected loopback TCP pair for socket tests: `accepted` comes from a listener opened the
// way needle opens its own (net::open_listener: accepted sockets inherit TCP_INQ), `peer` is the
// other end, used blocking by the test.
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <gtest/gtest.h>

#include "net/io_types.h"
#include "net/listener.h"

namespace needle::net {

struct LoopbackPair {
  asio::io_context io{1};
  Socket accepted{io};
  Socket peer{io};

  LoopbackPair() {
    Acceptor acceptor(io);
    EXPECT_FALSE(open_listener(
        acceptor, asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0), false));
    peer.connect(acceptor.local_endpoint());
    acceptor.accept(accepted);
  }
};

}  // namespace needle::net
