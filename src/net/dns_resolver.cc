#include "net/dns_resolver.h"

#include <ares.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>

#include <algorithm>
#include <mutex>

#include <fmt/format.h>

namespace needle::net {
namespace {

void init_library_once() {
  static std::once_flag once;
  std::call_once(once, [] { ares_library_init(ARES_LIB_INIT_ALL); });
}

struct Pending {
  bool done = false;
  DnsAnswer answer;
};

std::string address_text(const ares_addrinfo_node& node) {
  char text[INET6_ADDRSTRLEN] = {};
  if (node.ai_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(node.ai_addr);
    inet_ntop(AF_INET, &in->sin_addr, text, sizeof text);
  } else if (node.ai_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(node.ai_addr);
    inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof text);
  }
  return text;
}

void on_addrinfo(void* arg, int status, int /*timeouts*/, ares_addrinfo* result) {
  auto& pending = *static_cast<Pending*>(arg);
  pending.done = true;
  if (status != ARES_SUCCESS) {
    pending.answer.error = ares_strerror(status);
    if (result) ares_freeaddrinfo(result);
    return;
  }
  std::vector<std::string> v4;
  std::vector<std::string> v6;
  std::optional<int> ttl;
  for (const ares_addrinfo_node* node = result ? result->nodes : nullptr; node;
       node = node->ai_next) {
    std::string text = address_text(*node);
    if (text.empty()) continue;
    (node->ai_family == AF_INET ? v4 : v6).push_back(std::move(text));
    if (node->ai_ttl > 0) ttl = ttl ? std::min(*ttl, node->ai_ttl) : node->ai_ttl;
  }
  if (result) ares_freeaddrinfo(result);
  auto& chosen = v4.empty() ? v6 : v4;
  std::sort(chosen.begin(), chosen.end());
  chosen.erase(std::unique(chosen.begin(), chosen.end()), chosen.end());
  pending.answer.addresses = std::move(chosen);
  if (ttl) pending.answer.ttl = Millis(int64_t{*ttl} * 1000);
  if (pending.answer.addresses.empty()) pending.answer.error = "no address in the answer";
}

}  // namespace

struct DnsResolver::Impl {
  ares_channel channel = nullptr;
  ~Impl() {
    if (channel) ares_destroy(channel);
  }
};

DnsResolver::DnsResolver(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
DnsResolver::~DnsResolver() = default;

std::unique_ptr<DnsResolver> DnsResolver::create(const std::optional<config::HostPort>& server,
                                                 std::string* error) {
  init_library_once();
  auto impl = std::make_unique<Impl>();
  ares_options options{};
  options.timeout = 500;  // per try, milliseconds (ARES_OPT_TIMEOUTMS)
  options.tries = 2;
  if (int rc = ares_init_options(&impl->channel, &options, ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES);
      rc != ARES_SUCCESS) {
    if (error) *error = fmt::format("c-ares init: {}", ares_strerror(rc));
    return nullptr;
  }
  if (server) {
    const std::string csv = server->to_string();
    if (int rc = ares_set_servers_ports_csv(impl->channel, csv.c_str()); rc != ARES_SUCCESS) {
      if (error) *error = fmt::format("resolver {}: {}", csv, ares_strerror(rc));
      return nullptr;
    }
  }
  return std::unique_ptr<DnsResolver>(new DnsResolver(std::move(impl)));
}

DnsAnswer DnsResolver::resolve(const std::string& name, Millis timeout) {
  Pending pending;
  ares_addrinfo_hints hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  ares_getaddrinfo(impl_->channel, name.c_str(), nullptr, &hints, on_addrinfo, &pending);
  const TimePoint give_up = SteadyClock::instance().now() + timeout;
  while (!pending.done) {
    const auto left = std::chrono::duration_cast<std::chrono::microseconds>(
        give_up - SteadyClock::instance().now());
    if (left.count() <= 0) {
      ares_cancel(impl_->channel);  // runs the callback with ARES_ECANCELLED
      break;
    }
    // poll, not select: c-ares' sockets may be above FD_SETSIZE in a busy process.
    ares_socket_t sockets[ARES_GETSOCK_MAXNUM];
    const int mask = ares_getsock(impl_->channel, sockets, ARES_GETSOCK_MAXNUM);
    std::vector<pollfd> polled;
    for (int i = 0; i < ARES_GETSOCK_MAXNUM; ++i) {
      short events = 0;
      if (ARES_GETSOCK_READABLE(mask, i)) events |= POLLIN;
      if (ARES_GETSOCK_WRITABLE(mask, i)) events |= POLLOUT;
      if (events != 0) polled.push_back(pollfd{sockets[i], events, 0});
    }
    timeval most{static_cast<time_t>(left.count() / 1000000),
                 static_cast<suseconds_t>(left.count() % 1000000)};
    timeval wait{};
    const timeval* tv = ares_timeout(impl_->channel, &most, &wait);
    const int wait_ms = static_cast<int>(tv->tv_sec * 1000 + (tv->tv_usec + 999) / 1000);
    const int ready = ::poll(polled.data(), polled.size(), wait_ms);
    if (ready <= 0) {
      ares_process_fd(impl_->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);  // timeouts
      continue;
    }
    for (const pollfd& p : polled) {
      const bool readable = (p.revents & (POLLIN | POLLERR | POLLHUP)) != 0;
      const bool writable = (p.revents & (POLLOUT | POLLERR)) != 0;
      ares_process_fd(impl_->channel, readable ? p.fd : ARES_SOCKET_BAD,
                      writable ? p.fd : ARES_SOCKET_BAD);
    }
  }
  if (!pending.done) pending.answer.error = "timed out";
  return std::move(pending.answer);
}

}  // namespace needle::net
