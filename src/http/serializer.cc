#include "http/serializer.h"

#include <array>
#include <algorithm>
#include <charconv>
#include <cstring>

#include "http/parser_common.h"

namespace needle::http {

namespace {

void append_number(uint64_t n, std::string& out) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), n);
  out.append(buf, end);
}

void append_field(std::string_view name, std::string_view value, std::string& out) {
  out.append(name);
  out.append(": ");
  out.append(value);
  out.append("\r\n");
}

// Writes a head at the end of `out` through a cursor: one room check per piece, where
// std::string::append checks capacity and rewrites the terminator on every call (about a
// third of a proxied request's serializing cost). The destructor trims `out` to what was
// written; `expected` is a size hint, not a limit.
class HeadBuilder {
 public:
  HeadBuilder(std::string& out, size_t expected) : out_(out), pos_(out.size()) {
    out_.resize(pos_ + expected);
  }
  HeadBuilder(const HeadBuilder&) = delete;
  HeadBuilder& operator=(const HeadBuilder&) = delete;
  ~HeadBuilder() { out_.resize(pos_); }

  // Inlined, so that literal pieces are copied by a few stores instead of a memcpy call.
  [[gnu::always_inline]] void put(std::string_view text) {
    make_room(text.size());
    copy(text);
  }
  [[gnu::always_inline]] void put(char c) {
    make_room(1);
    out_[pos_++] = c;
  }
  void put_number(uint64_t n) {
    char buf[24];
    auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), n);
    put(std::string_view(buf, static_cast<size_t>(end - buf)));
  }
  // "<name>: <value>\r\n"
  [[gnu::always_inline]] void put_field(std::string_view name, std::string_view value) {
    make_room(name.size() + value.size() + 4);
    copy(name);
    copy(": ");
    copy(value);
    copy("\r\n");
  }

 private:
  [[gnu::always_inline]] void make_room(size_t n) {
    if (out_.size() - pos_ < n) [[unlikely]] grow(n);
  }
  [[gnu::noinline]] void grow(size_t n) { out_.resize(std::max(2 * out_.size(), pos_ + n + 256)); }
  [[gnu::always_inline]] void copy(std::string_view text) {  // room already made
    if (text.empty()) return;  // an empty view's data() may be null, which memcpy must not get
    std::memcpy(out_.data() + pos_, text.data(), text.size());
    pos_ += text.size();
  }

  std::string& out_;
  size_t pos_;
};

// The field names the Connection header lists (RFC 9110 7.6.1), gathered once per head so the
// per-field check is a short scan. Views point into `headers`.
class ConnectionOptions {
 public:
  explicit ConnectionOptions(const HeaderList& headers) : headers_(headers) {
    if (!headers.has(FieldId::connection)) return;
    for (const Header& h : headers.items()) {
      if (h.id != FieldId::connection) continue;
      detail::for_each_list_element(h.value, [&](std::string_view token) {
        if (token.empty()) return true;
        if (count_ == tokens_.size()) {
          overflow_ = true;
          return false;
        }
        tokens_[count_++] = token;
        return true;
      });
    }
  }

  bool lists(std::string_view name) const {
    if (overflow_) return headers_.has_token(FieldId::connection, name);
    for (size_t i = 0; i < count_; ++i) {
      if (iequals(tokens_[i], name)) return true;
    }
    return false;
  }

 private:
  const HeaderList& headers_;
  std::array<std::string_view, 16> tokens_{};
  size_t count_ = 0;
  bool overflow_ = false;
};

// Fields needle writes itself (or drops: Expect, as needle answers 100-continue) on the way
// upstream. Naming them in Connection does not remove them: a client could otherwise erase the
// X-Forwarded-For chain a trusted front proxy added.
bool rewritten_for_upstream(FieldId id) {
  switch (id) {
    case FieldId::host:
    case FieldId::x_forwarded_for:
    case FieldId::x_forwarded_proto:
    case FieldId::x_forwarded_host:
    case FieldId::via:
    case FieldId::x_request_id:
    case FieldId::content_length:
    case FieldId::expect:
      return true;
    default:
      return false;
  }
}

// "existing, next" over every instance of `name`, written as one field line (RFC 9110 5.3):
// many applications read only the first X-Forwarded-For line.
void put_list_field(const HeaderList& headers, FieldId id, std::string_view name,
                    std::string_view next, HeadBuilder& out) {
  bool any = false;
  auto put_element = [&](std::string_view value) {
    if (any) {
      out.put(", ");
    } else {
      out.put(name);
      out.put(": ");
      any = true;
    }
    out.put(value);
  };
  if (headers.has(id)) {
    for (const Header& h : headers.items()) {
      if (h.id == id && !h.value.empty()) put_element(h.value);
    }
  }
  if (!next.empty()) put_element(next);
  if (any) out.put("\r\n");
}

