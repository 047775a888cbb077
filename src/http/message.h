#pragma once
// Parsed HTTP/1.1 message heads (RFC 9112). Produced by the parsers in parser.h; consumed by
// the proxy and rewritten by serializer.h.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/clock.h"

namespace needle::http {

bool iequals(std::string_view a, std::string_view b);

struct Header {
  std::string name;   // as received (case preserved)
  std::string value;  // OWS trimmed
};

// Ordered header list; lookups are case-insensitive (RFC 9110 5.1).
class HeaderList {
 public:
  void add(std::string name, std::string value);
  const std::string* find(std::string_view name) const;  // first match or nullptr
  size_t count(std::string_view name) const;
  void remove(std::string_view name);                    // every field with this name
  // True if a comma-separated field (all instances) lists `token`, case-insensitive.
  bool has_token(std::string_view name, std::string_view token) const;
  const std::vector<Header>& items() const { return items_; }
  std::vector<Header>& items() { return items_; }
  void clear() { items_.clear(); }
  size_t size() const { return items_.size(); }

 private:
  std::vector<Header> items_;
};

// How a message body is delimited (RFC 9112 6.3).
enum class BodyFraming { none, content_length, chunked, until_close };

struct RequestHead {
  std::string method;
  std::string target;        // as received (origin-form, absolute-form, ...)
  int version_minor = 1;     // HTTP/1.x
  HeaderList headers;
  BodyFraming framing = BodyFraming::none;
  uint64_t content_length = 0;
  bool keep_alive = true;    // client wants the connection kept (version + Connection)
  bool expect_continue = false;
  std::string host;          // Host header value (validated), authority of absolute-form

  bool is_head() const { return method == "HEAD"; }
};

struct ResponseHead {
  int status = 0;
  std::string reason;
  int version_minor = 1;
  HeaderList headers;
  BodyFraming framing = BodyFraming::none;
  uint64_t content_length = 0;
  bool keep_alive = true;                  // upstream allows reuse (version + Connection)
  std::optional<Millis> keep_alive_hint;   // from "Keep-Alive: timeout=N" (seconds)
};

// RFC 9110 9.2.2.
bool is_idempotent_method(std::string_view method);

}  // namespace needle::http
