// Request bodies through needle to the Express app's /echo: Content-Length and chunked, 0 B,
// 1 KiB and 50 MiB, compared by checksum end to end; needle's memory stays flat while it
// streams.
#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>

#include "proxy_harness.h"
#include "support/express_fixture.h"

namespace needle::test {
namespace {

using namespace proxy;

std::string chunked_encode(const std::string& body, size_t chunk) {
  std::string out;
  for (size_t at = 0; at < body.size(); at += chunk) {
    const size_t n = std::min(chunk, body.size() - at);
    char line[32];
    std::snprintf(line, sizeof(line), "%zx\r\n", n);
    out += line;
    out.append(body, at, n);
    out += "\r\n";
  }
  out += "0\r\n\r\n";
  return out;
}

class ProxyBodies : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    app_ = new ExpressFixture();
    needle_ = start_needle_for(app_->port()).release();
  }
  static void TearDownTestSuite() {
    delete needle_;
    delete app_;
    needle_ = nullptr;
    app_ = nullptr;
  }
  static ExpressFixture* app_;
  static NeedleProcess* needle_;
};
ExpressFixture* ProxyBodies::app_ = nullptr;
NeedleProcess* ProxyBodies::needle_ = nullptr;

TEST_F(ProxyBodies, SmallBodiesWithContentLengthAndChunked) {
  const std::string empty;
  std::string kib;
  fill_piece(kib, 7, 1024);
  HttpClient client;
  ASSERT_TRUE(client.connect(needle_->port()));
  for (const char* method : {"POST", "PUT"}) {
    for (const std::string* body : std::initializer_list<const std::string*>{&empty, &kib}) {
      // Content-Length
      auto r = client.request(method, "/echo", *body,
                              {{"Content-Type", "application/octet-stream"},
                               {"Content-Length", std::to_string(body->size())}});
      ASSERT_TRUE(r.has_value()) << method << " " << body->size() << ": "
                                 << to_string(client.last_error());
      EXPECT_EQ(r->status, 200);
      EXPECT_EQ(r->body.size(), body->size());
      EXPECT_TRUE(r->body == *body) << method << " CL " << body->size();
      // chunked
      std::string head = std::string(method) +
                         " /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n"
                         "Transfer-Encoding: chunked\r\n\r\n";
      ASSERT_TRUE(client.send_raw(head + chunked_encode(*body, 100)));
      auto c = client.read_response();
      ASSERT_TRUE(c.has_value()) << method << " chunked " << body->size() << ": "
                                 << to_string(client.last_error());
      EXPECT_EQ(c->status, 200);
      EXPECT_TRUE(c->body == *body) << method << " chunked " << body->size();
    }
  }
  auto lines = wait_log_lines(*needle_, 8);
  ASSERT_GE(lines.size(), 8u);
  EXPECT_EQ(json_field(lines[3], "bytes_in"), "1024");
}

void big_transfer(NeedleProcess& needle, bool chunked, const char* method) {
  const pid_t pid = needle.process().pid();
  // Warm up: one small echo, so the baseline includes buffers and the upstream connection.
  auto warm = request(needle.port(), "POST", "/echo", "warm");
  ASSERT_TRUE(warm.has_value());
  const long baseline = rss_kib(pid);
  ASSERT_GT(baseline, 0);

  const uint64_t size = 50ull << 20;
  std::string head = std::string(method) + " /echo HTTP/1.1\r\nHost: x\r\n"
                     "Content-Type: application/octet-stream\r\nConnection: close\r\n";
  head += chunked ? std::string("Transfer-Encoding: chunked\r\n")
                  : "Content-Length: " + std::to_string(size) + "\r\n";
  head += "\r\n";
  uint64_t sent_hash = 0;
  long peak = baseline;
  std::atomic<bool> done{false};
  std::thread sampler([&] {
    while (!done.load()) {
      peak = std::max(peak, rss_kib(pid));
      std::this_thread::sleep_for(milliseconds(20));
    }
  });
  auto result = StreamingExchange::run(needle.port(), head, size, 256 * 1024, chunked, &sent_hash,
                                       milliseconds(60000));
  done = true;
  sampler.join();
  ASSERT_TRUE(result.ok) << result.error;
  EXPECT_EQ(result.status, 200);
  EXPECT_EQ(result.body_size, size);
  EXPECT_EQ(result.body_hash, sent_hash);
  EXPECT_EQ(result.chunked_response, chunked);
  const long after = rss_kib(pid);
  EXPECT_LT(after - baseline, 16 * 1024) << "baseline " << baseline << " KiB, after " << after;
  EXPECT_LT(peak - baseline, 16 * 1024) << "baseline " << baseline << " KiB, peak " << peak;
}

TEST_F(ProxyBodies, FiftyMebibytesWithContentLengthStreamFlat) {
  big_transfer(*needle_, false, "POST");
}

TEST_F(ProxyBodies, FiftyMebibytesChunkedStreamFlat) { big_transfer(*needle_, true, "PUT"); }

}  // namespace
}  // namespace needle::test
