// The 5xx alert webhook end to end: the real binary with [alerts] pointing at an in-test
// receiver (a ScriptedUpstream on 127.0.0.1, port 0) POSTs one JSON batch per window that names
// the cause, the cluster and the request id of the 5xx it saw, and nothing for a success.
//
//   t=0       GET /ok/ping   -> 200 from the healthy cluster "ok"      (no alert)
//   t=0       GET /orders/42 -> 502 connect_refused, cluster "app" (its host is down)
//   t<window  the receiver gets POST /hooks/needle, application/json: total 1, by_cause
//             {"connect_refused":1}, by_cluster {"app":1}, a sample with the 502's request id
//   +3 windows still one POST: the window with nothing in it sends nothing
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include "support/free_port.h"
#include "support/http_client.h"
#include "support/json_reader.h"
#include "support/needle_process.h"
#include "support/scripted_upstream.h"

namespace needle::test {
namespace {

using std::chrono::milliseconds;

constexpr milliseconds kWindow{200};

std::string addr(int port) { return "\"127.0.0.1:" + std::to_string(port) + "\""; }

std::string config_for(int port, int ok_port, int down_port, int receiver_port) {
  return "[server]\nworkers = 1\naccess_log = \"stdout\"\n\n"
         "[[listener]]\naddress = " + addr(port) + "\n\n"
         "[admin]\naddress = \"off\"\n\n"
         "[[route]]\npath_prefix = \"/ok/\"\ncluster = \"ok\"\n\n"
         "[[route]]\npath_prefix = \"/\"\ncluster = \"app\"\n\n"
         "[cluster.ok]\nhosts = [" + addr(ok_port) + "]\n\n"
         "[cluster.app]\nhosts = [" + addr(down_port) + "]\n\n"
         "[alerts]\nwebhook = \"http://127.0.0.1:" + std::to_string(receiver_port) +
         "/hooks/needle\"\nwindow = \"" + std::to_string(kWindow.count()) + "ms\"\n";
}

TEST(AlertWebhook, A502FromADownUpstreamIsPostedWithCauseClusterAndRequestId) {
  ScriptedUpstream ok_upstream;
  ScriptedUpstream receiver;          // answers every POST 200 "ok"
  const int down_port = free_port();  // nothing listens here: connects are refused
  auto needle = NeedleProcess::start([&](int port) {
    return config_for(port, ok_upstream.port(), down_port, receiver.port());
  });

  auto ok = get(needle->port(), "/ok/ping");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200);
  auto failed = get(needle->port(), "/orders/42");
  ASSERT_TRUE(failed);
  ASSERT_EQ(failed->status, 502) << failed->raw;
  const std::string request_id = failed->headers.get("X-Request-Id");
  ASSERT_FALSE(request_id.empty()) << failed->raw;

  ASSERT_TRUE(receiver.wait_for_requests(1, milliseconds(5000)))
      << "no webhook POST\n" << needle->operational_log();
  const ReceivedRequest post = receiver.requests().at(0);
  EXPECT_EQ(post.method, "POST");
  EXPECT_EQ(post.target, "/hooks/needle");
  EXPECT_EQ(post.headers.get("Content-Type"), "application/json");
  const auto batch = JsonReader::parse(post.body);
  ASSERT_TRUE(batch) << "not JSON: " << post.body;
  const Json& b = *batch;
  EXPECT_EQ(b["source"].str(), "needle") << post.body;
  EXPECT_EQ(b["total"].integer(), 1) << post.body;  // the 200 is not an alert
  EXPECT_EQ(b["by_status"]["502"].integer(), 1) << post.body;
  EXPECT_EQ(b["by_cause"]["connect_refused"].integer(), 1) << post.body;
  EXPECT_EQ(b["by_cause"].size(), 1u) << post.body;
  EXPECT_EQ(b["by_cluster"]["app"].integer(), 1) << post.body;
  EXPECT_EQ(b["by_cluster"].size(), 1u) << post.body;
  ASSERT_EQ(b["samples"].size(), 1u) << post.body;
  const Json& sample = b["samples"][0];
  EXPECT_EQ(sample["request_id"].str(), request_id) << post.body;
  EXPECT_EQ(sample["status"].integer(), 502) << post.body;
  EXPECT_EQ(sample["cause"].str(), "connect_refused") << post.body;
  EXPECT_EQ(sample["method"].str(), "GET") << post.body;
  EXPECT_EQ(sample["path"].str(), "/orders/42") << post.body;
  EXPECT_EQ(sample["upstream"].str(), "127.0.0.1:" + std::to_string(down_port)) << post.body;
  EXPECT_NE(sample["detail"].str().find("Connection refused"), std::string::npos) << post.body;

  // The access log names the same request.
  ASSERT_TRUE(needle->wait_for_access_log_lines(2, milliseconds(3000)));
  bool logged = false;
  for (const auto& line : needle->access_log_lines()) {
    const auto entry = JsonReader::parse(line);
    if (entry && (*entry)["request_id"].str() == request_id) {
      logged = true;
      EXPECT_EQ((*entry)["cause"].str(), "connect_refused") << line;
      EXPECT_EQ((*entry)["cluster"].str(), "app") << line;
    }
  }
  EXPECT_TRUE(logged) << needle->access_log();

  // Quiet windows post nothing.
  std::this_thread::sleep_for(3 * kWindow);
  EXPECT_EQ(receiver.requests_received(), 1u);
}

}  // namespace
}  // namespace needle::test
