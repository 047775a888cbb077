#include "http/path_normalizer.h"

#include <gtest/gtest.h>

#include <string>

namespace needle::http {
namespace {

struct Case {
  std::string_view in;
  std::string_view out;  // expected normal form
};

std::string normal(std::string_view in, PathNormalizeOptions options = {}) {
  std::string out = "scratch";
  switch (normalize_path(in, options, out)) {
    case PathNormalizeResult::unchanged:
      return std::string(in);
    case PathNormalizeResult::normalized:
      EXPECT_NE(out, in) << "normalized must mean changed";
      return out;
    case PathNormalizeResult::malformed_escape:
      return "<malformed>";
    case PathNormalizeResult::escaped_slash:
      return "<escaped slash>";
  }
  return "<?>";
}

// RFC 3986 5.4.1 and 5.4.2 (base "http://a/b/c/d;p?q"), written as the merged absolute paths
// that 5.2.4 sees, plus the example of 5.2.4 itself.
TEST(PathNormalizer, Rfc3986DotSegmentExamples) {
  const Case cases[] = {
      {"/a/b/c/./../../g", "/a/g"},
      {"/b/c/g", "/b/c/g"},
      {"/b/c/./g", "/b/c/g"},
      {"/b/c/g/", "/b/c/g/"},
      {"/g", "/g"},
      {"/b/c/.", "/b/c/"},
      {"/b/c/./", "/b/c/"},
      {"/b/c/..", "/b/"},
      {"/b/c/../", "/b/"},
      {"/b/c/../g", "/b/g"},
      {"/b/c/../..", "/"},
      {"/b/c/../../", "/"},
      {"/b/c/../../g", "/g"},
      {"/b/c/../../../g", "/g"},  // 5.4.2: above the root stays at the root
      {"/b/c/../../../../g", "/g"},
      {"/./g", "/g"},
      {"/../g", "/g"},
      {"/b/c/g.", "/b/c/g."},
      {"/b/c/.g", "/b/c/.g"},
      {"/b/c/g..", "/b/c/g.."},
      {"/b/c/..g", "/b/c/..g"},
      {"/b/c/./../g", "/b/g"},
      {"/b/c/./g/.", "/b/c/g/"},
      {"/b/c/g/./h", "/b/c/g/h"},
      {"/b/c/g/../h", "/b/c/h"},
      {"/b/c/g;x=1/./y", "/b/c/g;x=1/y"},
      {"/b/c/g;x=1/../y", "/b/c/y"},
  };
  for (const Case& c : cases) EXPECT_EQ(normal(c.in), c.out) << c.in;
}

TEST(PathNormalizer, TheIssueCase) {
  EXPECT_EQ(normal("/public/../admin"), "/admin");
  EXPECT_EQ(normal("/public/%2e%2e/admin"), "/admin");
  EXPECT_EQ(normal("/public/%2E%2e/admin"), "/admin");
  EXPECT_EQ(normal("/public/.%2E/admin"), "/admin");
  EXPECT_EQ(normal("/public/%2e/admin"), "/public/admin");
  EXPECT_EQ(normal("/.."), "/");
  EXPECT_EQ(normal("/../"), "/");
  EXPECT_EQ(normal("/../../x"), "/x");
}

TEST(PathNormalizer, EmptySegmentsAreKeptUnlessMerged) {
  EXPECT_EQ(normal("/a//b"), "/a//b");
  EXPECT_EQ(normal("//"), "//");
  EXPECT_EQ(normal("/a//../b"), "/a/b");  // ".." removes the empty segment (5.2.4 step C)
  const PathNormalizeOptions merge{.merge_slashes = true};
  EXPECT_EQ(normal("/a//b", merge), "/a/b");
  EXPECT_EQ(normal("///a///b///", merge), "/a/b/");
  EXPECT_EQ(normal("//", merge), "/");
  EXPECT_EQ(normal("/a//../b", merge), "/b");
}

// RFC 3986 2.3, 2.4, 6.2.2.1, 6.2.2.2.
TEST(PathNormalizer, EscapesOfUnreservedAreDecodedOthersUppercased) {
  EXPECT_EQ(normal("/%41%7a%30%2D%2e%5F%7E"), "/Az0-._~");
  EXPECT_EQ(normal("/a%20b"), "/a%20b");
  EXPECT_EQ(normal("/a%3f"), "/a%3F");  // '?' stays encoded: it would start a query
  EXPECT_EQ(normal("/a%25"), "/a%25");  // '%' itself: no double decoding
  EXPECT_EQ(normal("/a%252e%252e"), "/a%252e%252e");
  EXPECT_EQ(normal("/caf%c3%a9"), "/caf%C3%A9");
  EXPECT_EQ(normal("/%00"), "/%00");
}

TEST(PathNormalizer, MalformedEscapesAreErrors) {
  for (std::string_view in : {"/%zz", "/%4", "/a%", "/%4g", "/%g4", "/ok/%%41", "/../%x1"}) {
    EXPECT_EQ(normal(in), "<malformed>") << in;
  }
}

TEST(PathNormalizer, EscapedSlashesFollowTheAction) {
  for (std::string_view in : {"/a%2fb", "/a%2Fb", "/a%5cb", "/a%5C..", "/x/../a%2F"}) {
    EXPECT_EQ(normal(in), "<escaped slash>") << in;
  }
  const PathNormalizeOptions keep{.escaped_slashes = EscapedSlashAction::keep_unchanged};
  EXPECT_EQ(normal("/a%2Fb", keep), "/a%2Fb");
  EXPECT_EQ(normal("/a%2fb", keep), "/a%2Fb");
  EXPECT_EQ(normal("/a%2F..%2Fb", keep), "/a%2F..%2Fb");  // one segment: no dot segment in it
  EXPECT_EQ(normal("/a/%5c/../b", keep), "/a/b");
  const PathNormalizeOptions unescape{.escaped_slashes = EscapedSlashAction::unescape_and_forward};
  EXPECT_EQ(normal("/a%2fb", unescape), "/a/b");
  EXPECT_EQ(normal("/a%5Cb", unescape), "/a/b");
  EXPECT_EQ(normal("/public%2F..%2Fadmin", unescape), "/admin");
}

TEST(PathNormalizer, NonPathsAndCleanPathsAreUnchanged) {
  for (std::string_view in : {"*", "", "a/../b", "/", "/index.html", "/a/b/", "/.well-known/x",
                              "/a%20b/%C3%A9", "/a..b/c.d/..e/...", "/a/./"}) {
    std::string out = "untouched";
    const PathNormalizeResult result = normalize_path(in, {}, out);
    if (in == "/a/./") {
      EXPECT_EQ(result, PathNormalizeResult::normalized);
      EXPECT_EQ(out, "/a/");
      continue;
    }
    EXPECT_EQ(result, PathNormalizeResult::unchanged) << in;
    EXPECT_EQ(out, "untouched") << in << ": a clean path must not be copied";
  }
}

TEST(PathNormalizer, ProblemsHaveText) {
  EXPECT_FALSE(path_problem(PathNormalizeResult::malformed_escape).empty());
  EXPECT_FALSE(path_problem(PathNormalizeResult::escaped_slash).empty());
  EXPECT_TRUE(path_problem(PathNormalizeResult::unchanged).empty());
  EXPECT_TRUE(path_problem(PathNormalizeResult::normalized).empty());
}

}  // namespace
}  // namespace needle::http
