#include "tls/dns_name_match.h"

#include <cctype>

namespace needle::tls {
namespace {

bool equal_ignoring_case(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

}  // namespace

bool dns_name_matches(std::string_view pattern, std::string_view host) {
  if (!host.empty() && host.back() == '.') host.remove_suffix(1);
  if (host.empty() || pattern.empty()) return false;
  if (!pattern.starts_with("*.")) return equal_ignoring_case(pattern, host);
  // Wildcard: the host's first label (non-empty) is replaced by `*`; the rest must be equal.
  std::string_view suffix = pattern.substr(1);                      // ".example.com"
  if (suffix.find('.', 1) == std::string_view::npos) return false;  // `*.com`: never
  size_t first_dot = host.find('.');
  if (first_dot == 0 || first_dot == std::string_view::npos) return false;
  return equal_ignoring_case(host.substr(first_dot), suffix);
}

}  // namespace needle::tls
