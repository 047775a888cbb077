#include "observe/access_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "allocation_counter.h"
#include "record_builders.h"

namespace needle::observe {
namespace {

using namespace std::chrono_literals;
using test_records::attempt;
using test_records::request;

TEST(AccessLogLine, SuccessHasEveryFieldAndCauseNone) {
  RequestRecord r = request(200);
  AttemptRecord a = attempt("10.0.0.1:3000", 200, Cause::none, true, 2500us);
  a.connection_id = 42;
  a.reuse_count = 3;
  a.idle_age = Millis(870);
  a.bytes_written = 120;
  a.bytes_read = 200;
  r.attempts = {a};
  EXPECT_EQ(
      format_access_log_line(r),
      R"({"time":"2024-05-01T12:34:56.789Z","request_id":"req-1","client":"10.0.0.7:51234",)"
      R"("method":"GET","host":"example.com","path":"/api/users?id=1","status":200,)"
      R"("duration_ms":12.345,"bytes_in":10,"bytes_out":200,"route":"/api","cluster":"app",)"
      R"("cause":"none","worker":1,"attempts":[{"upstream":"10.0.0.1:3000","connection_id":42,)"
      R"("reused":true,"reuse_count":3,"idle_age_ms":870,"bytes_written":120,"bytes_read":200,)"
      R"("duration_ms":2.500,"status":200,"cause":"none","retry":""}]})"
      "\n");
}

TEST(AccessLogLine, FiveHundredTwoCarriesCauseDetailAndEveryAttempt) {
  RequestRecord r = request(502, Cause::connect_refused);
  r.detail = "connect: Connection refused";
  r.attempts = {attempt("10.0.0.1:3000", 0, Cause::reset_before_response_on_reused, true),
                attempt("10.0.0.2:3000", 0, Cause::connect_refused)};
  r.attempts[0].retry_decision = "ok";
  r.attempts[1].retry_decision = "max_retries";
  const std::string line = format_access_log_line(r);
  EXPECT_NE(line.find(R"("status":502,)"), std::string::npos);
  EXPECT_NE(
      line.find(R"("cause":"connect_refused","detail":"connect: Connection refused","worker":1)"),
      std::string::npos)
      << line;
  EXPECT_NE(line.find(R"("cause":"reset_before_response_on_reused","retry":"ok"})"),
            std::string::npos);
  EXPECT_NE(line.find(R"("cause":"connect_refused","retry":"max_retries"}])"), std::string::npos);
  EXPECT_EQ(line.find('\n'), line.size() - 1);  // one line
}

TEST(AccessLogLine, NoDetailFieldWhenEmptyAndEmptyAttempts) {
  const std::string line = format_access_log_line(request(404));
  EXPECT_EQ(line.find("\"detail\""), std::string::npos);
  EXPECT_NE(line.find(R"("attempts":[]})"), std::string::npos);
}

TEST(AccessLogLine, HostileRequestFieldsStayOneValidLine) {
  RequestRecord r = request(400, Cause::bad_request);
  r.path = "/x\"}\n{\"status\":200\xff";
  r.host = "h\r\nx";
  const std::string line = format_access_log_line(r);
  EXPECT_EQ(line.find('\n'), line.size() - 1);
  EXPECT_NE(line.find(R"("path":"/x\"}\n{\"status\":200\u00ff")"), std::string::npos) << line;
  EXPECT_NE(line.find(R"("host":"h\r\nx")"), std::string::npos);
}

std::string temp_path() {
  char path[] = "/tmp/needle_access_XXXXXX";
  const int fd = ::mkstemp(path);
  EXPECT_GE(fd, 0);
  ::close(fd);
  return path;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(AccessLogSink, OffWritesNothingAndStdoutIsEnabled) {
  AccessLogSink sink;
  EXPECT_FALSE(sink.enabled());
  EXPECT_FALSE(sink.open("off"));
  EXPECT_FALSE(sink.enabled());
  EXPECT_FALSE(sink.open("stdout"));
  EXPECT_TRUE(sink.enabled());
  EXPECT_FALSE(sink.open("off"));
  AccessLogWriter writer(sink);
  writer.append(request(200));
  EXPECT_EQ(writer.buffered_bytes(), 0u);  // not even formatted
}

TEST(AccessLogSink, AppendsToAFileAndReportsOpenErrors) {
  const std::string path = temp_path();
  {
    std::ofstream(path) << "existing\n";
    AccessLogSink sink;
    ASSERT_FALSE(sink.open(path));
    sink.write("line\n");
    EXPECT_EQ(sink.bytes_written(), 5u);
  }
  EXPECT_EQ(read_file(path), "existing\nline\n");
  AccessLogSink bad;
  EXPECT_TRUE(bad.open("/nonexistent-dir/needle/access.log"));
  EXPECT_FALSE(bad.enabled());
  ::unlink(path.c_str());
}

TEST(AccessLogSink, ReopenFollowsLogrotate) {
  const std::string path = temp_path();
  const std::string rotated = path + ".1";
  AccessLogSink sink;
  ASSERT_FALSE(sink.open(path));
  sink.write("before\n");
  ASSERT_EQ(::rename(path.c_str(), rotated.c_str()), 0);
  sink.write("still old\n");  // until reopen, the old (renamed) file gets the lines
  std::thread signal_thread([&] { EXPECT_FALSE(sink.reopen()); });
  signal_thread.join();
  sink.write("after\n");
  EXPECT_EQ(read_file(rotated), "before\nstill old\n");
  EXPECT_EQ(read_file(path), "after\n");
  ::unlink(path.c_str());
  ::unlink(rotated.c_str());
}

TEST(AccessLogWriter, BuffersUntilThresholdOrFlush) {
  const std::string path = temp_path();
  AccessLogSink sink;
  ASSERT_FALSE(sink.open(path));
  AccessLogWriter writer(sink, 1024);
  writer.append(request(200));
  EXPECT_GT(writer.buffered_bytes(), 0u);
  EXPECT_EQ(read_file(path), "");  // nothing written per request
  writer.flush();
  EXPECT_EQ(writer.buffered_bytes(), 0u);
  EXPECT_EQ(read_file(path), format_access_log_line(request(200)));

  const size_t line_size = format_access_log_line(request(200)).size();
  size_t appended = 0;
  while (writer.buffered_bytes() + line_size <= 1024) {
    writer.append(request(200));
    ++appended;
  }
  EXPECT_EQ(read_file(path).size(), line_size);  // still below the threshold
  writer.append(request(200));                   // crosses it: flushed
  EXPECT_EQ(writer.buffered_bytes(), 0u);
  EXPECT_EQ(read_file(path).size(), line_size * (appended + 2));
  ::unlink(path.c_str());
}

TEST(AccessLogWriter, DefaultThresholdIs32KiBAndDestructorFlushes) {
  EXPECT_EQ(AccessLogWriter::kFlushThreshold, 32u * 1024);
  const std::string path = temp_path();
  AccessLogSink sink;
  ASSERT_FALSE(sink.open(path));
  {
    AccessLogWriter writer(sink);
    for (int i = 0; i < 10; ++i) writer.append(request(200));
    EXPECT_EQ(read_file(path), "");
  }
  EXPECT_EQ(read_file(path).size(), 10 * format_access_log_line(request(200)).size());
  ::unlink(path.c_str());
}

TEST(AccessLogWriter, AppendingAndFlushingDoNotAllocate) {
  AccessLogSink sink;
  ASSERT_FALSE(sink.open("/dev/null"));
  AccessLogWriter writer(sink);
  RequestRecord r = request(502, Cause::connect_refused);
  r.detail = "connect: Connection refused";
  r.attempts = {attempt("10.0.0.1:80", 0, Cause::reset_before_response_on_reused, true),
                attempt("10.0.0.2:80", 0, Cause::connect_refused)};
  writer.append(r);
  writer.flush();
  const size_t before = test_alloc::allocations_on_this_thread();
  for (int i = 0; i < 2000; ++i) writer.append(r);  // crosses the 32 KiB threshold several times
  writer.flush();
  EXPECT_EQ(test_alloc::allocations_on_this_thread() - before, 0u);
  EXPECT_GT(sink.bytes_written(), 2000u * 400);
}

TEST(AccessLogWriter, WorkersNeverInterleaveLines) {
  const std::string path = temp_path();
  AccessLogSink sink;
  ASSERT_FALSE(sink.open(path));
  constexpr int kWorkers = 4, kLines = 2000;
  std::vector<std::thread> workers;
  for (int w = 0; w < kWorkers; ++w) {
    workers.emplace_back([&sink, w] {
      AccessLogWriter writer(sink, 4096);
      RequestRecord r = request(200);
      r.worker = static_cast<unsigned>(w);
      r.path = std::string(static_cast<size_t>(100 + w * 50), 'a' + static_cast<char>(w));
      for (int i = 0; i < kLines; ++i) {
        writer.append(r);
        if (i % 97 == 0) std::thread([&sink] { (void)sink.reopen(); }).join();
      }
    });
  }
  for (auto& t : workers) t.join();
  std::ifstream in(path);
  std::string line;
  int lines = 0;
  while (std::getline(in, line)) {
    ++lines;
    ASSERT_EQ(line.front(), '{');
    ASSERT_EQ(line.back(), '}');
    const unsigned w = static_cast<unsigned>(line[line.find("\"worker\":") + 9] - '0');
    const std::string expected_path(100 + w * 50, static_cast<char>('a' + w));
    ASSERT_NE(line.find("\"path\":\"" + expected_path + "\""), std::string::npos) << line;
  }
  EXPECT_EQ(lines, kWorkers * kLines);
  ::unlink(path.c_str());
}

}  // namespace
}  // namespace needle::observe