void put_template(const ValueTemplate& value, const HeaderVariables& variables, HeadBuilder& out) {
  for (const ValueTemplate::Piece& piece : value.pieces) {
    out.put(piece.variable ? variables.get(*piece.variable) : std::string_view(piece.literal));
  }
}

// The set and add rules of a route, after everything else of the head (docs/config.md
// "Header rules"); remove and set already dropped the message's own instances.
void put_rule_fields(const HeaderRuleSet* rules, const HeaderVariables* variables,
                     HeadBuilder& out) {
  if (rules == nullptr) return;
  for (const HeaderRule& rule : rules->rules()) {
    if (rule.op == HeaderRuleOp::remove) continue;
    out.put(rule.name);
    out.put(": ");
    put_template(rule.value, *variables, out);
    out.put("\r\n");
  }
}

bool replaced(const HeaderRuleSet* rules, FieldId id) {
  return rules != nullptr && rules->replaces(id);
}

// RFC 7239 4: node = IPv4 / "[" IPv6 "]" (quoted) ; host and proto as quoted-string where
// needed. needle's element: for=<client>;host=<host>;proto=<scheme>.
void put_forwarded_element(const UpstreamRequestContext& ctx, std::string_view host,
                           HeadBuilder& out) {
  const bool v6 = ctx.client_address.find(':') != std::string_view::npos;
  out.put(v6 ? "for=\"[" : "for=");
  out.put(ctx.client_address);
  out.put(v6 ? "]\";host=\"" : ";host=\"");
  out.put(host);
  out.put("\";proto=");
  out.put(ctx.proto);
}

size_t estimate_head_size(const HeaderList& headers) {
  size_t n = 256;
  for (const Header& h : headers.items()) n += h.name.size() + h.value.size() + 4;
  return n;
}

}  // namespace

bool is_hop_by_hop(FieldId id) {
  switch (id) {
    case FieldId::connection:
    case FieldId::keep_alive:
    case FieldId::proxy_connection:
    case FieldId::te:
    case FieldId::trailer:
    case FieldId::transfer_encoding:
    case FieldId::upgrade:
      return true;
    default:
      return false;
  }
}

bool is_hop_by_hop(std::string_view name) { return is_hop_by_hop(classify_field(name)); }

void write_upstream_request_head(const RequestHead& head, const UpstreamRequestContext& ctx,
                                 BodyFraming framing, std::string& out) {
  HeadBuilder b(out, estimate_head_size(head.headers) + head.method.size() + head.target.size() +
                         head.host.size() + ctx.client_address.size() + ctx.request_id.size());

  // RFC 9112 3.2.1: origin-form towards the origin server; absolute-form is for proxies.
  b.put(head.method);
  b.put(' ');
  std::string_view path;
  if (!ctx.target.empty()) {
    b.put(ctx.target);
  } else if (detail::absolute_form_authority(head.target, &path)) {
    path = path.substr(0, path.find('#'));
    if (path.empty() || path.front() != '/') b.put('/');
    b.put(path);
  } else {
    b.put(head.target);
  }
  b.put(" HTTP/1.1\r\n");

  // RFC 9112 3.2: Host first; head.host is the validated one (the authority for absolute-form).
  b.put_field("Host", ctx.host.empty() ? std::string_view(head.host) : ctx.host);

  const ConnectionOptions options(head.headers);
  const HeaderRuleSet* rules = ctx.rules;
  for (const Header& h : head.headers.items()) {
    if (is_hop_by_hop(h.id) || rewritten_for_upstream(h.id)) continue;
    if (h.id == FieldId::forwarded && ctx.forwarded) continue;  // written below
    if (options.lists(h.name)) continue;
    if (rules != nullptr && rules->replaces(h)) continue;
    b.put_field(h.name, h.value);
  }

  // docs/config.md "Client address and X-Forwarded-*": a trusted peer's chain is extended, an
  // untrusted one's replaced (a client cannot pose as someone else behind needle).
  if (!replaced(rules, FieldId::x_forwarded_for)) {
    if (ctx.peer_trusted) {
      put_list_field(head.headers, FieldId::x_forwarded_for, "X-Forwarded-For", ctx.client_address,
                     b);
    } else {
      b.put_field("X-Forwarded-For", ctx.client_address);
    }
  }
  const std::string* proto =
      ctx.peer_trusted ? head.headers.find(FieldId::x_forwarded_proto) : nullptr;
  if (!replaced(rules, FieldId::x_forwarded_proto)) {
    b.put_field("X-Forwarded-Proto", proto != nullptr ? std::string_view(*proto) : ctx.proto);
  }
  const std::string* forwarded_host =
      ctx.peer_trusted ? head.headers.find(FieldId::x_forwarded_host) : nullptr;
  if (!replaced(rules, FieldId::x_forwarded_host)) {
    b.put_field("X-Forwarded-Host",
                forwarded_host != nullptr ? std::string_view(*forwarded_host) : head.host);
  }
  if (ctx.forwarded && !replaced(rules, FieldId::forwarded)) {
    b.put("Forwarded: ");
    bool first = true;
    if (ctx.peer_trusted && head.headers.has(FieldId::forwarded)) {
      for (const Header& h : head.headers.items()) {
        if (h.id != FieldId::forwarded || h.value.empty()) continue;
        if (!first) b.put(", ");
        b.put(h.value);
        first = false;
      }
    }
    if (!first) b.put(", ");
    put_forwarded_element(ctx, head.host, b);
    b.put("\r\n");
  }
  // RFC 9110 7.6.3: received-protocol is the version the client spoke to needle.
  if (!replaced(rules, FieldId::via)) {
    put_list_field(head.headers, FieldId::via, "Via",
                   !ctx.via                  ? std::string_view()
                   : head.version_minor == 0 ? "1.0 needle"
                                             : "1.1 needle",
                   b);
  }
  // The session chose the id (the client's when usable, else a generated one) and logs it: send
  // exactly that one, so the access log's request_id is what the upstream saw.
  if (replaced(rules, FieldId::x_request_id)) {
    // the route's rule sets or removes it
  } else if (!ctx.request_id.empty()) {
    b.put_field("X-Request-Id", ctx.request_id);
  } else if (const std::string* id = head.headers.find(FieldId::x_request_id); id != nullptr) {
    b.put_field("X-Request-Id", *id);
  }

  if (!ctx.upgrade.empty()) {  // RFC 9110 7.8: the Upgrade option is listed in Connection
    b.put("Connection: upgrade\r\n");
    b.put_field("Upgrade", ctx.upgrade);
  }

  if (framing == BodyFraming::content_length) {
    b.put("Content-Length: ");
    b.put_number(head.content_length);
    b.put("\r\n");
  } else if (framing == BodyFraming::chunked) {
    b.put("Transfer-Encoding: chunked\r\n");
  }
  put_rule_fields(rules, ctx.variables, b);
  b.put("\r\n");
}

