#pragma once
// Request path normalization for routing and forwarding (docs/architecture.md "Routing"):
// RFC 3986 6.2.2 syntax-based normalization of the path component only.
//   - 6.2.2.2: escapes of unreserved characters (ALPHA DIGIT - . _ ~, RFC 3986 2.3) are decoded,
//     the hex of every other escape is uppercased (6.2.2.1). "%2e" becomes '.', so it takes part
//     in the next step.
//   - 6.2.2.3 / 5.2.4: dot segments are removed; ".." above the root stays at the root
//     ("/../x" -> "/x"), as RFC 3986 5.2.4, nginx and Envoy do.
//   - An escaped slash or backslash ("%2F", "%5C") follows EscapedSlashAction (Envoy's
//     path_with_escaped_slashes_action): rejected by default, since an upstream that decodes it
//     would see other segments than the ones needle routed on.
//   - A malformed escape ("%zz", a '%' with fewer than two hex digits after it) is an error.
//   - merge_slashes (off by default) collapses runs of '/' into one.
// Pure: no I/O, no allocation when the path needs no change (the common case).
#include <cstdint>
#include <string>
#include <string_view>

namespace needle::http {

enum class EscapedSlashAction : uint8_t {
  reject_request,        // 400 (the default)
  keep_unchanged,        // left encoded (hex uppercased): not a segment separator for needle
  unescape_and_forward,  // "%2F" and "%5C" become '/' before dot-segment removal
};

struct PathNormalizeOptions {
  bool merge_slashes = false;
  EscapedSlashAction escaped_slashes = EscapedSlashAction::reject_request;
};

enum class PathNormalizeResult : uint8_t {
  unchanged,         // the path is already normal; use it as is (`out` holds nothing useful)
  normalized,        // `out` holds the normal form, which differs from the input
  malformed_escape,  // '%' not followed by two hex digits
  escaped_slash,     // "%2F" or "%5C" under EscapedSlashAction::reject_request
};

// `path` is the path component only: from its leading '/' up to (not including) the first '?'
// or '#'. A path that does not start with '/' (e.g. "*") is left unchanged. `out` is written
// (its capacity reused) only when the single scan finds something to change.
PathNormalizeResult normalize_path(std::string_view path, const PathNormalizeOptions& options,
                                   std::string& out);

// Short English explanation of an error result, for the 400 body and the log.
std::string_view path_problem(PathNormalizeResult result);

}  // namespace needle::http
