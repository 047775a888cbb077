// Workers seal and open tickets concurrently through one TicketKeyRing while the control thread
// rotates it: the ring's lock is the only state the tls layer shares between threads (labelled
// "threads": scripts/test.sh runs it under ThreadSanitizer).
#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "memory_handshake.h"
#include "tls_test_util.h"

namespace needle::tls {
namespace {

using testing::make_client;
using testing::make_server;
using testing::MemoryHandshake;
using testing::three_certificate_settings;
using testing::trusting_client_settings;

TEST(TicketKeyRingThreads, WorkersResumeWhileTheRingRotates) {
  auto ring = std::make_shared<TicketKeyRing>(SteadyClock::instance(), std::chrono::hours(1), 2);
  constexpr int kWorkers = 2;
  constexpr int kConnections = 12;
  std::vector<std::unique_ptr<ServerTlsContext>> servers;
  std::vector<std::unique_ptr<ClientTlsContext>> clients;
  for (int i = 0; i < kWorkers; ++i) {
    servers.push_back(make_server(three_certificate_settings(), ring));
    clients.push_back(make_client(trusting_client_settings()));
    ASSERT_TRUE(servers.back() && clients.back());
  }
  std::atomic<int> resumed{0};
  std::atomic<int> failed{0};
  std::vector<std::thread> workers;
  for (int i = 0; i < kWorkers; ++i) {
    workers.emplace_back([&, i] {
      ClientSessionSlot slot;  // this worker's slot for the host
      for (int n = 0; n < kConnections; ++n) {
        // Alternate servers: a ticket sealed on one thread is opened on the other.
        const ServerTlsContext& server = *servers[(i + n) % kWorkers];
        MemoryHandshake handshake(clients[i]->new_ssl("api.example.com", &slot), server.new_ssl());
        if (!handshake.run() || !handshake.exchange_data()) ++failed;
        if (SSL_session_reused(handshake.client()) == 1) ++resumed;
        handshake.close();
      }
    });
  }
  for (int r = 0; r < 4; ++r) ring->rotate();
  for (std::thread& worker : workers) worker.join();
  EXPECT_EQ(failed.load(), 0);
  // Each worker's first connection is a full handshake; rotations (2 keys kept) may cost
  // one more each. The rest resume.
  EXPECT_GE(resumed.load(), kWorkers * (kConnections - 4));
}

}  // namespace
}  // namespace needle::tls
