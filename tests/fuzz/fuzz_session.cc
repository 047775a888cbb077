// A whole DownstreamSession, fuzzed: a client sends the input's request bytes to one session,
// which proxies them through the real pool and Exchange to a scripted upstream in this process,
// over loopback TCP, on one io_context (one thread, as a worker runs them). Input:
//
//   <client bytes>[\n#upstream#\n<response 1>[\n#next#\n<response 2>...]]
//
// The client writes its bytes in 1-3 pieces (cut by a hash, see fuzz_common.h), half-closes and
// reads until needle closes. The upstream answers each complete request it parses with the next
// response, raw (responses are shared by all its connections, in order); an empty response
// closes the connection without an answer, and the connection closes after the last response.
// Without an upstream part every request gets "200 ok". Timeouts are 20 ms, so an exchange that
// stalls anyway ends quickly.
//
// Checks:
//   - the session ends, and after the pools drain no operation is left pending (no leaked
//     timer, wait or coroutine);
//   - every byte needle sent upstream parses as requests (RequestParser, as strict as any
//     upstream): no smuggled or malformed request, whatever the client sent;
//   - what the client received parses as responses (ResponseParser, HEAD-aware), at most one
//     final response per request the client sent (no response desync), the last one possibly
//     cut off (needle closes when the upstream dies mid-body);
//   - every finished record has a status, and every 5xx a cause (the access-log contract).
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/post.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/clock.h"
#include "base/log.h"
#include "config/config.h"
#include "fuzz_common.h"
#include "http/parser.h"
#include "proxy/cluster_runtime.h"
#include "proxy/downstream_session.h"
#include "proxy/worker_context.h"

