#include "http/message.h"

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "http/parser_common.h"

namespace needle::http {

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (detail::ascii_lower(a[i]) != detail::ascii_lower(b[i])) return false;
  }
  return true;
}

namespace {

uint64_t load_word(const char* p) {
  uint64_t word;
  std::memcpy(&word, p, sizeof word);
  return word;
}

// Lower-case `name` equals the lower-case literal `lower` (same size, 2 to 24 bytes), compared
// 8 bytes at a time with bit 0x20 set on every byte. That is exact here: the literals hold only
// lower-case letters and '-', and the one other byte that matches '-' that way is CR, which no
// field name holds (llhttp rejects it). Short names compare byte by byte.
bool equals_lower(std::string_view name, std::string_view lower) {
  const size_t n = lower.size();
  if (n < 8) {
    for (size_t i = 0; i < n; ++i) {
      if (detail::ascii_lower(name[i]) != lower[i]) return false;
    }
    return true;
  }
  constexpr uint64_t kCaseBits = 0x2020202020202020;
  auto same = [&](size_t at) {
    return (load_word(name.data() + at) | kCaseBits) == load_word(lower.data() + at);
  };
  // Overlapping words cover every byte: [0, 8), [8, 16) when n > 16, and [n - 8, n).
  return same(0) && (n <= 16 || same(8)) && same(n - 8);
}

}  // namespace

FieldId classify_field(std::string_view name) {
  // By length first: one or two comparisons per field.
  auto is = [name](std::string_view lower) { return equals_lower(name, lower); };
  switch (name.size()) {
    case 2:
      return is("te") ? FieldId::te : FieldId::other;
    case 3:
      return is("via") ? FieldId::via : FieldId::other;
    case 4:
      return is("host") ? FieldId::host : FieldId::other;
    case 6:
      if (is("server")) return FieldId::server;
      return is("expect") ? FieldId::expect : FieldId::other;
    case 7:
      if (is("trailer")) return FieldId::trailer;
      return is("upgrade") ? FieldId::upgrade : FieldId::other;
    case 9:
      return is("forwarded") ? FieldId::forwarded : FieldId::other;
    case 10:
      if (is("connection")) return FieldId::connection;
      return is("keep-alive") ? FieldId::keep_alive : FieldId::other;
    case 12:
      return is("x-request-id") ? FieldId::x_request_id : FieldId::other;
    case 14:
      return is("content-length") ? FieldId::content_length : FieldId::other;
    case 15:
      if (is("x-forwarded-for")) return FieldId::x_forwarded_for;
      return is("idempotency-key") ? FieldId::idempotency_key : FieldId::other;
    case 16:
      if (is("x-forwarded-host")) return FieldId::x_forwarded_host;
      return is("proxy-connection") ? FieldId::proxy_connection : FieldId::other;
    case 17:
      if (is("transfer-encoding")) return FieldId::transfer_encoding;
      if (is("x-forwarded-proto")) return FieldId::x_forwarded_proto;
      return is("x-idempotency-key") ? FieldId::x_idempotency_key : FieldId::other;
    default:
      return FieldId::other;
  }
}

Header& HeaderList::append_empty() {
  if (size_ == slots_.size()) {
    slots_.emplace_back();
  } else {
    Header& spare = slots_[size_];
    spare.name.clear();
    spare.value.clear();
    spare.id = FieldId::other;
  }
  return slots_[size_++];
}

void HeaderList::add(std::string_view name, std::string_view value) {
  Header& h = append_empty();
  h.name.assign(name);
  h.value.assign(value);
  classify_last();
}

void HeaderList::classify_last() {
  Header& h = back();
  h.id = classify_field(h.name);
  present_ |= bit(h.id);
}

const std::string* HeaderList::find(std::string_view name) const {
  const FieldId id = classify_field(name);
  if (id != FieldId::other) return find(id);
  for (const Header& h : items()) {
    if (iequals(h.name, name)) return &h.value;
  }
  return nullptr;
}

const std::string* HeaderList::find(FieldId id) const {
  if (!has(id)) return nullptr;
  for (const Header& h : items()) {
    if (h.id == id) return &h.value;
  }
  return nullptr;
}

size_t HeaderList::count(std::string_view name) const {
  const FieldId id = classify_field(name);
  if (id != FieldId::other) return count(id);
  size_t n = 0;
  for (const Header& h : items()) n += iequals(h.name, name) ? 1 : 0;
  return n;
}

size_t HeaderList::count(FieldId id) const {
  if (!has(id)) return 0;
  size_t n = 0;
  for (const Header& h : items()) n += h.id == id ? 1 : 0;
  return n;
}

void HeaderList::remove(std::string_view name) {
  const FieldId id = classify_field(name);
  // Kept fields move to the front; the removed ones end up as spare slots.
  const auto kept_end = std::stable_partition(
      slots_.begin(), slots_.begin() + static_cast<ptrdiff_t>(size_),
      [&](const Header& h) { return !matches(h, id, name); });
  size_ = static_cast<size_t>(kept_end - slots_.begin());
  present_ = 0;
  for (const Header& h : items()) present_ |= bit(h.id);
}

namespace {

bool lists_token(const Header& h, std::string_view token) {
  bool found = false;
  detail::for_each_list_element(h.value, [&](std::string_view element) {
    if (iequals(element, token)) found = true;
    return !found;
  });
  return found;
}

}  // namespace

bool HeaderList::has_token(std::string_view name, std::string_view token) const {
  const FieldId id = classify_field(name);
  if (id != FieldId::other) return has_token(id, token);
  const auto fields = items();
  return std::any_of(fields.begin(), fields.end(), [&](const Header& h) {
    return iequals(h.name, name) && lists_token(h, token);
  });
}

bool HeaderList::has_token(FieldId id, std::string_view token) const {
  if (!has(id)) return false;
  const auto fields = items();
  return std::any_of(fields.begin(), fields.end(),
                     [&](const Header& h) { return h.id == id && lists_token(h, token); });
}

bool is_idempotent_method(std::string_view method) {
  return method == "GET" || method == "HEAD" || method == "OPTIONS" || method == "TRACE" ||
         method == "PUT" || method == "DELETE";
}

}  // namespace needle::http
