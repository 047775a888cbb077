#include "http/header_rules.h"

#include <algorithm>

namespace needle::http {
namespace {

struct VariableName {
  std::string_view name;
  HeaderVariable variable;
};
// Longest first, so "$request_uri" is not read as "$request_id" plus text.
constexpr VariableName kVariables[] = {
    {"client_addr", HeaderVariable::client_addr},
    {"request_uri", HeaderVariable::request_uri},
    {"request_id", HeaderVariable::request_id},
    {"scheme", HeaderVariable::scheme},
    {"host", HeaderVariable::host},
};

bool is_tchar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

}  // namespace

std::string_view HeaderVariables::get(HeaderVariable v) const {
  switch (v) {
    case HeaderVariable::client_addr:
      return client_addr;
    case HeaderVariable::request_id:
      return request_id;
    case HeaderVariable::host:
      return host;
    case HeaderVariable::scheme:
      return scheme;
    case HeaderVariable::request_uri:
      return request_uri;
  }
  return {};
}

size_t ValueTemplate::literal_size() const {
  size_t n = 0;
  for (const Piece& p : pieces) n += p.literal.size();
  return n;
}

void HeaderRuleSet::push(HeaderRule rule) {
  rule.id = classify_field(rule.name);
  if (rule.op != HeaderRuleOp::add && rule.id != FieldId::other) replaced_ids_ |= bit(rule.id);
  rules_.push_back(std::move(rule));
}

bool HeaderRuleSet::replaces(const Header& h) const {
  if (h.id != FieldId::other) return replaces(h.id);
  for (const HeaderRule& rule : rules_) {
    if (rule.op != HeaderRuleOp::add && rule.id == FieldId::other && iequals(rule.name, h.name)) {
      return true;
    }
  }
  return false;
}

bool framing_field(std::string_view name) {
  switch (classify_field(name)) {
    case FieldId::content_length:
    case FieldId::transfer_encoding:
    case FieldId::connection:
    case FieldId::keep_alive:
    case FieldId::upgrade:
    case FieldId::te:
    case FieldId::trailer:
    case FieldId::proxy_connection:
    case FieldId::host:
      return true;
    default:
      return false;
  }
}

bool is_field_name(std::string_view name) {
  return !name.empty() && std::all_of(name.begin(), name.end(), is_tchar);
}

std::optional<ValueTemplate> compile_value(std::string_view text, std::string& problem) {
  ValueTemplate out;
  std::string literal;
  auto flush = [&] {
    if (literal.empty()) return;
    out.pieces.push_back({std::move(literal), std::nullopt});
    literal.clear();
  };
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '\r' || c == '\n' || c == '\0') {
      problem = "a header value may not contain CR, LF or NUL (RFC 9110 5.5)";
      return std::nullopt;
    }
    if (c != '$') {
      literal.push_back(c);
      continue;
    }
    if (i + 1 < text.size() && text[i + 1] == '$') {  // "$$" is a literal '$'
      literal.push_back('$');
      ++i;
      continue;
    }
    const std::string_view rest = text.substr(i + 1);
    const VariableName* found = nullptr;
    for (const VariableName& v : kVariables) {
      if (rest.starts_with(v.name)) {
        found = &v;
        break;
      }
    }
    if (found == nullptr) {
      problem =
          "unknown variable after '$' (known: $client_addr, $request_id, $host, $scheme, "
          "$request_uri; write $$ for a literal '$')";
      return std::nullopt;
    }
    flush();
    out.pieces.push_back({std::string(), found->variable});
    i += found->name.size();
  }
  flush();
  return out;
}

}  // namespace needle::http
