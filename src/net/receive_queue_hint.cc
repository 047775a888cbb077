#include "net/receive_queue_hint.h"

#if NEEDLE_REACTOR_SEAM

#include <type_traits>

#include <asio/detail/op_queue.hpp>
#include <asio/detail/reactor.hpp>
#include <asio/detail/scheduler_operation.hpp>

static_assert(ASIO_VERSION == 102201, "the reactor seam was read against Asio 1.22.1");
static_assert(std::is_same_v<asio::detail::reactor, asio::detail::epoll_reactor>,
              "the reactor seam relies on the edge-triggered epoll reactor");

namespace needle::net {
namespace {

using Reactor = asio::detail::epoll_reactor;
using DescriptorState = Reactor::descriptor_state;
using SpeculativeFlags = bool[Reactor::max_ops];
using SpeculativeFlagsMember = SpeculativeFlags DescriptorState::*;

// Defined by the explicit instantiation below, the one place that may name the private member.
// C++ does not access-check names in an explicit instantiation ([temp.spec.general]/6).
SpeculativeFlagsMember speculative_flags_member();

template <SpeculativeFlagsMember Member>
struct ExposeSpeculativeFlags {
  friend SpeculativeFlagsMember speculative_flags_member() { return Member; }
};
template struct ExposeSpeculativeFlags<&DescriptorState::try_speculative_>;

// basic_socket::impl_ is protected: a derived class may form a pointer to it.
struct SocketInternals : Socket {
  static DescriptorState* descriptor(Socket& socket) {
    return (socket.*(&SocketInternals::impl_)).get_implementation().reactor_data_;
  }
};

bool* read_flag(DescriptorState* state) {
  return &(state->*speculative_flags_member())[Reactor::read_op];
}

// Whether the scheduler holds `state` in its queue: epoll_reactor::run pushes the descriptor of
// every harvested event there (the scheduler appends its own task behind them, so a queued one
// always has a successor), and scheduler::do_run_one pops it, clearing the link, just before it
// runs descriptor_state::perform_io. descriptor_state derives privately from
// scheduler_operation; the C-style cast is the conversion C++ allows to an inaccessible base
// ([expr.cast]/4), and op_queue_access is Asio's public accessor of the link.
bool waits_in_scheduler_queue(DescriptorState* state) {
  auto* operation = (asio::detail::scheduler_operation*)state;  // NOLINT: private base
  return asio::detail::op_queue_access::next(operation) != nullptr;
}

}  // namespace

void note_receive_queue_empty(Socket& socket) {
  if (DescriptorState* state = SocketInternals::descriptor(socket)) *read_flag(state) = false;
}

void note_receive_queue_unknown(Socket& socket) {
  if (DescriptorState* state = SocketInternals::descriptor(socket)) *read_flag(state) = true;
}

bool next_read_is_speculative(Socket& socket) {
  DescriptorState* state = SocketInternals::descriptor(socket);
  return state == nullptr || *read_flag(state);  // nullptr: not open, or not registered yet
}

bool reactor_vouches_quiet(Socket& socket) {
  DescriptorState* state = SocketInternals::descriptor(socket);
  return state != nullptr && !*read_flag(state) && !waits_in_scheduler_queue(state);
}

}  // namespace needle::net

#else  // the fallback: stock Asio behaviour (net/reactor_seam.h)

namespace needle::net {

void note_receive_queue_empty(Socket&) {}
void note_receive_queue_unknown(Socket&) {}
bool next_read_is_speculative(Socket&) {
  return true;
}
bool reactor_vouches_quiet(Socket&) {
  return false;
}

}  // namespace needle::net

#endif
