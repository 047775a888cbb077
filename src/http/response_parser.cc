// ResponseParser: llhttp strict plus the response framing rules of RFC 9112 6.3 as a proxy needs
// them. Every rejection is a 502 for the client; the upstream connection is never reused.
#include "http/parser.h"
#include "http/parser_common.h"

namespace needle::http {

using detail::ParserCore;

namespace {

// "Keep-Alive: timeout=5, max=100" (RFC 2068 19.7.1.1; not in RFC 9110, but what Node, Apache
// and others send). Integer seconds only; anything else is ignored rather than guessed.
std::optional<Millis> parse_keep_alive_timeout(const HeaderList& headers) {
  std::optional<Millis> hint;
  if (!headers.has(FieldId::keep_alive)) return hint;
  for (const Header& h : headers.items()) {
    if (h.id != FieldId::keep_alive) continue;
    detail::for_each_list_element(h.value, [&](std::string_view param) {
      const size_t eq = param.find('=');
      if (eq == std::string_view::npos) return true;
      if (!iequals(detail::trim_ows(param.substr(0, eq)), "timeout")) return true;
      std::string_view v = detail::trim_ows(param.substr(eq + 1));
      if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
      if (v.empty() || v.size() > 9) return false;
      long long seconds = 0;
      for (char c : v) {
        if (c < '0' || c > '9') return false;
        seconds = seconds * 10 + (c - '0');
      }
      hint = Millis(seconds * 1000);
      return false;
    });
    if (hint) break;
  }
  return hint;
}

}  // namespace

// Interim (1xx) responses accepted before the final one; real servers send one or two
// (100 Continue, 103 Early Hints).
constexpr int kMaxInterimResponses = 32;

struct ResponseParser::Impl final : ParserCore {
  explicit Impl(const ParserLimits& limits) : ParserCore(Kind::response, limits, head_.headers) {
    head_.headers.reserve(16);  // grows once for header-heavy messages, then kept
  }

  ResponseHead head_;
  bool request_is_head_ = false;
  bool upgrade_requested_ = false;  // the request offered Upgrade: a 101 may answer it
  bool interim_ = false;   // the current message is a 1xx: the same request's answer follows
  int interim_count_ = 0;  // 1xx responses before the final one (same request)

  int on_start_line_part(int part, const char* at, size_t len) override {
    if (part == kReason) head_.reason.append(at, len);
    return 0;
  }

  void on_reset() override {
    head_.status = 0;
    head_.reason.clear();
    head_.version_minor = 1;
    head_.framing = BodyFraming::none;
    head_.content_length = 0;
    head_.keep_alive = true;
    head_.keep_alive_hint.reset();
    // After a 1xx the final response answers the same request, so HEAD-ness carries over.
    if (!interim_) {
      request_is_head_ = false;
      upgrade_requested_ = false;
      interim_count_ = 0;
    }
    interim_ = false;
  }