namespace {

using asio::ip::tcp;
namespace net = needle::net;
using namespace std::chrono_literals;
using needle::http::ParseStop;

constexpr std::string_view kUpstreamMarker = "\n#upstream#\n";
constexpr std::string_view kNextMarker = "\n#next#\n";
constexpr std::string_view kDefaultResponse = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
constexpr size_t kMaxClientBytes = 1 << 20;  // what the client keeps of needle's answer

const auto kTuple = asio::experimental::as_tuple(asio::use_awaitable_t<net::Executor>{});

struct Script {
  std::string_view client;
  std::vector<std::string_view> responses;
};

Script split_script(std::string_view in) {
  Script s;
  const size_t marker = in.find(kUpstreamMarker);
  if (marker == std::string_view::npos) {
    s.client = in;
    s.responses.assign(16, kDefaultResponse);
    return s;
  }
  s.client = in.substr(0, marker);
  std::string_view rest = in.substr(marker + kUpstreamMarker.size());
  for (;;) {
    const size_t next = rest.find(kNextMarker);
    s.responses.push_back(rest.substr(0, next));
    if (next == std::string_view::npos) break;
    rest.remove_prefix(next + kNextMarker.size());
  }
  return s;
}

needle::http::ParserLimits unlimited() {
  needle::http::ParserLimits big;
  big.max_request_line = 1 << 20;
  big.max_header_bytes = 1 << 20;
  big.max_header_count = 1 << 16;
  big.max_body_bytes = ~uint64_t{0};
  return big;
}

// Small limits (so 413/414/431 are reachable) and short timeouts (so stalls end quickly); a
// retry buffer of 1 KiB so larger bodies take the streaming path.
std::shared_ptr<const needle::config::Config> make_config(uint16_t upstream_port) {
  needle::config::Config c;
  c.source = "fuzz";
  c.server.workers = 1;
  c.server.header_timeout = 20ms;
  c.server.body_timeout = 20ms;
  c.server.client_idle_timeout = 20ms;
  c.server.send_timeout = 20ms;
  c.server.max_request_line = 512;
  c.server.max_header_bytes = 2048;
  c.server.max_header_count = 24;
  c.server.max_body_bytes = 8192;
  c.server.access_log = "off";
  c.admin.address.reset();
  needle::config::RouteConfig other;
  other.host = "other.test";
  other.path_prefix = "/none";
  other.cluster = "app";
  c.routes.push_back(other);  // a route that does not match everything (404 no_route)
  needle::config::RouteConfig route;
  route.path_prefix = "/";
  route.cluster = "app";
  route.host = std::nullopt;
  c.routes.push_back(route);
  needle::config::ClusterConfig cluster;
  cluster.name = "app";
  cluster.hosts.push_back({"127.0.0.1", upstream_port});
  cluster.connect_timeout = 20ms;
  cluster.response_timeout = 20ms;
  cluster.retry_buffer_bytes = 1024;
  cluster.retry_budget_min_per_second = 1000;
  c.clusters.push_back(cluster);
  return std::make_shared<const needle::config::Config>(std::move(c));
}

struct Observer final : needle::proxy::RequestObserver {
  void on_request_done(const needle::observe::RequestRecord& record) override {
    ++records;
    if (record.status >= 500 && record.status != 0) {
      if (record.cause == needle::Cause::none) {
        std::fprintf(stderr, "record: status %d without a cause\n", record.status);
      }
      FUZZ_CHECK(record.cause != needle::Cause::none);
    }
  }
  int records = 0;
};

struct Run {
  explicit Run(const Script& s) : script(s) {}
  const Script& script;
  size_t next_response = 0;
  int upstream_connections_open = 0;
  size_t upstream_requests = 0;
  bool session_done = false;
  bool client_done = false;
  std::string received;  // by the client, from needle
};

// One upstream connection: parse what needle sends; answer each complete request with the next
// response; close after the last one, at an empty one, or when needle closes.
net::Task<void> serve_upstream(net::Socket socket, Run& run) {
  ++run.upstream_connections_open;
  needle::http::RequestParser parser(unlimited());
  std::vector<std::string_view> spans;
  std::string pending;
  char buf[4096];
  bool open = true;
  while (open) {
    auto [ec, n] = co_await socket.async_read_some(asio::buffer(buf), kTuple);
    if (ec) break;
    pending.append(buf, n);
    size_t at = 0;
    for (;;) {
      spans.clear();
      const auto r = parser.feed(std::string_view(pending).substr(at), spans);
      at += r.consumed;
      if (r.stop == ParseStop::error) {
        // HTTP/1.0 without Host: needle sends "Host:" empty (RFC 9112 3.2 allows it from a
        // client); RequestParser refuses an empty Host as a server. Not a disagreement on
        // where requests end (fuzz_request_roundtrip makes the same exception).
        if (parser.error().cause == "invalid_host" &&
            pending.find(" HTTP/1.1\r\nHost: \r\n") != std::string::npos) {
          open = false;
          break;
        }
        std::fprintf(stderr, "upstream: needle sent a request that does not parse: %d %s\n",
                     parser.error().status, parser.error().cause.c_str());
      }
      FUZZ_CHECK(r.stop != ParseStop::error);
      if (r.stop == ParseStop::head_complete) continue;
      if (r.stop != ParseStop::message_complete) break;
      ++run.upstream_requests;
      parser.reset();
      if (run.next_response >= run.script.responses.size()) {
        open = false;
        break;
      }
      const std::string_view response = run.script.responses[run.next_response++];
      if (response.empty()) {  // an empty response: close without answering
        open = false;
        break;
      }
      auto [wec, wn] = co_await asio::async_write(socket, asio::buffer(response), kTuple);
      if (wec || run.next_response == run.script.responses.size()) {
        open = false;  // the last response: close after it, as an upstream going away would
        break;
      }
    }
    pending.erase(0, at);
  }
  std::error_code ignored;
  socket.shutdown(asio::socket_base::shutdown_both, ignored);
  socket.close(ignored);
  --run.upstream_connections_open;
}

net::Task<void> accept_upstream(net::Acceptor& acceptor, Run& run) {
  for (;;) {
    auto [ec, socket] = co_await acceptor.async_accept(kTuple);
    if (ec) co_return;
    asio::co_spawn(acceptor.get_executor(), serve_upstream(std::move(socket), run),
                   [](std::exception_ptr e) {
                     if (e) std::rethrow_exception(e);
                   });
  }
}

net::Task<void> client_write(net::Socket& socket, std::string_view bytes) {
  for (std::string_view piece : needle::fuzz::split_input(bytes, needle::fuzz::fnv1a(bytes))) {
    auto [ec, n] = co_await asio::async_write(socket, asio::buffer(piece), kTuple);
    if (ec) co_return;
    // Let the session read this piece before the next one arrives.
    for (int i = 0; i < 4; ++i) {
      co_await asio::post(socket.get_executor(), asio::use_awaitable_t<net::Executor>{});
    }
  }
  std::error_code ignored;
  socket.shutdown(asio::socket_base::shutdown_send, ignored);
}

net::Task<void> client_read(net::Socket& socket, Run& run) {
  char buf[8192];
  for (;;) {
    auto [ec, n] = co_await socket.async_read_some(asio::buffer(buf), kTuple);
    if (ec) break;
    if (run.received.size() < kMaxClientBytes) run.received.append(buf, n);
  }
  run.client_done = true;
}

// The requests in the client's bytes as needle's own parser (same limits) sees them: whether
// each is HEAD. Parsing stops at the first error; that request gets an error response.
std::vector<bool> client_requests(std::string_view bytes) {
  needle::http::ParserLimits limits;
  limits.max_request_line = 512;
  limits.max_header_bytes = 2048;
  limits.max_header_count = 24;
  limits.max_body_bytes = 8192;
  needle::http::RequestParser parser(limits);
  std::vector<std::string_view> spans;
  std::vector<bool> is_head;
  size_t at = 0;
  for (;;) {
    spans.clear();
    const auto r = parser.feed(bytes.substr(at), spans);
    at += r.consumed;
    if (r.stop == ParseStop::head_complete) {
      is_head.push_back(parser.head().method == "HEAD");
      continue;
    }
    if (r.stop == ParseStop::message_complete) {
      parser.reset();
      if (at == bytes.size()) break;
      continue;
    }
    // An error answers the request being parsed (whose head may have been counted already if
    // the error is in its body) with one response, then the connection closes.
    if (r.stop == ParseStop::error) is_head.push_back(false);
    break;
  }
  return is_head;
}

// needle's answer must parse as responses, at most one final response per client request.
void check_client_bytes(std::string_view bytes, const std::vector<bool>& requests) {
  if (bytes.size() >= kMaxClientBytes) return;  // truncated by us
  needle::http::ResponseParser parser(unlimited());
  std::vector<std::string_view> spans;
  size_t finals = 0;
  size_t at = 0;
  bool bodiless = finals < requests.size() && requests[finals];
  parser.set_request_is_head(bodiless);
  while (at < bytes.size()) {
    spans.clear();
    const auto r = parser.feed(bytes.substr(at), spans);
    at += r.consumed;
    if (r.stop == ParseStop::error) {
      std::fprintf(stderr, "client: response %zu does not parse: %s\n", finals,
                   parser.error().cause.c_str());
    }
    FUZZ_CHECK(r.stop != ParseStop::error);
    if (r.stop == ParseStop::head_complete) continue;
    if (r.stop != ParseStop::message_complete) break;  // cut off: the last one only
    const bool interim = parser.head().status < 200;
    parser.reset();
    if (!interim) {
      ++finals;
      if (finals > requests.size()) {
        std::fprintf(stderr, "client: %zu final responses for %zu requests\n", finals,
                     requests.size());
      }
      FUZZ_CHECK(finals <= requests.size());
      parser.set_request_is_head(finals < requests.size() && requests[finals]);
    } else {
      parser.set_request_is_head(finals < requests.size() && requests[finals]);
    }
  }
  FUZZ_CHECK(at == bytes.size());
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  needle::log::set_level(needle::log::Level::error);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const Script script = split_script(input);
  if (script.client.empty()) return 0;
  Run run(script);
  Observer observer;

  asio::io_context io(1);
  net::Acceptor upstream(io, tcp::endpoint(asio::ip::address_v4::loopback(), 0));
  net::Acceptor front(io, tcp::endpoint(asio::ip::address_v4::loopback(), 0));
  needle::proxy::WorkerContext worker(0, io.get_executor(), needle::SteadyClock::instance());
  worker.runtime = std::make_shared<needle::proxy::WorkerRuntime>(
      io.get_executor(), make_config(upstream.local_endpoint().port()), worker.clock);
  worker.observer = &observer;

  net::Socket client(io);
  std::error_code ec;
  client.connect(front.local_endpoint(), ec);
  if (ec) return 0;  // out of ports or fds: not needle's fault
  net::Socket accepted = front.accept(ec);
  if (ec) return 0;
  front.close();

  const auto rethrow = [](std::exception_ptr e) {
    if (e) std::rethrow_exception(e);
  };
  asio::co_spawn(io, accept_upstream(upstream, run), rethrow);
  asio::co_spawn(
      io,
      [&]() -> net::Task<void> {
        auto session =
            std::make_unique<needle::proxy::DownstreamSession>(
                worker, needle::net::Stream(std::move(accepted)));
        co_await session->run();
        run.session_done = true;
      },
      rethrow);
  asio::co_spawn(io, client_write(client, script.client), rethrow);
  asio::co_spawn(io, client_read(client, run), rethrow);

  // Every timeout is 20 ms and retries are bounded: a session still running after 5 s hangs.
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (!(run.session_done && run.client_done)) {
    if (io.run_one_until(deadline) == 0) break;
  }
  if (!run.session_done || !run.client_done) {
    std::fprintf(stderr, "session did not end (session %d, client %d)\n", run.session_done,
                 run.client_done);
  }
  FUZZ_CHECK(run.session_done && run.client_done);

  // Tear down as a worker does at the end: drain the pools, drop the runtime; the upstream's
  // connections then see EOF. Nothing may stay pending after that.
  client.close();
  for (auto& cluster : worker.runtime->clusters) cluster->drain();
  worker.runtime.reset();
  upstream.close();
  const auto quiet_deadline = std::chrono::steady_clock::now() + 2s;
  while (!io.stopped()) {
    if (io.run_one_until(quiet_deadline) == 0) break;
  }
  if (!io.stopped()) std::fprintf(stderr, "work left pending after the pools drained\n");
  FUZZ_CHECK(io.stopped());
  FUZZ_CHECK(run.upstream_connections_open == 0);

  if (std::getenv("NEEDLE_FUZZ_DEBUG") != nullptr) {  // triage: what each side saw
    std::fprintf(stderr, "---- client received %zu bytes:\n%s\n---- upstream requests: %zu\n",
                 run.received.size(), run.received.c_str(), run.upstream_requests);
  }
  check_client_bytes(run.received, client_requests(script.client));
  return 0;
}
