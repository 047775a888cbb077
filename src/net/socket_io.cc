#include "net/socket_io.h"

namespace needle::net {

namespace {

// Drops the first `n` bytes of `buffers`, keeping the rest in order.
void consume_front(std::vector<asio::const_buffer>& buffers, size_t n) {
  auto first = buffers.begin();
  while (first != buffers.end() && n >= first->size()) {
    n -= first->size();
    ++first;
  }
  buffers.erase(buffers.begin(), first);
  if (n > 0) buffers.front() += n;  // n < front().size() here
}

}  // namespace

bool write_now(Socket& socket, std::vector<asio::const_buffer>& buffers, IoResult& written) {
  std::error_code ec;
  const size_t n = socket.write_some(buffers, ec);
  if (ec && (ec == asio::error::would_block || ec == asio::error::try_again)) ec.clear();
  written.bytes += n;
  written.error = ec;
  if (ec) return false;
  consume_front(buffers, n);
  return asio::buffer_size(buffers) > 0;
}

}  // namespace needle::net