  int on_head_complete() override {
    ResponseHead& h = head_;
    if (parser_.http_major != 1 || parser_.http_minor > 1) return fail(502, "invalid_version");
    h.version_minor = parser_.http_minor;
    h.status = parser_.status_code;
    if (h.status < 100 || h.status > 999) return fail(502, "invalid_status_line");
    // A protocol switch answers only a request that offered one (RFC 9110 15.2.2), and names
    // the protocol it switches to (7.8).
    if (h.status == 101 && !upgrade_requested_) return fail(502, "unexpected_switching_protocols");
    if (h.status == 101 && !h.headers.has(FieldId::upgrade)) {
      return fail(502, "switching_protocols_without_upgrade");
    }
    interim_ = h.status < 200;
    // RFC 9110 15.2 puts no bound on interim responses; needle drops them, and each one re-arms
    // the response timeout, so an endless 1xx stream would hold the request forever.
    // (corpus: responses/r16-1xx-flood)
    if (interim_ && ++interim_count_ > kMaxInterimResponses) {
      return fail(502, "too_many_interim_responses");
    }

    // RFC 9112 6.3 rule 1: no body for HEAD, 1xx, 204, 304, whatever the fields say. The
    // Content-Length of a HEAD/304 response still describes the representation.
    const bool no_body = interim_ || h.status == 204 || h.status == 304 || request_is_head_;
    const bool has_te = h.headers.has(FieldId::transfer_encoding);
    const bool has_cl = h.headers.has(FieldId::content_length);
    // RFC 9112 6.3 rule 3 lets TE override CL, but such a response is a smuggling signature;
    // a proxy refuses it rather than pick one.
    if (has_te && has_cl) return fail(502, "content_length_with_transfer_encoding");
    if (has_cl) {
      switch (detail::parse_content_length(h.headers, h.content_length)) {
        case detail::ContentLengthCheck::ok:
          break;
        case detail::ContentLengthCheck::invalid:
          return fail(502, "invalid_content_length");
        case detail::ContentLengthCheck::conflicting:
          return fail(502, "conflicting_content_length");
      }
    }

    if (no_body) {
      h.framing = BodyFraming::none;
    } else if (has_te) {
      if (h.version_minor == 0) return fail(502, "transfer_encoding_in_http10");
      switch (detail::classify_transfer_encoding(h.headers)) {
        case detail::TransferCoding::chunked:
          // llhttp must agree, or it would read the body until close instead.
          if ((parser_.flags & F_CHUNKED) == 0) return fail(502, "invalid_transfer_encoding");
          h.framing = BodyFraming::chunked;
          break;
        case detail::TransferCoding::unsupported:
          // needle would have to strip the coding (TE is hop-by-hop) without decoding it.
          return fail(502, "unsupported_transfer_encoding");
        case detail::TransferCoding::invalid:
          return fail(502, "invalid_transfer_encoding");
      }
    } else if (has_cl) {
      if (parser_.content_length != h.content_length) return fail(502, "invalid_content_length");
      if (h.content_length > limits_.max_body_bytes) return fail(502, "body_too_large");
      h.framing = BodyFraming::content_length;
    } else {
      h.framing = BodyFraming::until_close;  // RFC 9112 6.3 rule 8
    }

    const bool close = h.headers.has_token(FieldId::connection, "close");
    h.keep_alive =
        h.version_minor == 1 ? !close : (!close && h.headers.has_token(FieldId::connection, "keep-alive"));
    if (h.framing == BodyFraming::until_close) h.keep_alive = false;
    h.keep_alive_hint = parse_keep_alive_timeout(h.headers);
    return no_body ? 1 : 0;
  }

  FeedResult finish() {
    switch (phase_) {
      case Phase::error:
        return {0, ParseStop::error};
      case Phase::complete:
        return {0, ParseStop::message_complete};
      case Phase::head:
        return fail_now(0, 502, started() ? "truncated_head" : "closed_before_response");
      case Phase::head_paused:
        if (head_.framing == BodyFraming::none ||
            (head_.framing == BodyFraming::content_length && head_.content_length == 0)) {
          phase_ = Phase::complete;  // nothing left to read: the message was whole
          return {0, ParseStop::message_complete};
        }
        [[fallthrough]];
      case Phase::body:
        if (head_.framing == BodyFraming::until_close) {
          phase_ = Phase::complete;  // RFC 9112 6.3 rule 8: the close delimits the body
          return {0, ParseStop::message_complete};
        }
        return fail_now(0, 502, "truncated_body");
    }
    return {0, ParseStop::error};
  }
};

ResponseParser::ResponseParser(const ParserLimits& limits)
    : impl_(std::make_unique<Impl>(limits)) {}
ResponseParser::~ResponseParser() = default;

void ResponseParser::set_request_is_head(bool is_head) {
  impl_->request_is_head_ = is_head;
}
void ResponseParser::set_upgrade_requested(bool requested) {
  impl_->upgrade_requested_ = requested;
}
FeedResult ResponseParser::feed(std::string_view data, std::vector<std::string_view>& body) {
  return impl_->feed(data, body);
}
FeedResult ResponseParser::finish() {
  return impl_->finish();
}
const ResponseHead& ResponseParser::head() const {
  return impl_->head_;
}
const ParseError& ResponseParser::error() const {
  return impl_->error();
}
bool ResponseParser::started() const {
  return impl_->started();
}
void ResponseParser::reset() {
  impl_->reset();
}

}  // namespace needle::http
