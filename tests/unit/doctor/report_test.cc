// needle doctor's output: the --json object is valid JSON with every documented field, and the
// text report carries the measured values, the verdict and the fixes.
#include "doctor/report.h"

#include <map>
#include <memory>
#include <stdexcept>

#include <gtest/gtest.h>

namespace needle::doctor {
namespace {

using namespace std::chrono_literals;

#define EXPECT_CONTAINS(haystack, needle) \
  EXPECT_NE(std::string(haystack).find(needle), std::string::npos) << (haystack)

// A strict little JSON reader (RFC 8259 subset: no \u surrogate handling), enough to prove the
// output parses and to read fields back.
struct Json {
  enum class Type { null, boolean, number, string, array, object } type = Type::null;
  bool b = false;
  double n = 0;
  std::string s;
  std::vector<Json> a;
  std::map<std::string, Json> o;

  const Json& operator[](const std::string& key) const {
    auto it = o.find(key);
    if (type != Type::object || it == o.end()) throw std::runtime_error("no key " + key);
    return it->second;
  }
  bool has(const std::string& key) const { return o.count(key) > 0; }
};

class JsonReader {
 public:
  explicit JsonReader(std::string_view text) : t_(text) {}
  Json parse() {
    Json v = value();
    ws();
    if (i_ != t_.size()) throw std::runtime_error("trailing bytes");
    return v;
  }

 private:
  void ws() {
    while (i_ < t_.size() && (t_[i_] == ' ' || t_[i_] == '\n' || t_[i_] == '\t' || t_[i_] == '\r'))
      ++i_;
  }
  char peek() {
    ws();
    if (i_ >= t_.size()) throw std::runtime_error("unexpected end");
    return t_[i_];
  }
  void expect(char c) {
    if (peek() != c)
      throw std::runtime_error(std::string("expected ") + c + " at " + std::to_string(i_));
    ++i_;
  }
  bool literal(std::string_view word) {
    if (t_.substr(i_, word.size()) != word) return false;
    i_ += word.size();
    return true;
  }
  std::string string() {
    expect('"');
    std::string out;
    while (i_ < t_.size() && t_[i_] != '"') {
      char c = t_[i_++];
      if (static_cast<unsigned char>(c) < 0x20) throw std::runtime_error("raw control byte");
      if (c != '\\') {
        out += c;
        continue;
      }
      c = t_[i_++];
      switch (c) {
        case '"':
        case '\\':
        case '/':
          out += c;
          break;
        case 'n':
          out += '\n';
          break;
        case 'r':
          out += '\r';
          break;
        case 't':
          out += '\t';
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'u':
          out += static_cast<char>(std::stoi(std::string(t_.substr(i_, 4)), nullptr, 16));
          i_ += 4;
          break;
        default:
          throw std::runtime_error("bad escape");
      }
    }
    expect('"');
    return out;
  }
  Json value() {
    Json v;
    const char c = peek();
    if (c == '{') {
      v.type = Json::Type::object;
      ++i_;
      if (peek() == '}') {
        ++i_;
        return v;
      }
      for (;;) {
        std::string k = string();
        expect(':');
        if (v.o.count(k)) throw std::runtime_error("duplicate key " + k);
        v.o[k] = value();
        if (peek() == ',') {
          ++i_;
          continue;
        }
        expect('}');
        return v;
      }
    }
    if (c == '[') {
      v.type = Json::Type::array;
      ++i_;
      if (peek() == ']') {
        ++i_;
        return v;
      }
      for (;;) {
        v.a.push_back(value());
        if (peek() == ',') {
          ++i_;
          continue;
        }
        expect(']');
        return v;
      }
    }
    if (c == '"') {
      v.type = Json::Type::string;
      v.s = string();
      return v;
    }
    if (literal("true")) {
      v.type = Json::Type::boolean;
      v.b = true;
      return v;
    }
    if (literal("false")) {
      v.type = Json::Type::boolean;
      return v;
    }
    if (literal("null")) return v;
    size_t used = 0;
    v.n = std::stod(std::string(t_.substr(i_)), &used);
    i_ += used;
    v.type = Json::Type::number;
    return v;
  }