BodyFraming write_downstream_response_head(const ResponseHead& head,
                                           const DownstreamResponseContext& ctx, std::string& out) {
  HeadBuilder b(out, estimate_head_size(head.headers) + head.reason.size());
  const bool interim = head.status < 200;
  // RFC 9110 6.4.1 / 9112 6.3: these carry no body; their Content-Length (the size a GET would
  // have had) is passed through verbatim.
  const bool no_body = interim || head.status == 204 || head.status == 304 || ctx.request_is_head;
  const bool http10_client = ctx.client_version_minor == 0;

  BodyFraming framing = BodyFraming::none;
  if (!no_body) {
    switch (head.framing) {
      case BodyFraming::content_length:
        framing = BodyFraming::content_length;
        break;
      case BodyFraming::chunked:
      case BodyFraming::until_close:
        // RFC 9112 7: an HTTP/1.0 recipient cannot decode chunked; the close delimits instead.
        framing = http10_client ? BodyFraming::until_close : BodyFraming::chunked;
        break;
      case BodyFraming::none:
        framing = BodyFraming::content_length;  // an empty body, said explicitly
        break;
    }
  }
  const bool keep = ctx.keep_alive && framing != BodyFraming::until_close;

  // RFC 9110 6.2: needle speaks HTTP/1.1 and says so, also to HTTP/1.0 clients.
  b.put("HTTP/1.1 ");
  b.put_number(static_cast<uint64_t>(head.status));
  b.put(' ');
  b.put(head.reason.empty() ? reason_phrase(head.status) : std::string_view(head.reason));
  b.put("\r\n");

  const ConnectionOptions options(head.headers);
  const HeaderRuleSet* rules = ctx.rules;
  for (const Header& h : head.headers.items()) {
    if (is_hop_by_hop(h.id) || options.lists(h.name)) continue;
    if (h.id == FieldId::content_length && !no_body) continue;  // re-written below
    if (h.id == FieldId::server && !ctx.server.empty()) continue;
    if (rules != nullptr && rules->replaces(h)) continue;
    b.put_field(h.name, h.value);
  }
  if (!ctx.server.empty()) b.put_field("Server", ctx.server);

  if (framing == BodyFraming::content_length) {
    b.put("Content-Length: ");
    b.put_number(head.framing == BodyFraming::content_length ? head.content_length : 0);
    b.put("\r\n");
  } else if (framing == BodyFraming::chunked) {
    b.put("Transfer-Encoding: chunked\r\n");
  }

  if (!interim) {
    if (!keep) {
      b.put("Connection: close\r\n");
    } else {
      if (http10_client) b.put("Connection: keep-alive\r\n");
      if (ctx.keep_alive_timeout) {
        b.put("Keep-Alive: timeout=");
        b.put_number(
            static_cast<uint64_t>(std::max<long long>(0, ctx.keep_alive_timeout->count() / 1000)));
        b.put("\r\n");
      }
    }
  }
  put_rule_fields(rules, ctx.variables, b);
  b.put("\r\n");
  return framing;
}

