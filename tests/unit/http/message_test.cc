#include "http/message.h"

#include <cctype>
#include <string>
#include <string_view>
#include <utility>

#include <gtest/gtest.h>

#include "http/parser_common.h"

namespace needle::http {
namespace {

TEST(HttpMessage, IequalsIsAsciiCaseInsensitive) {
  EXPECT_TRUE(iequals("Content-Length", "content-length"));
  EXPECT_TRUE(iequals("", ""));
  EXPECT_FALSE(iequals("Host", "Hosts"));
  EXPECT_FALSE(iequals("a-b", "a_b"));
  EXPECT_FALSE(iequals("\xc3\xa9", "\xc3\x89"));  // no Unicode folding
}

TEST(HttpMessage, IdempotentMethods) {
  for (std::string_view m : {"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"}) {
    EXPECT_TRUE(is_idempotent_method(m)) << m;
  }
  for (std::string_view m : {"POST", "PATCH", "CONNECT", "get", ""}) {
    EXPECT_FALSE(is_idempotent_method(m)) << m;
  }
}

TEST(HeaderList, FindCountRemoveAreCaseInsensitive) {
  HeaderList h;
  h.add("Set-Cookie", "a=1");
  h.add("Host", "example.com");
  h.add("set-cookie", "b=2");
  ASSERT_NE(h.find("HOST"), nullptr);
  EXPECT_EQ(*h.find("host"), "example.com");
  EXPECT_EQ(*h.find("SET-COOKIE"), "a=1");  // first match
  EXPECT_EQ(h.find("Missing"), nullptr);
  EXPECT_EQ(h.count("Set-Cookie"), 2u);
  h.remove("SET-cookie");
  EXPECT_EQ(h.size(), 1u);
  EXPECT_EQ(h.items()[0].name, "Host");
  h.clear();
  EXPECT_EQ(h.size(), 0u);
}

TEST(HeaderList, HasTokenAcrossFieldsAndOws) {
  HeaderList h;
  h.add("Connection", "keep-alive ,\tUpgrade");
  h.add("connection", "X-Foo");
  h.add("X-Other", "close");
  EXPECT_TRUE(h.has_token("Connection", "upgrade"));
  EXPECT_TRUE(h.has_token("Connection", "KEEP-ALIVE"));
  EXPECT_TRUE(h.has_token("CONNECTION", "x-foo"));
  EXPECT_FALSE(h.has_token("Connection", "close"));  // only in another field
  EXPECT_FALSE(h.has_token("Connection", "keep"));   // whole tokens only
  EXPECT_FALSE(h.has_token("Connection", ""));
}

TEST(HeaderList, KnownFieldsAreClassifiedWhateverTheirCase) {
  EXPECT_EQ(classify_field("content-length"), FieldId::content_length);
  EXPECT_EQ(classify_field("Transfer-Encoding"), FieldId::transfer_encoding);
  EXPECT_EQ(classify_field("X-FORWARDED-PROTO"), FieldId::x_forwarded_proto);
  EXPECT_EQ(classify_field("x-idempotency-key"), FieldId::x_idempotency_key);
  EXPECT_EQ(classify_field("TE"), FieldId::te);
  // Same length as a known name, different letters; and near misses.
  EXPECT_EQ(classify_field("Accept-Charset"), FieldId::other);
  EXPECT_EQ(classify_field("Content-Lengths"), FieldId::other);
  EXPECT_EQ(classify_field("Hos"), FieldId::other);
  EXPECT_EQ(classify_field(""), FieldId::other);
}

// Every byte of every known name counts, in any case: one changed byte (first, middle, last,
// across the 8-byte words the comparison uses) makes it another field.
TEST(HeaderList, EveryByteOfAKnownNameCounts) {
  const std::pair<std::string_view, FieldId> known[] = {
      {"te", FieldId::te},
      {"via", FieldId::via},
      {"host", FieldId::host},
      {"expect", FieldId::expect},
      {"trailer", FieldId::trailer},
      {"upgrade", FieldId::upgrade},
      {"connection", FieldId::connection},
      {"keep-alive", FieldId::keep_alive},
      {"x-request-id", FieldId::x_request_id},
      {"content-length", FieldId::content_length},
      {"x-forwarded-for", FieldId::x_forwarded_for},
      {"idempotency-key", FieldId::idempotency_key},
      {"proxy-connection", FieldId::proxy_connection},
      {"transfer-encoding", FieldId::transfer_encoding},
      {"x-forwarded-proto", FieldId::x_forwarded_proto},
      {"x-idempotency-key", FieldId::x_idempotency_key},
  };
  for (const auto& [name, id] : known) {
    std::string upper(name);
    for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    EXPECT_EQ(classify_field(upper), id) << upper;
    for (size_t i = 0; i < name.size(); ++i) {
      for (const char other : {'q', 'Q', '_', '^', '0', '.'}) {
        std::string changed(name);
        if (detail::ascii_lower(changed[i]) == detail::ascii_lower(other)) continue;
        changed[i] = other;
        EXPECT_NE(classify_field(changed), id) << changed;
      }
    }
  }
}

TEST(HeaderList, LookupsByIdAndByNameAgree) {
  HeaderList h;
  h.add("Accept-Charset", "utf-8");  // length 14, like Content-Length
  EXPECT_FALSE(h.has(FieldId::content_length));
  EXPECT_EQ(h.find(FieldId::content_length), nullptr);
  EXPECT_EQ(h.find("content-length"), nullptr);
  h.add("CONTENT-LENGTH", "5");
  EXPECT_TRUE(h.has(FieldId::content_length));
  ASSERT_NE(h.find("Content-Length"), nullptr);
  EXPECT_EQ(*h.find(FieldId::content_length), "5");
  h.remove("content-length");
  EXPECT_FALSE(h.has(FieldId::content_length));
  ASSERT_NE(h.find("accept-charset"), nullptr);
}

TEST(HeaderList, ClearKeepsSlotsButNothingOfTheirContent) {
  HeaderList h;
  h.add("Connection", "close");
  h.add("X-A", "1");
  h.clear();
  EXPECT_EQ(h.size(), 0u);
  EXPECT_FALSE(h.has(FieldId::connection));
  EXPECT_FALSE(h.has_token("Connection", "close"));
  Header& reused = h.append_empty();  // a spare slot comes back empty
  EXPECT_TRUE(reused.name.empty());
  EXPECT_TRUE(reused.value.empty());
  EXPECT_EQ(reused.id, FieldId::other);
  reused.name = "Host";
  h.classify_last();
  EXPECT_TRUE(h.has(FieldId::host));
  EXPECT_EQ(h.count("X-A"), 0u);
}

}  // namespace
}  // namespace needle::http
