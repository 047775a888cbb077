// The TLS half of the stream primitives (net/socket_io.h, docs/decisions/0008-tls-stream.md):
// OpenSSL reads and writes the non-blocking socket itself (SSL_set_fd), and a call that would
// block waits for readiness with async_wait on the socket. One coroutine frame per TLS
// operation; the plain path never comes here.
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>

#include "net/socket_io.h"

namespace needle::net {
namespace {

// A TLS record carries at most 2^14 plaintext bytes (RFC 8446 5.1): writes go out in records of
// up to that size, gathered from the caller's buffers so a head and a small body share one.
constexpr size_t kMaxRecordPlaintext = 16384;

// Copies up to one record's worth of `buffers` (from their front) into `scratch`.
size_t gather_record(std::span<const asio::const_buffer> buffers, size_t skip,
                     std::array<char, kMaxRecordPlaintext>& scratch) {
  size_t filled = 0;
  for (const auto& buffer : buffers) {
    if (skip >= buffer.size()) {
      skip -= buffer.size();
      continue;
    }
    const size_t take = std::min(buffer.size() - skip, scratch.size() - filled);
    std::memcpy(scratch.data() + filled, static_cast<const char*>(buffer.data()) + skip, take);
    filled += take;
    skip = 0;
    if (filled == scratch.size()) break;
  }
  return filled;
}

// Drops the first `n` bytes of `buffers`, keeping the rest in order.
void consume_front(std::vector<asio::const_buffer>& buffers, size_t n) {
  auto first = buffers.begin();
  while (first != buffers.end() && n >= first->size()) {
    n -= first->size();
    ++first;
  }
  buffers.erase(buffers.begin(), first);
  if (n > 0) buffers.front() += n;
}

enum class Step { done, want_read, want_write, failed };

struct StepResult {
  Step step;
  std::error_code error;  // when failed
};

// What an SSL_*_ex call that returned `ret` asks for next.
StepResult next_step(SSL* ssl, int ret) {
  if (ret == 1) return {Step::done, {}};
  const int saved_errno = errno;
  switch (SSL_get_error(ssl, ret)) {
    case SSL_ERROR_WANT_READ:
      return {Step::want_read, {}};
    case SSL_ERROR_WANT_WRITE:
      return {Step::want_write, {}};
    case SSL_ERROR_ZERO_RETURN:  // close_notify (or a bare FIN: SSL_OP_IGNORE_UNEXPECTED_EOF)
      return {Step::failed, asio::error::eof};
    case SSL_ERROR_SYSCALL:
      if (saved_errno != 0) {
        return {Step::failed, std::error_code(saved_errno, asio::error::get_system_category())};
      }
      return {Step::failed, asio::error::eof};
    default:
      return {Step::failed, std::make_error_code(std::errc::protocol_error)};
  }
}

const auto use_wait = asio::experimental::as_tuple(asio::use_awaitable_t<Executor>{});

// Waits until the socket is readable or writable, as `step` asks. An error (cancellation by a
// watchdog, a closed socket) ends the operation.
Task<std::error_code> wait_for(Socket& socket, Step step) {
  auto [ec] = co_await socket.async_wait(
      step == Step::want_read ? asio::socket_base::wait_read : asio::socket_base::wait_write,
      use_wait);
  co_return ec;
}

}  // namespace

Task<IoCompletion> tls_read_some(Stream& stream, asio::mutable_buffer into) {
  SSL* ssl = stream.ssl();
  for (;;) {
    size_t n = 0;
    ERR_clear_error();
    errno = 0;
    const int ret = SSL_read_ex(ssl, into.data(), into.size(), &n);
    const StepResult result = next_step(ssl, ret);
    if (result.step == Step::done) co_return IoCompletion{std::error_code{}, n};
    if (result.step == Step::failed) {
      ERR_clear_error();
      co_return IoCompletion{result.error, 0};
    }
    if (auto ec = co_await wait_for(stream.socket(), result.step)) co_return IoCompletion{ec, 0};
  }
}

bool tls_write_now(Stream& stream, std::vector<asio::const_buffer>& buffers, IoResult& written) {
  SSL* ssl = stream.ssl();
  static thread_local std::array<char, kMaxRecordPlaintext> scratch;
  while (!buffers.empty()) {
    const size_t length = gather_record(buffers, 0, scratch);
    if (length == 0) {
      buffers.clear();
      break;
    }
    size_t n = 0;
    ERR_clear_error();
    errno = 0;
    const StepResult result = next_step(ssl, SSL_write_ex(ssl, scratch.data(), length, &n));
    if (result.step == Step::done) {
      written.bytes += n;
      consume_front(buffers, n);
      continue;
    }
    if (result.step == Step::failed) {
      ERR_clear_error();
      written.error = result.error;
      return false;
    }
    // The record is OpenSSL's now, partly sent: a retry passes the same bytes (tls_write_all).
    return true;
  }
  written.error = {};
  return false;
}

Task<IoCompletion> tls_write_all(Stream& stream, std::span<const asio::const_buffer> buffers) {
  SSL* ssl = stream.ssl();
  static thread_local std::array<char, kMaxRecordPlaintext> scratch;
  size_t total = 0;
  for (;;) {
    const size_t length = gather_record(buffers, total, scratch);
    if (length == 0) co_return IoCompletion{std::error_code{}, total};
    size_t n = 0;
    ERR_clear_error();
    errno = 0;
    const StepResult result = next_step(ssl, SSL_write_ex(ssl, scratch.data(), length, &n));
    if (result.step == Step::done) {
      total += n;
      continue;
    }
    if (result.step == Step::failed) {
      ERR_clear_error();
      co_return IoCompletion{result.error, total};
    }
    if (auto ec = co_await wait_for(stream.socket(), result.step))
      co_return IoCompletion{ec, total};
  }
}

Task<IoCompletion> tls_write_one(Stream& stream, asio::const_buffer buffer) {
  co_return co_await tls_write_all(stream, std::span<const asio::const_buffer>(&buffer, 1));
}

Task<std::error_code> tls_handshake(Stream& stream) {
  SSL* ssl = stream.ssl();
  for (;;) {
    ERR_clear_error();
    errno = 0;
    const StepResult result = next_step(ssl, SSL_do_handshake(ssl));
    if (result.step == Step::done) co_return std::error_code{};
    if (result.step == Step::failed) co_return result.error;  // the queue stays for the caller
    if (auto ec = co_await wait_for(stream.socket(), result.step)) co_return ec;
  }
}

}  // namespace needle::net