void write_chunk_header(size_t size, std::string& out) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), size, 16);
  out.append(buf, end);
  out.append("\r\n");
}

void write_local_response(int status, std::string_view detail, bool close,
                          std::string_view request_id, std::string& out, bool head_request,
                          std::string_view extra_fields) {
  const std::string_view reason = reason_phrase(status);
  // Body: "<status> <reason>: <detail>\n", or "<status> <reason>\n" without a detail.
  char code[8];
  auto [code_end, ec] = std::to_chars(code, code + sizeof(code), status);
  const std::string_view code_text(code, static_cast<size_t>(code_end - code));
  const size_t body_size =
      code_text.size() + 1 + reason.size() + (detail.empty() ? 0 : 2 + detail.size()) + 1;

  out.reserve(out.size() + 160 + request_id.size() + body_size);
  out.append("HTTP/1.1 ");
  out.append(code_text);
  out.push_back(' ');
  out.append(reason);
  out.append("\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ");
  append_number(body_size, out);
  out.append("\r\n");
  if (!request_id.empty()) append_field("X-Request-Id", request_id, out);
  if (close) out.append("Connection: close\r\n");
  out.append(extra_fields);
  out.append("\r\n");
  if (head_request) return;
  out.append(code_text);
  out.push_back(' ');
  out.append(reason);
  if (!detail.empty()) {
    out.append(": ");
    out.append(detail);
  }
  out.push_back('\n');
}

void write_return_response(int status,
                           const std::vector<std::pair<std::string, ValueTemplate>>& headers,
                           std::string_view body, const HeaderVariables& variables, bool close,
                           bool head_request, std::string& out) {
  HeadBuilder b(out, 160 + body.size());
  b.put("HTTP/1.1 ");
  b.put_number(static_cast<uint64_t>(status));
  b.put(' ');
  b.put(reason_phrase(status));
  b.put("\r\n");
  bool has_type = false;
  for (const auto& [name, value] : headers) {
    has_type = has_type || iequals(name, "content-type");
    b.put(name);
    b.put(": ");
    put_template(value, variables, b);
    b.put("\r\n");
  }
  if (!body.empty() && !has_type) b.put("Content-Type: text/plain; charset=utf-8\r\n");
  const bool bodiless = status == 204 || status == 304;  // RFC 9110 8.6, 15.3.5, 15.4.5
  if (!bodiless) {
    b.put("Content-Length: ");
    b.put_number(body.size());
    b.put("\r\n");
  }
  if (!variables.request_id.empty()) b.put_field("X-Request-Id", variables.request_id);
  if (close) b.put("Connection: close\r\n");
  b.put("\r\n");
  if (!head_request && !bodiless) b.put(body);  // RFC 9110 9.3.2
}

// RFC 9110 15 (and RFC 6585, 8297, 4918 for the ones nginx and HAProxy also know).
std::string_view reason_phrase(int status) {
  switch (status) {
    // clang-format off
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 102: return "Processing";
    case 103: return "Early Hints";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 203: return "Non-Authoritative Information";
    case 204: return "No Content";
    case 205: return "Reset Content";
    case 206: return "Partial Content";
    case 207: return "Multi-Status";
    case 208: return "Already Reported";
    case 226: return "IM Used";
    case 300: return "Multiple Choices";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 305: return "Use Proxy";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 402: return "Payment Required";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 407: return "Proxy Authentication Required";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 416: return "Range Not Satisfiable";
    case 417: return "Expectation Failed";
    case 418: return "I'm a teapot";
    case 421: return "Misdirected Request";
    case 422: return "Unprocessable Content";
    case 423: return "Locked";
    case 424: return "Failed Dependency";
    case 425: return "Too Early";
    case 426: return "Upgrade Required";
    case 428: return "Precondition Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 451: return "Unavailable For Legal Reasons";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    case 506: return "Variant Also Negotiates";
    case 507: return "Insufficient Storage";
    case 508: return "Loop Detected";
    case 510: return "Not Extended";
    case 511: return "Network Authentication Required";
    // clang-format on
    default:
      return "";
  }
}

}  // namespace needle::http
