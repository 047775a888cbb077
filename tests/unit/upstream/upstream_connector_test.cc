// open_upstream_socket against a listener on 127.0.0.1 (port 0): a refused connect is the host's
// failure, running out of descriptors is needle's own (local_resource_exhausted, errno kept).
#include "upstream/upstream_connector.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <string>
#include <vector>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <gtest/gtest.h>


namespace needle::upstream {
namespace {

using namespace std::chrono_literals;
using asio::ip::tcp;

ConnectOutcome connect_now(asio::io_context& io, const config::HostPort& address) {
  ConnectOutcome result;
  asio::co_spawn(
      io, [&]() -> net::Task<void> { result = co_await open_upstream_socket(address, 2000ms); },
      asio::detached);
  io.restart();
  io.run();
  return result;
}

int highest_open_fd() {
  int highest = 2;
  if (DIR* dir = ::opendir("/proc/self/fd")) {
    while (dirent* entry = ::readdir(dir)) {
      if (entry->d_name[0] != '.') highest = std::max(highest, std::atoi(entry->d_name));
    }
    ::closedir(dir);
  }
  return highest;
}

// Lowers this process's soft RLIMIT_NOFILE a little above what is open and fills every slot
// left, so the next socket(2) fails with EMFILE; gives it all back when destroyed.
class FdExhaustion {
 public:
  FdExhaustion() {
    ::getrlimit(RLIMIT_NOFILE, &saved_);
    rlimit low = saved_;
    low.rlim_cur = static_cast<rlim_t>(highest_open_fd() + 16);
    lowered_ = ::setrlimit(RLIMIT_NOFILE, &low) == 0;
    for (rlim_t i = 0; lowered_ && i < low.rlim_cur; ++i) {  // bounded by the lowered limit
      const int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
      if (fd < 0) break;
      fillers_.push_back(fd);
    }
  }
  bool lowered() const { return lowered_; }
  ~FdExhaustion() {
    for (int fd : fillers_) ::close(fd);
    ::setrlimit(RLIMIT_NOFILE, &saved_);
  }
  FdExhaustion(const FdExhaustion&) = delete;
  FdExhaustion& operator=(const FdExhaustion&) = delete;

 private:
  rlimit saved_{};
  bool lowered_ = false;
  std::vector<int> fillers_;
};

class UpstreamConnectorTest : public ::testing::Test {
 protected:
  // The acceptor also brings up the io_context's reactor (epoll, eventfd, timerfd) before any
  // test takes the descriptors away.
  asio::io_context io;
  net::Acceptor acceptor{io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)};
  config::HostPort host{"127.0.0.1", acceptor.local_endpoint().port()};
};

TEST_F(UpstreamConnectorTest, ConnectsToAListeningHost) {
  const ConnectOutcome outcome = connect_now(io, host);
  EXPECT_EQ(outcome.cause, Cause::none) << outcome.error.message();
  EXPECT_TRUE(outcome.socket && outcome.socket->is_open());
}

TEST_F(UpstreamConnectorTest, RefusedIsTheHostsFailure) {
  const config::HostPort closed{"127.0.0.1", host.port};
  acceptor.close();
  const ConnectOutcome outcome = connect_now(io, closed);
  EXPECT_EQ(outcome.cause, Cause::connect_refused);
}

TEST_F(UpstreamConnectorTest, OutOfDescriptorsIsNeedlesOwnWithTheErrnoKept) {
  ConnectOutcome outcome;
  {
    FdExhaustion exhaustion;
    ASSERT_TRUE(exhaustion.lowered());
    ASSERT_LT(::open("/dev/null", O_RDONLY | O_CLOEXEC), 0) << "descriptors left";
    outcome = connect_now(io, host);
  }
  EXPECT_EQ(outcome.cause, Cause::local_resource_exhausted);
  EXPECT_EQ(outcome.error.value(), EMFILE) << outcome.error.message();
  EXPECT_EQ(outcome.error.message(), "Too many open files");  // not "Operation aborted"
  EXPECT_FALSE(outcome.socket);

  // Descriptors back: the same host connects at once.
  const ConnectOutcome again = connect_now(io, host);
  EXPECT_EQ(again.cause, Cause::none) << again.error.message();
}

}  // namespace
}  // namespace needle::upstream
