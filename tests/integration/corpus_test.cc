// The smuggling / bad-input corpus (tests/corpus/README.md): one CTest test per file.
//   requests/*.http:  sent by a client to one needle (workers = 1, small limits) in front of a
//                     ScriptedUpstream that answers 200; status, close and what the upstream
//                     received are asserted.
//   responses/*.http: sent by the upstream (send_garbage) in answer to a GET; needle must answer
//                     502 with cause invalid_response and open a new upstream connection for the
//                     next request.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "support/http_client.h"
#include "support/needle_process.h"
#include "support/scripted_upstream.h"

namespace needle::test {
namespace {

using std::chrono::milliseconds;

// ---- the case file format -------------------------------------------------------------------

// An expected byte string: literal pieces; between two pieces a wildcard ("\*") that matches any
// run of bytes other than CR and LF.
struct Pattern {
  std::vector<std::string> pieces;
};

struct CorpusCase {
  std::string file;         // e.g. "001-clte-basic.http"
  std::string error;        // the file does not follow the format (the test fails with this)
  std::vector<int> expect;  // statuses, in order
  std::optional<bool> close;
  std::optional<size_t> upstream;  // requests the upstream receives (nullopt: not checked)
  std::vector<Pattern> upstream_heads;
  std::vector<Pattern> upstream_bodies;
  std::vector<std::string> upstream_lacks;
  std::string cause;                  // responses: the access-log cause
  std::vector<std::string> segments;  // payload, split at "\|" (sent with a pause in between)
};

// gtest prints parameters in failure lists: the file name says it all.
void PrintTo(const CorpusCase& c, std::ostream* os) {
  *os << c.file;
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Decodes the escapes of the format. Appends to the last element of `out` (a new element starts
// at "\|" when allow_pause, or at "\*" when allow_wildcard). Returns false with `error` set.
bool decode(std::string_view in, bool allow_pause, bool allow_wildcard,
            std::vector<std::string>& out, std::string& error) {
  if (out.empty()) out.emplace_back();
  for (size_t i = 0; i < in.size(); ++i) {
    const char c = in[i];
    if (c == '\n') continue;  // line breaks of the file are layout only
    if (c != '\\') {
      out.back().push_back(c);
      continue;
    }
    if (++i >= in.size()) {
      error = "dangling backslash";
      return false;
    }
    switch (in[i]) {
      case 'r':
        out.back().push_back('\r');
        break;
      case 'n':
        out.back().push_back('\n');
        break;
      case 't':
        out.back().push_back('\t');
        break;
      case '\\':
        out.back().push_back('\\');
        break;
      case ']':
        out.back().push_back(']');
        break;
      case 'x': {
        const int hi = i + 1 < in.size() ? hex_digit(in[i + 1]) : -1;
        const int lo = i + 2 < in.size() ? hex_digit(in[i + 2]) : -1;
        if (hi < 0 || lo < 0) {
          error = "\\x needs two hex digits";
          return false;
        }
        out.back().push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
        break;
      }
      case '|':
        if (!allow_pause) {
          error = "\\| only in the payload";
          return false;
        }
        out.emplace_back();
        break;
      case '*':
        if (!allow_wildcard) {
          error = "\\* only in upstream-head/upstream-body";
          return false;
        }
        out.emplace_back();
        break;
      case '[': {  // \[N:text]: text (escapes decoded) repeated N times
        size_t colon = in.find(':', i);
        if (colon == std::string_view::npos) {
          error = "\\[ without ':'";
          return false;
        }
        size_t count = 0;
        for (size_t k = i + 1; k < colon; ++k) {
          if (in[k] < '0' || in[k] > '9') {
            error = "\\[N: N must be decimal";
            return false;
          }
          count = count * 10 + static_cast<size_t>(in[k] - '0');
        }
        size_t close = colon + 1;
        while (close < in.size() && !(in[close] == ']' && in[close - 1] != '\\')) ++close;
        if (close >= in.size()) {
          error = "\\[ without ']'";
          return false;
        }
        std::vector<std::string> unit;
        if (!decode(in.substr(colon + 1, close - colon - 1), false, false, unit, error)) {
          return false;
        }
        for (size_t k = 0; k < count; ++k) out.back() += unit.front();
        i = close;
        break;
      }
      default:
        error = std::string("unknown escape \\") + in[i];
        return false;
    }
  }
  return true;
}

std::string trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return std::string(s);
}

CorpusCase load_case(const std::filesystem::path& path) {
  CorpusCase c;
  c.file = path.filename().string();
  std::ifstream in(path, std::ios::binary);
  std::stringstream all;
  all << in.rdbuf();
  const std::string text = all.str();

  // Header block: "# key: value" lines up to the first empty line; the rest is the payload.
  size_t pos = 0;
  while (pos < text.size()) {
    size_t eol = text.find('\n', pos);
    if (eol == std::string::npos) eol = text.size();
    std::string_view line(text.data() + pos, eol - pos);
    pos = eol + 1;
    if (trim(line).empty()) break;
    if (line.front() != '#') {
      c.error = "header line does not start with '#': " + std::string(line);
      return c;
    }
    line.remove_prefix(1);
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;  // a comment
    const std::string key = trim(line.substr(0, colon));
    const std::string value = trim(line.substr(colon + 1));
    if (key == "expect") {
      std::istringstream statuses(value);
      int status = 0;
      while (statuses >> status) c.expect.push_back(status);
    } else if (key == "close") {
      if (value != "yes" && value != "no") c.error = "close: yes|no";
      c.close = value == "yes";
    } else if (key == "upstream") {
      c.upstream = value == "none" ? 0 : static_cast<size_t>(std::stoul(value));
    } else if (key == "upstream-head" || key == "upstream-body") {
      Pattern p;
      if (!decode(value, false, true, p.pieces, c.error)) return c;
      (key == "upstream-head" ? c.upstream_heads : c.upstream_bodies).push_back(std::move(p));
    } else if (key == "upstream-lacks") {
      c.upstream_lacks.push_back(value);
    } else if (key == "cause") {
      c.cause = value;
    } else if (key != "source" && key != "note") {
      c.error = "unknown key: " + key;
      return c;
    }
  }
  if (pos < text.size()) {
    if (!decode(std::string_view(text).substr(pos), true, false, c.segments, c.error)) return c;
  }
  if (c.expect.empty()) c.error = "no '# expect:' line";
  if (c.segments.empty() || c.segments.front().empty()) c.error = "empty payload";
  return c;
}

std::vector<CorpusCase> load_cases(const char* subdir) {
  std::vector<CorpusCase> cases;
  const std::filesystem::path dir =
      std::filesystem::path(NEEDLE_SOURCE_DIR) / "tests/corpus" / subdir;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    if (entry.path().extension() == ".http") cases.push_back(load_case(entry.path()));
  }
  std::sort(cases.begin(), cases.end(),
            [](const CorpusCase& a, const CorpusCase& b) { return a.file < b.file; });
  return cases;
}

std::string case_name(const testing::TestParamInfo<CorpusCase>& info) {
  std::string name = info.param.file.substr(0, info.param.file.rfind('.'));
  for (char& c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  }
  return name;
}

bool matches(const Pattern& p, std::string_view text) {
  size_t at = 0;
  for (size_t i = 0; i < p.pieces.size(); ++i) {
    const std::string& piece = p.pieces[i];
    if (i == 0) {
      if (!text.starts_with(piece)) return false;
      at = piece.size();
      continue;
    }
    // The wildcard before this piece: the shortest run of non-CR/LF bytes that it follows.
    size_t found = std::string_view::npos;
    for (size_t k = at; k <= text.size(); ++k) {
      if (text.substr(k).starts_with(piece) &&
          (i + 1 < p.pieces.size() || k + piece.size() == text.size())) {
        found = k;
        break;
      }
      if (k < text.size() && (text[k] == '\r' || text[k] == '\n')) break;
    }
    if (found == std::string_view::npos) return false;
    at = found + piece.size();
  }
  return at == text.size();
}

// The bytes written back in the file format, for failure messages.
std::string escaped(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (c == '\r') {
      out += "\\r";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\\') {
      out += "\\\\";
    } else if (c < 0x20 || c >= 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  return out;
}

std::string pattern_text(const Pattern& p) {
  std::string out;
  for (size_t i = 0; i < p.pieces.size(); ++i) out += (i ? "\\*" : "") + escaped(p.pieces[i]);
  return out;
}

std::string needle_config(int listen_port, int upstream_port) {
  // Small limits so that the limit cases are cheap (the corpus files say which limit they hit).
  return "[server]\nworkers = 1\naccess_log = \"stdout\"\n"
         "header_timeout = \"2s\"\nbody_timeout = \"2s\"\n"
         "max_request_line = 1024\nmax_header_bytes = 4096\nmax_header_count = 20\n"
         "max_body_bytes = 1024\n"
         "[[listener]]\naddress = \"127.0.0.1:" +
         std::to_string(listen_port) +
         "\"\n[admin]\naddress = \"off\"\n"
         // The path cases (README): "/public/" leads nowhere (port 1 refuses: 502), so a case
         // that reaches the scripted upstream was routed on its normalized path. It comes first
         // in config order: the longest prefix must win whatever the order.
         "[[route]]\npath_prefix = \"/public/\"\ncluster = \"nowhere\"\n"
         // Header-rule cases (README, 225-229 and 360-369): client bytes end up in rule values.
         "[[route]]\npath_prefix = \"/rules/\"\ncluster = \"app\"\n"
         "request_headers = { set = { \"X-Forwarded-Proto\" = \"https\" }, "
         "add = { \"X-Rule\" = \"$host $request_uri\" }, remove = [\"X-Strip\"] }\n"
         "[[route]]\npath_prefix = \"/\"\ncluster = \"app\"\n"
         "[cluster.nowhere]\nhosts = [\"127.0.0.1:1\"]\n"
         "[cluster.app]\nhosts = [\"127.0.0.1:" +
         std::to_string(upstream_port) + "\"]\n";
}

void send_segments(HttpClient& client, const std::vector<std::string>& segments) {
  for (size_t i = 0; i < segments.size(); ++i) {
    if (i > 0) std::this_thread::sleep_for(milliseconds(100));
    ASSERT_TRUE(client.send_raw(segments[i])) << to_string(client.last_error());
  }
}

// ---- requests -------------------------------------------------------------------------------

class CorpusRequest : public testing::TestWithParam<CorpusCase> {
 protected:
  static void SetUpTestSuite() {
    upstream_ = std::make_unique<ScriptedUpstream>();
    needle_ = NeedleProcess::start([](int port) { return needle_config(port, upstream_->port()); });
  }
  static void TearDownTestSuite() {
    needle_.reset();
    upstream_.reset();
  }

  static std::unique_ptr<ScriptedUpstream> upstream_;
  static std::unique_ptr<NeedleProcess> needle_;
};
std::unique_ptr<ScriptedUpstream> CorpusRequest::upstream_;
std::unique_ptr<NeedleProcess> CorpusRequest::needle_;

TEST_P(CorpusRequest, Case) {
  const CorpusCase& c = GetParam();
  ASSERT_TRUE(c.error.empty()) << c.file << ": " << c.error;
  ASSERT_TRUE(needle_) << "needle did not start";
  const size_t before = upstream_->requests_received();

  HttpClient client;
  ASSERT_TRUE(client.connect(needle_->port()));
  send_segments(client, c.segments);

  for (size_t i = 0; i < c.expect.size(); ++i) {
    auto r = client.read_response(milliseconds(5000));
    ASSERT_TRUE(r.has_value()) << "response " << i + 1 << ": " << to_string(client.last_error())
                               << " " << client.last_error_detail();
    EXPECT_EQ(r->status, c.expect[i]) << "response " << i + 1 << ":\n" << escaped(r->raw);
  }
  if (c.close) {
    if (*c.close) {
      const PeerClose state = client.closed_by_peer(milliseconds(3000));
      EXPECT_TRUE(state == PeerClose::eof || state == PeerClose::reset)
          << "connection not closed after the response: " << to_string(state);
    } else {
      EXPECT_EQ(client.closed_by_peer(milliseconds(200)), PeerClose::still_open);
    }
  }

  if (!c.upstream) return;
  if (*c.upstream > 0) upstream_->wait_for_requests(before + *c.upstream, milliseconds(2000));
  const std::vector<ReceivedRequest> all = upstream_->requests();
  const std::vector<ReceivedRequest> received(all.begin() + static_cast<long>(before), all.end());
  ASSERT_EQ(received.size(), *c.upstream) << "requests that reached the upstream";
  for (size_t i = 0; i < c.upstream_heads.size() && i < received.size(); ++i) {
    EXPECT_TRUE(matches(c.upstream_heads[i], received[i].head))
        << "upstream request " << i + 1
        << " head\n  expected: " << pattern_text(c.upstream_heads[i])
        << "\n  received: " << escaped(received[i].head);
  }
  for (size_t i = 0; i < c.upstream_bodies.size() && i < received.size(); ++i) {
    EXPECT_TRUE(matches(c.upstream_bodies[i], received[i].body))
        << "upstream request " << i + 1
        << " body\n  expected: " << pattern_text(c.upstream_bodies[i])
        << "\n  received: " << escaped(received[i].body);
  }
  for (const ReceivedRequest& r : received) {
    for (const std::string& name : c.upstream_lacks) {
      // headers holds the header section and the trailer section.
      EXPECT_FALSE(r.headers.has(name))
          << "upstream received " << name << ": " << escaped(r.headers.get(name));
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Corpus, CorpusRequest, testing::ValuesIn(load_cases("requests")),
                         case_name);

// ---- responses ------------------------------------------------------------------------------

// A fresh upstream and needle per case: the first upstream connection answers the case's bytes,
// later ones answer 200, so the pool state of one case cannot leak into the next.
class CorpusResponse : public testing::TestWithParam<CorpusCase> {};

TEST_P(CorpusResponse, Case) {
  const CorpusCase& c = GetParam();
  ASSERT_TRUE(c.error.empty()) << c.file << ": " << c.error;
  ASSERT_EQ(c.segments.size(), 1u) << "no \\| in response cases";

  ConnectionScript first;
  first.requests.push_back(ScriptedStep::send_garbage(c.segments.front()));
  ScriptedUpstream upstream;
  upstream.set_connection_script(0, first);
  auto needle =
      NeedleProcess::start([&](int port) { return needle_config(port, upstream.port()); });

  HttpClient client;
  ASSERT_TRUE(client.connect(needle->port()));
  ASSERT_TRUE(client.send_raw("GET /case HTTP/1.1\r\nHost: a.test\r\n\r\n"));
  auto r = client.read_response(milliseconds(5000));
  ASSERT_TRUE(r.has_value()) << to_string(client.last_error());
  ASSERT_EQ(c.expect.size(), 1u);
  EXPECT_EQ(r->status, c.expect.front()) << escaped(r->raw);

  ASSERT_TRUE(needle->wait_for_access_log_lines(1, milliseconds(2000))) << needle->access_log();
  const std::string line = needle->access_log_lines().front();
  if (!c.cause.empty()) {
    EXPECT_NE(line.find("\"cause\":\"" + c.cause + "\""), std::string::npos) << line;
  }
  EXPECT_EQ(upstream.requests_received(), 1u) << "needle must not retry after response bytes";

  // The next request must not use the connection that carried the bad response.
  auto next = get(needle->port(), "/next");
  ASSERT_TRUE(next.has_value());
  EXPECT_EQ(next->status, 200);
  ASSERT_EQ(upstream.requests_received(), 2u);
  const ReceivedRequest second = upstream.requests().back();
  EXPECT_EQ(second.connection, 1u) << "the bad connection was reused";
  EXPECT_EQ(second.index, 0u);
  EXPECT_EQ(upstream.connections_accepted(), 2u);
}

INSTANTIATE_TEST_SUITE_P(Corpus, CorpusResponse, testing::ValuesIn(load_cases("responses")),
                         case_name);

}  // namespace
}  // namespace needle::test
