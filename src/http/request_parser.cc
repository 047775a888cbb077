// RequestParser: llhttp strict plus the request rules of RFC 9112 and RFC 9110 that a
// reverse proxy must enforce so that it and the upstream agree on where a request ends.
#include "http/parser.h"
#include "http/parser_common.h"

namespace needle::http {

using detail::ParserCore;

struct RequestParser::Impl final : ParserCore {
  explicit Impl(const ParserLimits& limits) : ParserCore(Kind::request, limits, head_.headers) {
    head_.headers.reserve(16);  // grows once for header-heavy messages, then kept
  }

  RequestHead head_;

  int on_start_line_part(int part, const char* at, size_t len) override {
    if (part == kMethod) head_.method.append(at, len);
    if (part == kTarget) head_.target.append(at, len);
    return 0;
  }

  void on_reset() override {
    head_.method.clear();
    head_.target.clear();
    head_.version_minor = 1;
    head_.framing = BodyFraming::none;
    head_.content_length = 0;
    head_.keep_alive = true;
    head_.expect_continue = false;
    head_.host.clear();
  }

  int on_head_complete() override {
    RequestHead& h = head_;
    // RFC 9112 2.3: only HTTP/1.0 and HTTP/1.1 are spoken here. llhttp strict itself rejects
    // 1.2+ and 3+, but passes 0.9 and 2.0 through.
    if (parser_.http_major == 2) return fail(505, "http_version_not_supported");
    if (parser_.http_major != 1 || parser_.http_minor > 1) return fail(400, "invalid_version");
    h.version_minor = parser_.http_minor;

    // A reverse proxy opens no CONNECT tunnels (RFC 9110 9.3.6): the method is not allowed
    // here (15.5.6), and the connection closes, since what follows the head is not HTTP.
    if (h.method == "CONNECT") return fail(405, "connect_not_supported");

    if (int rc = check_target_and_host(); rc != 0) return rc;
    if (int rc = choose_framing(); rc != 0) return rc;

    // RFC 9112 9.3: persistence by version and Connection options.
    const bool close = h.headers.has_token(FieldId::connection, "close");
    h.keep_alive =
        h.version_minor == 1 ? !close : (!close && h.headers.has_token(FieldId::connection, "keep-alive"));
    // RFC 9110 10.1.1: 100-continue is ignored from HTTP/1.0 clients.
    const std::string* expect = h.headers.find(FieldId::expect);
    h.expect_continue =
        expect != nullptr && h.version_minor == 1 && iequals(*expect, "100-continue");
    return 0;
  }

  int check_target_and_host() {
    RequestHead& h = head_;
    // RFC 9112 3.2: origin-form, absolute-form, or "*" for OPTIONS. A fragment is never part of
    // a request target.
    if (h.target.find('#') != std::string::npos) return fail(400, "invalid_target");
    std::optional<std::string_view> authority = detail::absolute_form_authority(h.target);
    if (!authority) {
      const bool origin_form = !h.target.empty() && h.target.front() == '/';
      const bool asterisk_form = h.target == "*" && h.method == "OPTIONS";
      if (!origin_form && !asterisk_form) return fail(400, "invalid_target");
    } else if (!detail::is_valid_authority(*authority)) {
      return fail(400, "invalid_target");  // empty, userinfo ("@"), bad port, ...
    }

    // RFC 9112 3.2: exactly one Host in HTTP/1.1, valid; for absolute-form the target's authority
    // wins (RFC 9112 3.2.2), and needle refuses a Host that disagrees with it, since the two
    // would route differently here and upstream.
    const size_t hosts = h.headers.count(FieldId::host);
    if (hosts > 1) return fail(400, "multiple_host");
    if (hosts == 0 && h.version_minor == 1) return fail(400, "missing_host");
    const std::string* host = h.headers.find(FieldId::host);
    if (host != nullptr && !detail::is_valid_authority(*host)) return fail(400, "invalid_host");
    if (authority) {
      if (host != nullptr && !iequals(*host, *authority)) return fail(400, "host_mismatch");
      h.host.assign(*authority);
    } else if (host != nullptr) {
      h.host.assign(*host);
    }
    return 0;
  }

  // "chunked" is listed, but not as the last coding of the last Transfer-Encoding field line
  // (codings apply in the order listed, across field lines: RFC 9112 6.1).
  static bool chunked_not_final(const HeaderList& headers) {
    bool chunked = false;
    std::string_view last;
    for (const Header& f : headers.items()) {
      if (f.id != FieldId::transfer_encoding) continue;
      detail::for_each_list_element(f.value, [&](std::string_view coding) {
        chunked = chunked || iequals(coding, "chunked");
        last = coding;
        return true;
      });
    }
    return chunked && !iequals(last, "chunked");
  }

  // RFC 9112 6.1-6.3: the body length must be unambiguous, or the request is refused and the
  // connection closed (request smuggling defence).
  int choose_framing() {
    RequestHead& h = head_;
    const bool has_te = h.headers.has(FieldId::transfer_encoding);
    const bool has_cl = h.headers.has(FieldId::content_length);
    if (has_te && has_cl) return fail(400, "content_length_with_transfer_encoding");
    if (has_te) {
      if (h.version_minor == 0) return fail(400, "transfer_encoding_in_http10");
      switch (detail::classify_transfer_encoding(h.headers)) {
        case detail::TransferCoding::chunked:
          // llhttp must frame the body the same way (it refuses e.g. "chunked<TAB>").
          if ((parser_.flags & F_CHUNKED) == 0) return fail(400, "invalid_transfer_encoding");
          h.framing = BodyFraming::chunked;
          return 0;
        case detail::TransferCoding::unsupported:
          // RFC 9112 6.3 item 4: chunked present but not final ("chunked, gzip") leaves the
          // length undetermined: MUST 400 and close (corpus: requests/033-te-chunked-not-final).
          // A coding needle does not implement otherwise ("gzip, chunked", "gzip") is 501
          // (RFC 9112 6.1).
          if (chunked_not_final(h.headers)) return fail(400, "chunked_not_final");
          return fail(501, "unsupported_transfer_encoding");
        case detail::TransferCoding::invalid:
          return fail(400, "invalid_transfer_encoding");
      }
    }
    if (has_cl) {
      switch (detail::parse_content_length(h.headers, h.content_length)) {
        case detail::ContentLengthCheck::ok:
          break;
        case detail::ContentLengthCheck::invalid:
          return fail(400, "invalid_content_length");
        case detail::ContentLengthCheck::conflicting:
          return fail(400, "conflicting_content_length");
      }
      if (parser_.content_length != h.content_length) return fail(400, "invalid_content_length");
      if (h.content_length > limits_.max_body_bytes) return fail(413, "body_too_large");
      h.framing = BodyFraming::content_length;
    }
    return 0;
  }
};

RequestParser::RequestParser(const ParserLimits& limits) : impl_(std::make_unique<Impl>(limits)) {}
RequestParser::~RequestParser() = default;

FeedResult RequestParser::feed(std::string_view data, std::vector<std::string_view>& body) {
  return impl_->feed(data, body);
}
const RequestHead& RequestParser::head() const {
  return impl_->head_;
}
const ParseError& RequestParser::error() const {
  return impl_->error();
}
bool RequestParser::started() const {
  return impl_->started();
}
void RequestParser::reset() {
  impl_->reset();
}

}  // namespace needle::http
