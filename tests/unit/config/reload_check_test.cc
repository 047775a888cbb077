// ReloadCheck: which changes a running needle refuses on SIGHUP, and where it says so.
#include "config/reload_check.h"

#include <string>

#include <gtest/gtest.h>

#include "config_test_util.h"

namespace needle::config {
namespace {

using testing::kMinimal;
using testing::load_ok;

std::vector<ConfigError> refusals_of(const Config& running, std::string_view next) {
  return check_reload_text(next, "needle.toml", running).errors();
}

constexpr std::string_view kTwoWorkers = R"([server]
workers = 2
access_log = "stdout"

[[listener]]
address = "127.0.0.1:8080"

[admin]
address = "127.0.0.1:9901"

[[route]]
cluster = "app"

[cluster.app]
hosts = ["127.0.0.1:3000"]

[alerts]
webhook = "http://127.0.0.1:9000/hook"
)";

std::string replaced(std::string_view text, std::string_view from, std::string_view to) {
  std::string out(text);
  out.replace(out.find(from), from.size(), to);
  return out;
}

TEST(ReloadCheck, TheSameFileIsAccepted) {
  const Config running = load_ok(kTwoWorkers);
  EXPECT_TRUE(refusals_of(running, kTwoWorkers).empty());
}

TEST(ReloadCheck, AFileWithErrorsReportsThemAndNoConfig) {
  const Config running = load_ok(kTwoWorkers);
  const std::string broken = replaced(kTwoWorkers, "cluster = \"app\"", "cluster = \"ap\"");
  const auto errors = refusals_of(running, broken);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].key, "route[0].cluster");
}

TEST(ReloadCheck, EverythingButListenersAndWorkersMayChange) {
  const Config running = load_ok(kTwoWorkers);
  std::string next = replaced(kTwoWorkers, "\"stdout\"", "\"/var/log/needle.log\"");
  next = replaced(next, "127.0.0.1:9901", "127.0.0.1:9902");
  next = replaced(next, "127.0.0.1:3000", "127.0.0.1:3001");
  next = replaced(next, "http://127.0.0.1:9000/hook", "http://127.0.0.1:9001/other");
  next += "\n[cluster.extra]\nhosts = [\"127.0.0.1:4000\"]\nidle_timeout = \"5s\"\n";
  for (const auto& e : refusals_of(running, next)) ADD_FAILURE() << e.to_string();
}

TEST(ReloadCheck, AChangedListenerAddressIsRefusedAtItsLine) {
  const Config running = load_ok(kMinimal);
  const auto refusals =
      refusals_of(running, replaced(kMinimal, "127.0.0.1:8080", "127.0.0.1:8081"));
  ASSERT_EQ(refusals.size(), 1u);
  EXPECT_EQ(refusals[0].key, "listener[0].address");
  EXPECT_EQ(refusals[0].file, "needle.toml");
  EXPECT_EQ(refusals[0].line, 2);
  EXPECT_NE(refusals[0].message.find("127.0.0.1:8080"), std::string::npos) << refusals[0].message;
  EXPECT_NE(refusals[0].message.find("127.0.0.1:8081"), std::string::npos) << refusals[0].message;
  EXPECT_NE(refusals[0].message.find("restart"), std::string::npos) << refusals[0].message;
}

TEST(ReloadCheck, AddedAndRemovedListenersAreRefused) {
  const Config running = load_ok(kMinimal);
  const std::string added =
      std::string(kMinimal) + "\n[[listener]]\naddress = \"127.0.0.1:8090\"\n";
  auto refusals = refusals_of(running, added);
  ASSERT_EQ(refusals.size(), 1u);
  EXPECT_EQ(refusals[0].key, "listener[1]");
  EXPECT_EQ(refusals[0].line, 10);

  const Config two = load_ok(added);
  refusals = refusals_of(two, kMinimal);
  ASSERT_EQ(refusals.size(), 1u);
  EXPECT_EQ(refusals[0].key, "listener");
  EXPECT_EQ(refusals[0].line, 1);
}

TEST(ReloadCheck, AChangedWorkerCountIsRefusedAtItsLine) {
  const Config running = load_ok(kTwoWorkers);
  auto refusals = refusals_of(running, replaced(kTwoWorkers, "workers = 2", "workers = 4"));
  ASSERT_EQ(refusals.size(), 1u);
  EXPECT_EQ(refusals[0].key, "server.workers");
  EXPECT_EQ(refusals[0].line, 2);
  EXPECT_EQ(refusals[0].to_string().rfind("needle.toml:2:", 0), 0u) << refusals[0].to_string();

  // Removing the key means "one per core": a change too.
  refusals = refusals_of(running, replaced(kTwoWorkers, "workers = 2\n", ""));
  ASSERT_EQ(refusals.size(), 1u);
  EXPECT_EQ(refusals[0].key, "server.workers");
}

TEST(ReloadCheck, EveryRefusalIsReportedInFileOrder) {
  const Config running = load_ok(kTwoWorkers);
  std::string next = replaced(kTwoWorkers, "workers = 2", "workers = 3");
  next = replaced(next, "127.0.0.1:8080", "0.0.0.0:8080");
  const auto refusals = refusals_of(running, next);
  ASSERT_EQ(refusals.size(), 2u);
  EXPECT_EQ(refusals[0].key, "server.workers");
  EXPECT_EQ(refusals[1].key, "listener[0].address");
}

TEST(ReloadCheck, ErrorAtPlacesAKeyLikeTheLoader) {
  const Config running = load_ok(kTwoWorkers);
  const ReloadCheck check = check_reload_text(kTwoWorkers, "needle.toml", running);
  ASSERT_TRUE(check.errors().empty());
  const ConfigError e = check.error_at("admin.address", "cannot listen");
  EXPECT_EQ(e.to_string().rfind("needle.toml:9:", 0), 0u) << e.to_string();
  EXPECT_NE(e.to_string().find("admin.address: cannot listen"), std::string::npos);
}

}  // namespace
}  // namespace needle::config
