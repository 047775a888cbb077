#pragma once
// Small JSON output helpers shared by the access log, the pools page, the alert batches and
// doctor's report. Output only: needle never parses JSON on the data path.
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace needle::json {

// Appends `text` as a quoted JSON string (RFC 8259 section 7): '"', '\\' and every control
// byte (< 0x20, and 0x7F) are escaped; valid UTF-8 passes through unchanged; each byte that is
// not part of a valid UTF-8 sequence (overlong, surrogate, > U+10FFFF, truncated) is written
// as \u00XX so the line stays valid JSON and the raw byte value stays visible.
void append_string(std::string& out, std::string_view text);
std::string quote(std::string_view text);

// RFC 3339 UTC with milliseconds: "2024-05-01T12:34:56.789Z".
void append_time(std::string& out, std::chrono::system_clock::time_point time);
std::string format_time(std::chrono::system_clock::time_point time);

}  // namespace needle::json
