#pragma once
// Per-route header rules (docs/config.md "Header rules"): set, add and remove fields on the
// request sent upstream or on the response sent to the client. Compiled once at config load
// into plain data: a value is a list of literal pieces and variables, expanded straight into
// the head being written (no allocation per request).
//
// The rules run after needle's own hop-by-hop handling (RFC 9110 7.6.1) and may not name a
// field that frames the message or the connection: `needle check` refuses them
// (framing_field()), so a rule can never smuggle a second Content-Length or a
// Transfer-Encoding past the serializer.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "http/message.h"

namespace needle::http {

// $client_addr, $request_id, $host, $scheme, $request_uri.
enum class HeaderVariable : uint8_t { client_addr, request_id, host, scheme, request_uri };

// The values variables take for one request. Views point into the session's own state.
struct HeaderVariables {
  std::string_view client_addr;
  std::string_view request_id;
  std::string_view host;
  std::string_view scheme = "http";
  std::string_view request_uri;

  std::string_view get(HeaderVariable v) const;
};

// "https://$host$request_uri" -> literal "https://", $host, $request_uri.
struct ValueTemplate {
  struct Piece {
    std::string literal;  // used when !variable
    std::optional<HeaderVariable> variable;
  };
  std::vector<Piece> pieces;

  size_t literal_size() const;
};

enum class HeaderRuleOp : uint8_t { set, add, remove };

struct HeaderRule {
  HeaderRuleOp op = HeaderRuleOp::set;
  std::string name;  // as written in the config (case kept for the field line)
  FieldId id = FieldId::other;
  ValueTemplate value;  // empty for remove
};

class HeaderRuleSet {
 public:
  void push(HeaderRule rule);
  bool empty() const { return rules_.empty(); }
  const std::vector<HeaderRule>& rules() const { return rules_; }
  // True when a set or remove rule names this field: the message's own instances are dropped
  // (and needle does not write its own, e.g. X-Forwarded-Proto, when a rule sets it).
  bool replaces(const Header& h) const;
  bool replaces(FieldId id) const { return id != FieldId::other && (replaced_ids_ & bit(id)); }

 private:
  static uint32_t bit(FieldId id) { return uint32_t{1} << static_cast<unsigned>(id); }
  std::vector<HeaderRule> rules_;
  uint32_t replaced_ids_ = 0;  // bit(id) of known fields that set/remove rules name
};

// Fields no rule may name: they frame the message or the connection (RFC 9112 6, RFC 9110
// 7.6.1), or (Host) say where the request goes, which `host_rewrite` owns.
bool framing_field(std::string_view name);

// Compiles a rule value. nullopt and `problem` set on an unknown variable or a byte a field
// value may not hold (CR, LF, NUL: RFC 9110 5.5).
std::optional<ValueTemplate> compile_value(std::string_view text, std::string& problem);

// A field name is a token (RFC 9110 5.1).
bool is_field_name(std::string_view name);

}  // namespace needle::http
