#include "upstream/upstream_connector.h"

#include <memory>
#include <string>
#include <vector>

#include <asio/experimental/as_tuple.hpp>
#include <asio/connect.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>

namespace needle::upstream {
namespace {

using asio::ip::tcp;
constexpr auto use_tuple = asio::experimental::as_tuple(asio::use_awaitable);

// What the deadline's handler and the connecting coroutine share.
// Race window: the deadline and the connect complete independently and both handlers may be
// queued at once. Whichever runs second must do nothing: the coroutine sets `done` before it
// looks at the result, the deadline handler sets `timed_out` only while !done. The handler may
// run after the coroutine frame is gone, so it touches only this shared object.
struct ConnectRace {
  explicit ConnectRace(const asio::any_io_executor& executor)
      : socket(executor), resolver(executor) {}
  tcp::socket socket;
  tcp::resolver resolver;
  bool done = false;
  bool timed_out = false;
};

}  // namespace

asio::awaitable<ConnectOutcome> open_upstream_socket(const config::HostPort& address,
                                                     Millis timeout) {
  auto executor = co_await asio::this_coro::executor;
  auto race = std::make_shared<ConnectRace>(executor);
  asio::steady_timer deadline(executor, timeout);
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
      std::error_code error = race->timed_out ? std::error_code(asio::error::timed_out)
                              : ec            ? ec
                                              : std::error_code(asio::error::host_not_found);
      co_return ConnectOutcome{std::nullopt, Cause::resolve_failed, error};
    }
    for (const auto& entry : results) endpoints.push_back(entry.endpoint());
  }

  auto [ec, endpoint] = co_await asio::async_connect(race->socket, endpoints, use_tuple);
  finish();
  if (race->timed_out) {
    co_return ConnectOutcome{std::nullopt, Cause::connect_timeout, asio::error::timed_out};
  }
  if (ec == asio::error::connection_refused) {
    co_return ConnectOutcome{std::nullopt, Cause::connect_refused, ec};
  }
  if (ec) co_return ConnectOutcome{std::nullopt, Cause::connect_error, ec};

  std::error_code ignored;  // a socket without TCP_NODELAY still works, only slower
  race->socket.set_option(tcp::no_delay(true), ignored);
  co_return ConnectOutcome{std::move(race->socket), Cause::none, {}};
}

}  // namespace needle::upstream