  std::string_view t_;
  size_t i_ = 0;
};

Measurement node_measurement() {
  Measurement m;
  m.url = "http://127.0.0.1:3000/hello";
  m.target = "127.0.0.1:3000";
  m.path = "/hello";
  m.status = 200;
  m.keep_alive_hint = 5s;
  m.max_wait = 120s;
  for (Millis c : {6004ms, 6005ms, 6006ms, 6010ms}) m.samples.push_back({c, CloseKind::fin, {}});
  return m;
}

ProxyLimit proxy75() {
  ProxyLimit p;
  p.label = "--proxy-idle-timeout 75s";
  p.idle_timeout = 75s;
  return p;
}

TEST(DoctorJson, HasEveryFieldWithTheMeasuredValues) {
  const Measurement m = node_measurement();
  const Diagnosis d = diagnose(m, {proxy75()});
  const std::string text = format_json(m, d, {"context line"});
  ASSERT_EQ(text.back(), '\n');
  ASSERT_EQ(text.find('\n'), text.size() - 1) << "one line";
  Json j;
  ASSERT_NO_THROW(j = JsonReader(text).parse()) << text;
  EXPECT_EQ(j["url"].s, "http://127.0.0.1:3000/hello");
  EXPECT_EQ(j["target"].s, "127.0.0.1:3000");
  EXPECT_EQ(j["path"].s, "/hello");
  EXPECT_EQ(j["status"].n, 200);
  EXPECT_EQ(j["server"].type, Json::Type::null);
  EXPECT_EQ(j["keep_alive_hint_ms"].n, 5000);
  EXPECT_FALSE(j["connection_close"].b);
  EXPECT_EQ(j["probes"].n, 4);
  EXPECT_EQ(j["probes_failed"].n, 0);
  EXPECT_EQ(j["max_wait_ms"].n, 120000);
  const Json& c = j["idle_close"];
  EXPECT_EQ(c["closed"].n, 4);
  EXPECT_EQ(c["open"].n, 0);
  EXPECT_EQ(c["min_ms"].n, 6004);
  EXPECT_EQ(c["median_ms"].n, 6005);
  EXPECT_EQ(c["max_ms"].n, 6010);
  EXPECT_EQ(c["kind"].s, "FIN");
  EXPECT_TRUE(c["within_max_wait"].b);
  ASSERT_EQ(j["samples"].a.size(), 4u);
  EXPECT_EQ(j["samples"].a[3]["idle_close_ms"].n, 6010);
  EXPECT_EQ(j["samples"].a[3]["kind"].s, "FIN");
  EXPECT_EQ(j["safe_limit_ms"].n, 5404);
  EXPECT_FALSE(j["hint_exceeds_close"].b);
  ASSERT_EQ(j["comparisons"].a.size(), 1u);
  const Json& v = j["comparisons"].a[0];
  EXPECT_EQ(v["proxy"].s, "--proxy-idle-timeout 75s");
  EXPECT_EQ(v["proxy_kind"].s, "generic");
  EXPECT_EQ(v["proxy_limit_ms"].n, 75000);
  EXPECT_EQ(v["verdict"].s, "mismatch");
  EXPECT_CONTAINS(v["summary"].s, "502");
  ASSERT_EQ(v["fixes"].a.size(), 2u);
  EXPECT_CONTAINS(v["fixes"].a[0].s, "idle_timeout = \"5s\"");  // escaped quotes survive
  EXPECT_EQ(v["warnings"].a.size(), 0u);
  ASSERT_EQ(j["context"].a.size(), 1u);
  EXPECT_EQ(j["warnings"].type, Json::Type::array);
  EXPECT_EQ(j["notes"].type, Json::Type::array);
  EXPECT_EQ(j["verdict"].s, "mismatch");
  EXPECT_EQ(j["exit_status"].n, 1);
}

TEST(DoctorJson, NoCloseWithinMaxWaitHasNullsAndAHintLieIsAField) {
  Measurement m = node_measurement();
  m.samples = {{std::nullopt, CloseKind::none, {}}, {std::nullopt, CloseKind::none, {}}};
  m.server = "nginx/1.22.1";
  Json j = JsonReader(format_json(m, diagnose(m, {}), {})).parse();
  EXPECT_EQ(j["server"].s, "nginx/1.22.1");
  EXPECT_EQ(j["idle_close"]["min_ms"].type, Json::Type::null);
  EXPECT_EQ(j["idle_close"]["kind"].s, "none");
  EXPECT_FALSE(j["idle_close"]["within_max_wait"].b);
  EXPECT_EQ(j["safe_limit_ms"].type, Json::Type::null);
  EXPECT_EQ(j["samples"].a[0]["idle_close_ms"].type, Json::Type::null);
  EXPECT_EQ(j["comparisons"].a.size(), 0u);
  EXPECT_EQ(j["verdict"].s, "ok");
  EXPECT_EQ(j["exit_status"].n, 0);

  m = node_measurement();
  m.keep_alive_hint = 75s;
  j = JsonReader(format_json(m, diagnose(m, {}), {})).parse();
  EXPECT_TRUE(j["hint_exceeds_close"].b);
  ASSERT_EQ(j["warnings"].a.size(), 1u);
  EXPECT_CONTAINS(j["warnings"].a[0].s, "hint lies");
}

TEST(DoctorJson, ErrorObject) {
  const Json j = JsonReader(format_error_json("http://127.0.0.1:1/",
                                              "connect to 127.0.0.1:1: "
                                              "Connection refused"))
                     .parse();
  EXPECT_EQ(j["verdict"].s, "error");
  EXPECT_EQ(j["exit_status"].n, 2);
  EXPECT_CONTAINS(j["error"].s, "refused");
}

TEST(DoctorJson, ErrorTextWithQuotesControlBytesAndInvalidUtf8StaysValidJson) {
  const std::string error = "bad \"q\" \\ \n\x01\x7f\xff end";
  const Json j = JsonReader(format_error_json("http://127.0.0.1:1/", error)).parse();
  EXPECT_EQ(j["error"].s, error);
}

TEST(DoctorText, ShowsMeasuredValuesVerdictAndFixes) {
  const Measurement m = node_measurement();
  const std::string text = format_text(m, diagnose(m, {proxy75()}), {});
  EXPECT_CONTAINS(text, "GET /hello on 127.0.0.1:3000 -> HTTP 200, 4 connection(s)");
  EXPECT_CONTAINS(text, "timeout=5 (5s)");
  EXPECT_CONTAINS(text, "6004 ms (6.004 s) by FIN");
  EXPECT_CONTAINS(text, "median 6005 ms, max 6010 ms");
  EXPECT_CONTAINS(text, "before 5.404s");
  EXPECT_CONTAINS(text, "vs --proxy-idle-timeout 75s: MISMATCH");
  EXPECT_CONTAINS(text, "fix: proxy side: lower the proxy's idle timeout below 5.404s");
  EXPECT_CONTAINS(text, "fix: app side: raise");
  EXPECT_CONTAINS(text, "result: MISMATCH (exit 1)");
}

TEST(DoctorText, NoCloseWithinMaxWait) {
  Measurement m = node_measurement();
  m.keep_alive_hint.reset();
  m.samples = {{std::nullopt, CloseKind::none, {}}};
  const std::string text = format_text(m, diagnose(m, {}), {});
  EXPECT_CONTAINS(text, "no idle close within max-wait (>= 120s)");
  EXPECT_CONTAINS(text, "keep-alive hint  none");
  EXPECT_CONTAINS(text, "nothing compared");
  EXPECT_CONTAINS(text, "result: OK (exit 0)");
}

}  // namespace
}  // namespace needle::doctor
