#include "upstream/upstream_connector.h"

#include <cerrno>
#include <memory>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <asio/experimental/as_tuple.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>

#include "net/socket_io.h"

namespace needle::upstream {
namespace {

using asio::ip::tcp;
using net::use_tuple;

// What the deadline's handler and the connecting coroutine share.
// Race window: the deadline and the connect complete independently and both handlers may be
// queued at once. Whichever runs second must do nothing: the coroutine sets `done` before it
// looks at the result, the deadline handler sets `timed_out` only while !done. The handler may
// run after the coroutine frame is gone, so it touches only this shared object.
struct ConnectRace {
  explicit ConnectRace(const net::Executor& executor) : socket(executor), resolver(executor) {}
  net::Socket socket;
  asio::ip::basic_resolver<tcp, net::Executor> resolver;
  bool done = false;
  bool timed_out = false;
};

// needle itself is short of descriptors or kernel memory (socket(2), connect(2), and the
// resolver's own sockets): the host may be perfectly healthy. Asio reports errno values in its
// own system category, which maps to no std::errc condition, so the values are compared as such.
bool is_local_exhaustion(const std::error_code& ec) {
  if (ec.category() != asio::error::get_system_category()) return false;
  switch (ec.value()) {
    case EMFILE:
    case ENFILE:
    case ENOBUFS:
    case ENOMEM:
      return true;
    default:
      return false;
  }
}

ConnectOutcome failure(Cause cause, std::error_code error) {
  return ConnectOutcome{std::nullopt, cause, error};
}

}  // namespace

net::Task<ConnectOutcome> open_upstream_socket(const config::HostPort& address, Millis timeout) {
  auto executor = co_await asio::this_coro::executor;
  auto race = std::make_shared<ConnectRace>(executor);
  net::Timer deadline(executor, timeout);
  deadline.async_wait([race](std::error_code ec) {
    if (ec || race->done) return;
    race->timed_out = true;
    std::error_code ignored;
    race->resolver.cancel();
    race->socket.close(ignored);  // the pending connect completes with operation_aborted
  });
  auto finish = [&] {
    race->done = true;
    deadline.cancel();
  };

  std::vector<tcp::endpoint> endpoints;
  std::error_code parse_error;
  auto literal = asio::ip::make_address(address.host, parse_error);
  if (!parse_error) {
    endpoints.emplace_back(literal, address.port);
  } else {
    auto [ec, results] =
        co_await race->resolver.async_resolve(address.host, std::to_string(address.port), use_tuple);
    if (ec || results.empty()) {
      finish();
      if (race->timed_out) co_return failure(Cause::resolve_failed, asio::error::timed_out);
      if (is_local_exhaustion(ec)) co_return failure(Cause::local_resource_exhausted, ec);
      co_return failure(Cause::resolve_failed,
                        ec ? ec : std::error_code(asio::error::host_not_found));
    }
    for (const auto& entry : results) endpoints.push_back(entry.endpoint());
  }

  // Each endpoint in turn, the socket opened here rather than by async_connect: when socket(2)
  // fails, asio's range connect reports operation_aborted and the real errno (EMFILE) is lost.
  std::error_code ec;
  for (const auto& endpoint : endpoints) {
    race->socket.open(endpoint.protocol(), ec);
    if (ec) break;  // needle's own trouble: another endpoint would fail the same way
    std::tie(ec) = co_await race->socket.async_connect(endpoint, use_tuple);
    if (!ec || race->timed_out) break;
    std::error_code ignored;
    race->socket.close(ignored);
  }
  finish();
  if (race->timed_out) co_return failure(Cause::connect_timeout, asio::error::timed_out);
  if (ec == asio::error::connection_refused) co_return failure(Cause::connect_refused, ec);
  if (is_local_exhaustion(ec)) co_return failure(Cause::local_resource_exhausted, ec);
  if (ec) co_return failure(Cause::connect_error, ec);

  std::error_code ignored;  // a socket without TCP_NODELAY still works, only slower
  race->socket.set_option(tcp::no_delay(true), ignored);
  // TCP_INQ: response reads report whether they left the receive queue empty, which lets the
  // pool hand the connection out again without a checkout probe (host_pool.cc). Without it
  // (kernels before 4.18) every checkout probes.
  const int one = 1;
  (void)::setsockopt(race->socket.native_handle(), IPPROTO_TCP, TCP_INQ, &one, sizeof one);
  race->socket.non_blocking(true, ec);  // net::write_now needs it
  if (ec) co_return failure(Cause::connect_error, ec);
  co_return ConnectOutcome{std::move(race->socket), Cause::none, {}};
}

}  // namespace needle::upstream
