#include "http/path_normalizer.h"

#include <cstring>

namespace needle::http {
namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

char upper_hex(char c) {
  return (c >= 'a' && c <= 'f') ? static_cast<char>(c - 'a' + 'A') : c;
}

// RFC 3986 2.3.
bool is_unreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~';
}

bool is_escaped_slash(int byte) {
  return byte == '/' || byte == '\\';
}

// The escape at path[i] ('%'): its byte, or -1 when malformed.
int escape_value(std::string_view path, size_t i) {
  if (i + 2 >= path.size()) return -1;
  const int high = hex_value(path[i + 1]);
  const int low = hex_value(path[i + 2]);
  if (high < 0 || low < 0) return -1;
  return high * 16 + low;
}

bool is_dot_segment_at(std::string_view path, size_t i) {  // i: just after a '/'
  const size_t rest = path.size() - i;
  if (rest >= 1 && path[i] == '.' && (rest == 1 || path[i + 1] == '/')) return true;
  return rest >= 2 && path[i] == '.' && path[i + 1] == '.' && (rest == 2 || path[i + 2] == '/');
}

// One scan: does anything in `path` change (or fail) under normalization? Errors count as
// changes; the full pass finds them.
bool needs_work(std::string_view path, const PathNormalizeOptions& options) {
  for (size_t i = 0; i < path.size(); ++i) {
    const char c = path[i];
    if (c == '/') {
      if (is_dot_segment_at(path, i + 1)) return true;
      if (options.merge_slashes && i + 1 < path.size() && path[i + 1] == '/') return true;
    } else if (c == '%') {
      const int byte = escape_value(path, i);
      if (byte < 0 || is_unreserved(static_cast<unsigned char>(byte))) return true;
      if (is_escaped_slash(byte) && options.escaped_slashes != EscapedSlashAction::keep_unchanged) {
        return true;
      }
      if (upper_hex(path[i + 1]) != path[i + 1] || upper_hex(path[i + 2]) != path[i + 2]) {
        return true;
      }
      i += 2;
    }
  }
  return false;
}

// RFC 3986 6.2.2.1 and 6.2.2.2 into `out`, with the escaped-slash action applied.
PathNormalizeResult decode_escapes(std::string_view path, const PathNormalizeOptions& options,
                                   std::string& out) {
  out.clear();
  out.reserve(path.size());
  for (size_t i = 0; i < path.size(); ++i) {
    const char c = path[i];
    if (c != '%') {
      out.push_back(c);
      continue;
    }
    const int byte = escape_value(path, i);
    if (byte < 0) return PathNormalizeResult::malformed_escape;
    if (is_escaped_slash(byte)) {
      switch (options.escaped_slashes) {
        case EscapedSlashAction::reject_request:
          return PathNormalizeResult::escaped_slash;
        case EscapedSlashAction::unescape_and_forward:
          // A backslash becomes '/' too, as Envoy's normalize_path makes of it.
          out.push_back('/');
          i += 2;
          continue;
        case EscapedSlashAction::keep_unchanged:
          break;
      }
    }
    if (is_unreserved(static_cast<unsigned char>(byte))) {
      out.push_back(static_cast<char>(byte));
    } else {
      out.push_back('%');
      out.push_back(upper_hex(path[i + 1]));
      out.push_back(upper_hex(path[i + 2]));
    }
    i += 2;
  }
  return PathNormalizeResult::normalized;
}

// RFC 3986 5.2.4 on an absolute path, in place, segment by segment: the output [0, w) always
// ends with '/', and w never passes the read position, so moves never overwrite unread input.
void remove_dot_segments(std::string& s, bool merge_slashes) {
  size_t w = 1;
  size_t i = 1;
  for (;;) {
    size_t j = s.find('/', i);
    const bool last = j == std::string::npos;
    if (last) j = s.size();
    const std::string_view segment(s.data() + i, j - i);
    if (segment == ".") {
      // dropped; the output already ends with '/'
    } else if (segment == "..") {
      if (w > 1) w = s.rfind('/', w - 2) + 1;  // drop the last output segment, keep its '/'
    } else if (segment.empty() && merge_slashes && !last) {
      // "//" collapses
    } else {
      std::memmove(s.data() + w, s.data() + i, segment.size());
      w += segment.size();
      if (!last) s[w++] = '/';
    }
    if (last) break;
    i = j + 1;
  }
  s.resize(w);
}

}  // namespace

PathNormalizeResult normalize_path(std::string_view path, const PathNormalizeOptions& options,
                                   std::string& out) {
  if (path.empty() || path.front() != '/') return PathNormalizeResult::unchanged;
  if (!needs_work(path, options)) return PathNormalizeResult::unchanged;
  const PathNormalizeResult decoded = decode_escapes(path, options, out);
  if (decoded != PathNormalizeResult::normalized) return decoded;
  remove_dot_segments(out, options.merge_slashes);
  return out == path ? PathNormalizeResult::unchanged : PathNormalizeResult::normalized;
}

std::string_view path_problem(PathNormalizeResult result) {
  switch (result) {
    case PathNormalizeResult::malformed_escape:
      return "malformed percent-encoding in the request path";
    case PathNormalizeResult::escaped_slash:
      return "encoded slash (%2F or %5C) in the request path";
    case PathNormalizeResult::unchanged:
    case PathNormalizeResult::normalized:
      break;
  }
  return "";
}

}  // namespace needle::http
