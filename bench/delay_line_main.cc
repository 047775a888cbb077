// needle-delay-line: the test suite's DelayLine (tests/support/delay_line.h) as a standalone
// process for bench/race.sh. Forwards 127.0.0.1:<listen> to 127.0.0.1:<target>, delaying bytes,
// FIN and RST by <delay_ms> each way.
//
//   needle-delay-line <target_port> <delay_ms> <stats_file>
//
// Prints the listen port on stdout (one line), then rewrites <stats_file> every 100 ms with
// "accepted <connections> resets <rsts passed>" until SIGTERM or SIGINT.
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <thread>

#include "support/delay_line.h"

namespace {
volatile std::sig_atomic_t stop = 0;
void on_signal(int) { stop = 1; }

void write_stats(const char* path, const needle::test::DelayLine& line) {
  const std::string tmp = std::string(path) + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << "accepted " << line.connections_accepted() << " resets " << line.resets_passed()
        << "\n";
  }
  std::rename(tmp.c_str(), path);
}
}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: %s <target_port> <delay_ms> <stats_file>\n", argv[0]);
    return 2;
  }
  try {
    needle::test::DelayLine line(std::atoi(argv[1]), std::chrono::milliseconds(std::atoi(argv[2])));
    std::signal(SIGTERM, on_signal);
    std::signal(SIGINT, on_signal);
    std::printf("%d\n", line.port());
    std::fflush(stdout);
    while (!stop) {
      write_stats(argv[3], line);
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    write_stats(argv[3], line);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "needle-delay-line: %s\n", e.what());
    return 1;
  }
  return 0;
}
