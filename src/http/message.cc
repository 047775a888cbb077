#include "http/message.h"

#include <algorithm>

#include "http/parser_common.h"

namespace needle::http {

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (detail::ascii_lower(a[i]) != detail::ascii_lower(b[i])) return false;
  }
  return true;
}

void HeaderList::add(std::string name, std::string value) {
  items_.push_back(Header{std::move(name), std::move(value)});
}

const std::string* HeaderList::find(std::string_view name) const {
  for (const Header& h : items_) {
    if (iequals(h.name, name)) return &h.value;
  }
  return nullptr;
}

size_t HeaderList::count(std::string_view name) const {
  size_t n = 0;
  for (const Header& h : items_) n += iequals(h.name, name) ? 1 : 0;
  return n;
}

void HeaderList::remove(std::string_view name) {
  std::erase_if(items_, [name](const Header& h) { return iequals(h.name, name); });
}

bool HeaderList::has_token(std::string_view name, std::string_view token) const {
  for (const Header& h : items_) {
    if (!iequals(h.name, name)) continue;
    bool found = false;
    detail::for_each_list_element(h.value, [&](std::string_view element) {
      if (iequals(element, token)) found = true;
      return !found;
    });
    if (found) return true;
  }
  return false;
}

bool is_idempotent_method(std::string_view method) {
  return method == "GET" || method == "HEAD" || method == "OPTIONS" || method == "TRACE" ||
         method == "PUT" || method == "DELETE";
}

}  // namespace needle::http
