#include "net/receive_queue_hint.h"

#include <type_traits>

#include <asio/detail/reactor.hpp>
#include <asio/version.hpp>

static_assert(ASIO_VERSION == 102201,
              "receive_queue_hint.cc reaches an Asio 1.22.1 internal; re-check it for this "
              "version");
static_assert(std::is_same_v<asio::detail::reactor, asio::detail::epoll_reactor>,
              "the receive-queue hint relies on the edge-triggered epoll reactor");

namespace needle::net {
namespace {

using Reactor = asio::detail::epoll_reactor;
using DescriptorState = Reactor::descriptor_state;
using SpeculativeFlags = bool[Reactor::max_ops];
using SpeculativeFlagsMember = SpeculativeFlags DescriptorState::*;

// Defined by the explicit instantiation below, the one place that may name the private member.
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

bool* read_flag(Socket& socket) {
  DescriptorState* state = SocketInternals::descriptor(socket);
  if (state == nullptr) return nullptr;  // not open, or not registered with the reactor yet
  return &(state->*speculative_flags_member())[Reactor::read_op];
}

}  // namespace

void note_receive_queue_empty(Socket& socket) {
  if (bool* flag = read_flag(socket)) *flag = false;
}

void note_receive_queue_unknown(Socket& socket) {
  if (bool* flag = read_flag(socket)) *flag = true;
}

bool next_read_is_speculative(Socket& socket) {
  bool* flag = read_flag(socket);
  return flag == nullptr || *flag;
}

}  // namespace needle::net
