#include "http/upgrade.h"

#include <algorithm>

#include "http/parser_common.h"
#include "http/serializer.h"

namespace needle::http {
namespace {

bool is_token(std::string_view text) {
  return !text.empty() && std::all_of(text.begin(), text.end(), detail::is_tchar);
}

std::string_view name_part(std::string_view protocol) {
  return protocol.substr(0, protocol.find('/'));
}

// `offered` (from the request) is allowed by a configured name: the same protocol-name and,
// when the configured one has a version, the same version.
bool allows(std::span<const std::string> allowed, std::string_view offered) {
  return std::any_of(allowed.begin(), allowed.end(), [&](const std::string& name) {
    if (name.find('/') != std::string::npos) return iequals(name, offered);
    return iequals(name, name_part(offered));
  });
}

}  // namespace

bool is_protocol_name(std::string_view text) {
  const size_t slash = text.find('/');
  if (slash == std::string_view::npos) return is_token(text);
  return is_token(text.substr(0, slash)) && is_token(text.substr(slash + 1));
}

bool is_h2c(std::string_view protocol) { return iequals(name_part(protocol), "h2c"); }

UpgradeOffer decide_upgrade(const RequestHead& head, std::span<const std::string> allowed) {
  UpgradeOffer offer;
  if (!head.headers.has(FieldId::upgrade)) return offer;
  offer.decision = UpgradeDecision::removed;
  if (head.version_minor == 0 || head.framing != BodyFraming::none) return offer;
  if (!head.headers.has_token(FieldId::connection, "upgrade")) return offer;
  for (const Header& h : head.headers.items()) {
    if (h.id != FieldId::upgrade) continue;
    detail::for_each_list_element(h.value, [&](std::string_view protocol) {
      if (is_protocol_name(protocol) && !is_h2c(protocol) && allows(allowed, protocol)) {
        if (!offer.protocols.empty()) offer.protocols.append(", ");
        offer.protocols.append(protocol);
      }
      return true;
    });
  }
  if (!offer.protocols.empty()) offer.decision = UpgradeDecision::tunnel;
  return offer;
}

bool switches_to_offered(const ResponseHead& response, std::string_view offered) {
  const std::string* upgrade = response.headers.find(FieldId::upgrade);
  if (upgrade == nullptr) return false;
  bool found = false;
  detail::for_each_list_element(*upgrade, [&](std::string_view chosen) {
    detail::for_each_list_element(offered, [&](std::string_view protocol) {
      found = found || iequals(chosen, protocol) ||
              (chosen.find('/') == std::string_view::npos && iequals(chosen, name_part(protocol)));
      return !found;
    });
    return false;  // RFC 9110 7.8: the first protocol listed is the one switched to
  });
  return found;
}

void write_switching_response_head(const ResponseHead& head, std::string& out) {
  out.append("HTTP/1.1 101 ");
  out.append(head.reason.empty() ? reason_phrase(101) : std::string_view(head.reason));
  out.append("\r\n");
  for (const Header& h : head.headers.items()) {
    if (is_hop_by_hop(h.id) || head.headers.has_token(FieldId::connection, h.name)) continue;
    out.append(h.name).append(": ").append(h.value).append("\r\n");
  }
  out.append("Connection: upgrade\r\nUpgrade: ");
  out.append(*head.headers.find(FieldId::upgrade));  // switches_to_offered() checked it is there
  out.append("\r\n\r\n");
}

}  // namespace needle::http
