#pragma once
// A small JSON reader for the upgrade state file (server/state_handoff.h), the only JSON needle
// reads: enough of RFC 8259 to parse what needle writes, never throwing, nesting bounded; any
// error is nullopt. \u escapes above U+007F come back as '?'. The tests read access-log lines,
// /pools and alert batches with it too (tests/support/json_reader.h).
#include <cctype>
#include <charconv>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace needle::server {


struct Json {
  enum class Type { null, boolean, number, string, array, object };
  Type type = Type::null;
  bool b = false;
  double n = 0;
  std::string s;
  std::vector<Json> items;
  std::vector<std::pair<std::string, Json>> fields;

  // Defined after the class: clang (with libstdc++) needs Json complete before it instantiates
  // the members of vector<pair<string, Json>>; implicit members would do it inside the class.
  Json();
  ~Json();
  Json(const Json&);
  Json(Json&&) noexcept;
  Json& operator=(const Json&);
  Json& operator=(Json&&) noexcept;

  const Json& operator[](std::string_view key) const {
    static const Json kNull;
    for (const auto& [k, v] : fields) {
      if (k == key) return v;
    }
    return kNull;
  }
  const Json& operator[](size_t i) const {
    static const Json kNull;
    return i < items.size() ? items[i] : kNull;
  }
  bool has(std::string_view key) const {
    for (const auto& [k, v] : fields) {
      if (k == key) return true;
    }
    return false;
  }
  size_t size() const { return type == Type::array ? items.size() : fields.size(); }
  long long integer() const { return static_cast<long long>(n); }
  const std::string& str() const { return s; }
};

inline Json::Json() = default;
inline Json::~Json() = default;
inline Json::Json(const Json&) = default;
inline Json::Json(Json&&) noexcept = default;
inline Json& Json::operator=(const Json&) = default;
inline Json& Json::operator=(Json&&) noexcept = default;

class JsonReader {
 public:
  // nullopt on any syntax error.
  static std::optional<Json> parse(std::string_view text) {
    JsonReader r(text);
    Json v;
    if (!r.value(v)) return std::nullopt;
    r.ws();
    if (r.p_ != r.t_.size()) return std::nullopt;
    return v;
  }

 private:
  explicit JsonReader(std::string_view t) : t_(t) {}
  void ws() {
    while (p_ < t_.size() && std::isspace(static_cast<unsigned char>(t_[p_]))) ++p_;
  }
  bool lit(std::string_view w) {
    if (t_.substr(p_, w.size()) != w) return false;
    p_ += w.size();
    return true;
  }
  bool string(std::string& out) {
    if (p_ >= t_.size() || t_[p_] != '"') return false;
    for (++p_; p_ < t_.size(); ++p_) {
      char c = t_[p_];
      if (c == '"') {
        ++p_;
        return true;
      }
      if (c == '\\') {
        if (++p_ >= t_.size()) return false;
        char e = t_[p_];
        switch (e) {
          case 'n': out += '\n'; break;
          case 't': out += '\t'; break;
          case 'r': out += '\r'; break;
          case 'b': out += '\b'; break;
          case 'f': out += '\f'; break;
          case 'u': {
            if (p_ + 4 >= t_.size()) return false;
            unsigned code = 0;
            const auto hex = t_.substr(p_ + 1, 4);
            if (std::from_chars(hex.data(), hex.data() + 4, code, 16).ptr != hex.data() + 4) {
              return false;
            }
            out += code < 0x80 ? static_cast<char>(code) : '?';
            p_ += 4;
            break;
          }
          default: out += e;
        }
        continue;
      }
      out += c;
    }
    return false;
  }
  bool value(Json& v, int depth = 0) {
    if (depth > 16) return false;  // nothing needle reads is deeper
    ws();
    if (p_ >= t_.size()) return false;
    char c = t_[p_];
    if (c == '{') {
      v.type = Json::Type::object;
      ++p_;
      ws();
      if (p_ < t_.size() && t_[p_] == '}') return ++p_, true;
      for (;;) {
        ws();
        std::string key;
        if (!string(key)) return false;
        ws();
        if (p_ >= t_.size() || t_[p_] != ':') return false;
        ++p_;
        Json item;
        if (!value(item, depth + 1)) return false;
        v.fields.emplace_back(std::move(key), std::move(item));
        ws();
        if (p_ < t_.size() && t_[p_] == ',') {
          ++p_;
          continue;
        }
        if (p_ < t_.size() && t_[p_] == '}') return ++p_, true;
        return false;
      }
    }
    if (c == '[') {
      v.type = Json::Type::array;
      ++p_;
      ws();
      if (p_ < t_.size() && t_[p_] == ']') return ++p_, true;
      for (;;) {
        Json item;
        if (!value(item, depth + 1)) return false;
        v.items.push_back(std::move(item));
        ws();
        if (p_ < t_.size() && t_[p_] == ',') {
          ++p_;
          continue;
        }
        if (p_ < t_.size() && t_[p_] == ']') return ++p_, true;
        return false;
      }
    }
    if (c == '"') {
      v.type = Json::Type::string;
      return string(v.s);
    }
    if (lit("true")) return v.type = Json::Type::boolean, v.b = true, true;
    if (lit("false")) return v.type = Json::Type::boolean, v.b = false, true;
    if (lit("null")) return v.type = Json::Type::null, true;
    const size_t start = p_;
    while (p_ < t_.size() && (std::isdigit(static_cast<unsigned char>(t_[p_])) || t_[p_] == '-' ||
                              t_[p_] == '+' || t_[p_] == '.' || t_[p_] == 'e' || t_[p_] == 'E')) {
      ++p_;
    }
    if (p_ == start) return false;
    v.type = Json::Type::number;
    v.n = std::strtod(std::string(t_.substr(start, p_ - start)).c_str(), nullptr);
    return true;
  }

  std::string_view t_;
  size_t p_ = 0;
};

}  // namespace needle::server
