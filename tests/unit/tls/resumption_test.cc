// Session resumption across two ServerTlsContexts (two workers) sharing one TicketKeyRing, over
// TLS 1.2 tickets and TLS 1.3 resumption, through rotations of the ring; the client side keeps
// the host's session in a ClientSessionSlot.
#include <gtest/gtest.h>

#include <chrono>

#include "memory_handshake.h"
#include "tls_test_util.h"

namespace needle::tls {
namespace {

using namespace std::chrono_literals;
using testing::make_client;
using testing::make_server;
using testing::MemoryHandshake;
using testing::three_certificate_settings;
using testing::trusting_client_settings;

class Resumption : public ::testing::TestWithParam<int> {
 protected:
  void SetUp() override {
    ring_ = std::make_shared<TicketKeyRing>(clock_, 1h, 1);
    worker_a_ = make_server(three_certificate_settings(), ring_);
    worker_b_ = make_server(three_certificate_settings(), ring_);
    client_ = make_client(trusting_client_settings());
    ASSERT_TRUE(worker_a_ && worker_b_ && client_);
  }

  // One connection to `worker`, with data both ways (TLS 1.3 tickets come after the
  // handshake), closed with close_notify or just dropped; returns whether it resumed, or fails
  // the test when it did not connect.
  bool connect(const ServerTlsContext& worker, bool close_notify = true) {
    SslPtr ssl = client_->new_ssl("api.example.com", &slot_);
    SSL_set_max_proto_version(ssl.get(), GetParam());
    MemoryHandshake handshake(std::move(ssl), worker.new_ssl());
    EXPECT_TRUE(handshake.run());
    EXPECT_TRUE(handshake.exchange_data());
    EXPECT_EQ(SSL_version(handshake.client()), GetParam());
    const bool resumed = SSL_session_reused(handshake.client()) == 1;
    EXPECT_EQ(resumed, SSL_session_reused(handshake.server()) == 1);
    if (close_notify) handshake.close();
    return resumed;
  }

  ManualClock clock_;
  std::shared_ptr<TicketKeyRing> ring_;
  std::unique_ptr<ServerTlsContext> worker_a_;
  std::unique_ptr<ServerTlsContext> worker_b_;
  std::unique_ptr<ClientTlsContext> client_;
  ClientSessionSlot slot_;
};

TEST_P(Resumption, TicketFromOneWorkerResumesOnTheOther) {
  EXPECT_FALSE(connect(*worker_a_));
  EXPECT_TRUE(slot_.has_session());
  EXPECT_TRUE(connect(*worker_b_));
  EXPECT_TRUE(connect(*worker_a_));  // the resumed connection left a ticket again
}

// The pool closes idle upstream connections (and upstreams close them) without close_notify;
// OpenSSL then marks the connection's session not resumable, but the slot holds its own copy.
TEST_P(Resumption, ConnectionDroppedWithoutCloseNotifyStillResumes) {
  EXPECT_FALSE(connect(*worker_a_, false));
  EXPECT_TRUE(connect(*worker_b_, false));
  EXPECT_TRUE(connect(*worker_a_, false));
}

TEST_P(Resumption, PreviousKeyStillOpensAfterOneRotation) {
  EXPECT_FALSE(connect(*worker_a_));
  ASSERT_TRUE(ring_->rotate());
  EXPECT_TRUE(connect(*worker_b_));
  // The ticket was renewed under the current key, so it survives the next rotation too.
  ASSERT_TRUE(ring_->rotate());
  EXPECT_TRUE(connect(*worker_a_));
}

TEST_P(Resumption, KeyRotatedOutNoLongerOpens) {
  EXPECT_FALSE(connect(*worker_a_));
  ASSERT_TRUE(ring_->rotate());
  ASSERT_TRUE(ring_->rotate());  // one decrypt-only key kept: the first key is gone
  EXPECT_FALSE(connect(*worker_b_));
  EXPECT_TRUE(connect(*worker_a_));  // the full handshake left a fresh ticket
}

TEST_P(Resumption, TheRingRotatesOnItsPeriodWhenSealing) {
  EXPECT_FALSE(connect(*worker_a_));
  EXPECT_EQ(ring_->rotations(), 0u);
  clock_.advance(1h);
  EXPECT_TRUE(connect(*worker_b_));  // opened by the previous key, sealed by a new one
  EXPECT_EQ(ring_->rotations(), 1u);
  clock_.advance(1h);
  EXPECT_TRUE(connect(*worker_a_));
  EXPECT_EQ(ring_->rotations(), 2u);
}

TEST_P(Resumption, WorkersWithTheirOwnRingsDoNotResumeEachOther) {
  ManualClock other_clock;
  auto other_ring = std::make_shared<TicketKeyRing>(other_clock, 1h, 1);
  auto lone_worker = make_server(three_certificate_settings(), other_ring);
  EXPECT_FALSE(connect(*worker_a_));
  EXPECT_FALSE(connect(*lone_worker));
}

TEST_P(Resumption, NoRingNoResumption) {
  auto ticketless = make_server(three_certificate_settings(), nullptr);
  EXPECT_FALSE(connect(*ticketless));
  EXPECT_FALSE(slot_.has_session());
  EXPECT_FALSE(connect(*ticketless));
}

INSTANTIATE_TEST_SUITE_P(Versions, Resumption, ::testing::Values(TLS1_2_VERSION, TLS1_3_VERSION),
                         [](const ::testing::TestParamInfo<int>& info) {
                           return info.param == TLS1_3_VERSION ? "Tls13" : "Tls12";
                         });

TEST(TicketKeyRing, LifetimeCoversEveryKeptKey) {
  ManualClock clock;
  TicketKeyRing ring(clock, 1h, 2);
  EXPECT_EQ(ring.ticket_lifetime(), 3h);
}

}  // namespace
}  // namespace needle::tls
