#pragma once
// Parsed HTTP/1.1 message heads (RFC 9112). Produced by the parsers in parser.h; consumed by
// the proxy and rewritten by serializer.h.
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/clock.h"

namespace needle::http {

bool iequals(std::string_view a, std::string_view b);

// The field names needle acts on (framing, hop-by-hop, forwarding, retries), classified once per
// field so the rules and the serializer compare small integers instead of names. Everything
// else is `other` and is compared by name (case-insensitive, RFC 9110 5.1).
enum class FieldId : uint8_t {
  other = 0,
  host,
  content_length,
  transfer_encoding,
  connection,
  keep_alive,
  proxy_connection,
  te,
  trailer,
  upgrade,
  expect,
  x_request_id,
  x_forwarded_for,
  x_forwarded_proto,
  via,
  idempotency_key,
  x_idempotency_key,
  // Issue 19 (forwarding headers, response Server).
  x_forwarded_host,
  forwarded,
  server,
  count_,
};
FieldId classify_field(std::string_view name);

struct Header {
  std::string name;   // as received (case preserved)
  std::string value;  // OWS trimmed
  FieldId id = FieldId::other;  // classify_field(name)
};

// Ordered header list; lookups are case-insensitive (RFC 9110 5.1). A bit per known FieldId
// says whether any such field is present, so looking for an absent known field (the common
// case: Transfer-Encoding, Expect, X-Request-Id, ...) costs one test.
// clear() keeps the Header objects (and their strings' capacity) as spare slots, so a parser
// that reuses its list allocates nothing per message once warm.
class HeaderList {
 public:
  void add(std::string_view name, std::string_view value);
  const std::string* find(std::string_view name) const;  // first match or nullptr
  const std::string* find(FieldId id) const;
  size_t count(std::string_view name) const;
  size_t count(FieldId id) const;
  bool has(FieldId id) const { return (present_ & bit(id)) != 0; }
  void remove(std::string_view name);                    // every field with this name
  // True if a comma-separated field (all instances) lists `token`, case-insensitive.
  bool has_token(std::string_view name, std::string_view token) const;
  bool has_token(FieldId id, std::string_view token) const;
  std::span<const Header> items() const { return {slots_.data(), size_}; }
  // For the parser, which builds the last field in place: append_empty(), then back() grows
  // as its pieces arrive, and classify_last() once the name is complete.
  Header& append_empty();
  Header& back() { return slots_[size_ - 1]; }
  void classify_last();
  void reserve(size_t n) { slots_.reserve(n); }
  void clear() {
    size_ = 0;
    present_ = 0;
  }
  size_t size() const { return size_; }

 private:
  static constexpr uint32_t bit(FieldId id) {
    return id == FieldId::other ? 0 : uint32_t{1} << static_cast<unsigned>(id);
  }
  bool matches(const Header& h, FieldId id, std::string_view name) const {
    return id != FieldId::other ? h.id == id : iequals(h.name, name);
  }

  std::vector<Header> slots_;  // [0, size_) are the fields; the rest are spare
  size_t size_ = 0;
  uint32_t present_ = 0;  // bit(id) for every known field in items()
};
static_assert(static_cast<unsigned>(FieldId::count_) <= 32);

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
