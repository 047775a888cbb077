#pragma once
// Loopback ports and scratch directories for tests that start real processes.
#include <filesystem>
#include <string>
#include <string_view>

namespace needle::test {

// A TCP port on 127.0.0.1 that was free a moment ago: bound to port 0, read back, closed.
// Another process may take it before the caller binds it; fixtures that start servers on such
// a port retry with a fresh one when the server reports the address in use.
// Throws std::runtime_error if no socket can be bound.
int free_port();

// A directory made with mkdtemp under $TMPDIR (or /tmp), removed with its contents on
// destruction. Move-only.
class TempDir {
 public:
  explicit TempDir(std::string_view prefix = "needle-test");
  ~TempDir();
  TempDir(TempDir&& other) noexcept;
  TempDir& operator=(TempDir&& other) noexcept;
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path file(std::string_view name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

// Whole-file helpers; write_text_file throws std::runtime_error on failure, read_text_file
// returns "" for a missing file.
void write_text_file(const std::filesystem::path& path, std::string_view text);
std::string read_text_file(const std::filesystem::path& path);

}  // namespace needle::test
