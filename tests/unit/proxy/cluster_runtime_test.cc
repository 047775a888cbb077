// A reload's new WorkerRuntime takes over the pools of the hosts it keeps (same cluster name,
// same address) from the generation it replaces; everything else starts afresh, and draining
// the old generation leaves the kept pools alone.
#include "proxy/cluster_runtime.h"

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include <gtest/gtest.h>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>

#include "config/config.h"

namespace needle::proxy {
namespace {

using namespace std::chrono_literals;
using asio::ip::tcp;

config::ClusterConfig cluster(std::string name, std::vector<uint16_t> ports) {
  config::ClusterConfig c;
  c.name = std::move(name);
  for (uint16_t port : ports) c.hosts.push_back(config::HostPort{"127.0.0.1", port});
  return c;
}

std::shared_ptr<const config::Config> config_with(std::vector<config::ClusterConfig> clusters) {
  auto config = std::make_shared<config::Config>();
  config->clusters = std::move(clusters);
  config->routes.push_back(config::RouteConfig{std::nullopt, "/", config->clusters[0].name});
  return config;
}

class ClusterRuntimeTest : public ::testing::Test {
 protected:
  ClusterRuntimeTest()
      : a(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)),
        b(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {}

  uint16_t port_a() const { return a.local_endpoint().port(); }
  uint16_t port_b() const { return b.local_endpoint().port(); }

  std::unique_ptr<WorkerRuntime> runtime(std::vector<config::ClusterConfig> clusters,
                                         WorkerRuntime* previous = nullptr) {
    return std::make_unique<WorkerRuntime>(io.get_executor(), config_with(std::move(clusters)),
                                           SteadyClock::instance(), previous);
  }

  // Opens one connection to `pool` and gives it back clean: the pool then holds it idle.
  void park_one_idle(upstream::HostPool& pool) {
    std::optional<upstream::ConnectResult> result;
    asio::co_spawn(
        io, [&]() -> net::Task<void> { result = co_await pool.connect(); }, asio::detached);
    const auto deadline = std::chrono::steady_clock::now() + 2s;
    while (!result && std::chrono::steady_clock::now() < deadline) io.run_one_for(1ms);
    ASSERT_TRUE(result && result->lease) << (result ? result->error.message() : "no outcome");
    upstream::ReleaseInfo info;
    info.response_complete = true;
    info.upstream_keep_alive = true;
    info.keep_alive_hint = 30s;
    result->lease.release(info);
    ASSERT_EQ(pool.idle_count(), 1u);
  }

  asio::io_context io{1};
  tcp::acceptor a;
  tcp::acceptor b;
};

TEST_F(ClusterRuntimeTest, AKeptHostIsTheSamePoolWithItsConnectionsAndKnowledge) {
  auto first = runtime({cluster("app", {port_a(), port_b()})});
  upstream::HostPool& kept = first->clusters[0]->host(0);
  upstream::HostPool& dropped = first->clusters[0]->host(1);
  park_one_idle(kept);
  park_one_idle(dropped);

  auto changed = cluster("app", {port_a()});
  changed.idle_timeout = 20s;
  auto second = runtime({changed}, first.get());
  ASSERT_EQ(second->clusters[0]->host_count(), 1u);
  EXPECT_EQ(&second->clusters[0]->host(0), &kept);
  // The reload's swap: the old generation drains what it still owns, then goes.
  for (auto& c : first->clusters) c->drain();
  EXPECT_EQ(dropped.idle_count(), 0u);
  first.reset();

  upstream::HostPool& pool = second->clusters[0]->host(0);
  EXPECT_EQ(pool.idle_count(), 1u) << "the kept pool's idle connection was closed";
  EXPECT_EQ(pool.counters().opened, 1u);
  EXPECT_EQ(pool.estimator().hint(), std::optional<Millis>(30s));
  EXPECT_EQ(pool.estimator().configured(), std::optional<Millis>(20s));
  EXPECT_TRUE(pool.checkout_idle(true)) << "the kept idle connection is handed out again";
}

TEST_F(ClusterRuntimeTest, ANewClusterNameOrANewAddressStartsAfresh) {
  auto first = runtime({cluster("app", {port_a()})});
  park_one_idle(first->clusters[0]->host(0));
  auto second = runtime({cluster("web", {port_a()}), cluster("app", {port_b()})}, first.get());
  EXPECT_NE(&second->clusters[0]->host(0), &first->clusters[0]->host(0));
  EXPECT_NE(&second->clusters[1]->host(0), &first->clusters[0]->host(0));
  EXPECT_EQ(second->clusters[0]->host(0).counters().opened, 0u);
  for (auto& c : first->clusters) c->drain();
  EXPECT_EQ(first->clusters[0]->host(0).idle_count(), 0u);
}

TEST_F(ClusterRuntimeTest, AHostListedTwiceIsTakenOverOnce) {
  auto first = runtime({cluster("app", {port_a()})});
  auto second = runtime({cluster("app", {port_a(), port_a()})}, first.get());
  EXPECT_EQ(&second->clusters[0]->host(0), &first->clusters[0]->host(0));
  EXPECT_NE(&second->clusters[0]->host(1), &first->clusters[0]->host(0));
}

TEST_F(ClusterRuntimeTest, APoolKeptAcrossTwoReloadsIsDrainedByTheGenerationThatDropsIt) {
  auto first = runtime({cluster("app", {port_a()})});
  upstream::HostPool& pool = first->clusters[0]->host(0);
  park_one_idle(pool);
  auto second = runtime({cluster("app", {port_a()})}, first.get());
  for (auto& c : first->clusters) c->drain();
  auto third = runtime({cluster("app", {port_b()})}, second.get());
  EXPECT_EQ(pool.idle_count(), 1u);
  for (auto& c : second->clusters) c->drain();
  EXPECT_EQ(pool.idle_count(), 0u);
}

}  // namespace
}  // namespace needle::proxy
