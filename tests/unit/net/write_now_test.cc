// net::write_now (socket_io.h): a write that the socket takes whole completes without an
// operation; what a full send buffer leaves is exactly what the awaited write_all then sends,
// in order; errors are reported, never "bytes left".
#include <array>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/read.hpp>
#include <gtest/gtest.h>

#include "loopback_pair.h"
#include "net/listener.h"
#include "net/socket_io.h"

namespace needle::net {
namespace {

using namespace std::chrono_literals;

// A connected loopback pair; `writer` is set up as the proxy sets up an accepted socket.
struct WritePair : LoopbackPair {
  Socket& writer = accepted;

  WritePair() { tune_accepted_socket(writer); }

  std::string receive(size_t n) {
    std::string got(n, '\0');
    asio::read(peer, asio::buffer(got));
    return got;
  }
};

std::string pattern(size_t n, char seed) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>(seed + static_cast<char>(i % 61));
  return s;
}

TEST(WriteNow, WholeGatherGoesOutAtOnce) {
  WritePair pair;
  const std::string head = "HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n";
  const std::string body = "hello world\n";
  std::vector<asio::const_buffer> out{asio::buffer(head), asio::buffer(body)};
  IoResult written;
  EXPECT_FALSE(write_now(pair.writer, out, written));
  EXPECT_FALSE(written.error);
  EXPECT_EQ(written.bytes, head.size() + body.size());
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(pair.receive(head.size() + body.size()), head + body);
}

TEST(WriteNow, EmptyBuffersWriteNothing) {
  WritePair pair;
  std::vector<asio::const_buffer> out{asio::const_buffer()};
  IoResult written;
  EXPECT_FALSE(write_now(pair.writer, out, written));
  EXPECT_FALSE(written.error);
  EXPECT_EQ(written.bytes, 0u);
}

// The peer reads nothing until the send buffer is full: write_now stops short (or writes
// nothing) without an error and leaves exactly the unwritten tail, which write_all finishes.
TEST(WriteNow, FullSendBufferLeavesTheTailForWriteAll) {
  WritePair pair;
  pair.writer.set_option(asio::socket_base::send_buffer_size(16 * 1024));
  pair.peer.set_option(asio::socket_base::receive_buffer_size(16 * 1024));
  std::array<std::string, 3> parts = {pattern(7, 'a'), pattern(3 << 20, 'b'), pattern(999, 'c')};
  const std::string all = parts[0] + parts[1] + parts[2];
  std::vector<asio::const_buffer> out;
  for (const auto& p : parts) out.push_back(asio::buffer(p));

  IoResult written;
  ASSERT_TRUE(write_now(pair.writer, out, written));
  EXPECT_FALSE(written.error);
  ASSERT_LT(written.bytes, all.size());
  EXPECT_EQ(asio::buffer_size(out), all.size() - written.bytes);
  // Another attempt on the (nearly) full buffer writes what fits, maybe nothing, and is no error.
  ASSERT_TRUE(write_now(pair.writer, out, written));
  EXPECT_FALSE(written.error);
  EXPECT_EQ(asio::buffer_size(out), all.size() - written.bytes);

  bool done = false;
  asio::co_spawn(
      pair.io,
      [&]() -> Task<void> {
        written += to_result(co_await write_all(pair.writer, out));
        done = true;
      },
      asio::detached);
  std::string got;
  std::thread reader([&] { got = pair.receive(all.size()); });
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (!done && std::chrono::steady_clock::now() < deadline) pair.io.run_for(10ms);
  reader.join();
  ASSERT_TRUE(done);
  EXPECT_FALSE(written.error);
  EXPECT_EQ(written.bytes, all.size());
  EXPECT_TRUE(got == all) << "bytes lost, repeated or reordered";
}

TEST(WriteNow, ResetPeerIsAnErrorNotBytesLeft) {
  WritePair pair;
  pair.peer.set_option(asio::socket_base::linger(true, 0));
  pair.peer.close();  // RST
  const std::string data = pattern(4096, 'x');
  IoResult written;
  // The first send may still be accepted before the RST is processed; one of the next fails.
  bool failed = false;
  for (int i = 0; i < 20 && !failed; ++i) {
    std::vector<asio::const_buffer> out{asio::buffer(data)};
    const bool left = write_now(pair.writer, out, written);
    failed = static_cast<bool>(written.error);
    if (failed) {
      EXPECT_FALSE(left);
    }
    std::this_thread::sleep_for(1ms);
  }
  EXPECT_TRUE(failed);
  EXPECT_TRUE(written.error == asio::error::connection_reset ||
              written.error == asio::error::broken_pipe)
      << written.error.message();
}

}  // namespace
}  // namespace needle::net
