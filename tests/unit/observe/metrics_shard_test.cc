#include "observe/metrics_shard.h"

#include <gtest/gtest.h>

#include "allocation_counter.h"
#include "record_builders.h"

namespace needle::observe {
namespace {

using namespace std::chrono_literals;
using test_records::attempt;
using test_records::request;

template <size_t N, typename V>
V value_or_zero(const LabelMap<N, V>& map, const typename LabelMap<N, V>::Labels& labels) {
  const V* v = map.find(labels);
  return v ? *v : V{};
}

TEST(MetricsStatusClass, NamesEveryClass) {
  EXPECT_EQ(status_class_name(101), "1xx");
  EXPECT_EQ(status_class_name(200), "2xx");
  EXPECT_EQ(status_class_name(304), "3xx");
  EXPECT_EQ(status_class_name(499), "4xx");
  EXPECT_EQ(status_class_name(502), "5xx");
  EXPECT_EQ(status_class_name(0), "none");
  EXPECT_EQ(status_class_name(600), "none");
}

TEST(MetricsHistogram, BucketsAreInclusiveUpperBounds) {
  Histogram h;
  h.observe(1ms);     // exactly 0.001 -> first bucket (le is inclusive)
  h.observe(1500us);  // (0.001, 0.0025]
  h.observe(60s);     // last finite bucket
  h.observe(61s);     // +Inf only
  EXPECT_EQ(h.count, 4u);
  EXPECT_EQ(h.buckets[0], 1u);
  EXPECT_EQ(h.buckets[1], 1u);
  EXPECT_EQ(h.buckets[kDurationBuckets.size() - 1], 1u);
  EXPECT_EQ(h.buckets[kDurationBuckets.size()], 1u);
  EXPECT_EQ(h.cumulative(0), 1u);
  EXPECT_EQ(h.cumulative(1), 2u);
  EXPECT_EQ(h.cumulative(kDurationBuckets.size() - 1), 3u);
  EXPECT_EQ(h.cumulative(kDurationBuckets.size()), 4u);
  EXPECT_NEAR(h.sum_seconds, 0.001 + 0.0015 + 60 + 61, 1e-9);
}

TEST(MetricsHistogram, ANanosecondOverABoundIsTheNextBucket) {
  Histogram h;
  h.observe(std::chrono::nanoseconds(1'000'001));   // just over 0.001
  h.observe(std::chrono::nanoseconds(2'500'000));   // exactly 0.0025
  h.observe(std::chrono::nanoseconds(0));
  EXPECT_EQ(h.buckets[0], 1u);
  EXPECT_EQ(h.buckets[1], 2u);
  EXPECT_EQ(h.count, 3u);
}

TEST(MetricsLabelMap, KeepsEntriesSortedAndUnique) {
  LabelMap<2, uint64_t> map;
  ++map[{"b", "x"}];
  ++map[{"a", "y"}];
  ++map[{"b", "x"}];
  ++map[{"a", "x"}];
  ASSERT_EQ(map.size(), 3u);
  EXPECT_EQ(map.entries()[0].labels[0], "a");
  EXPECT_EQ(map.entries()[0].labels[1], "x");
  EXPECT_EQ(map.entries()[1].labels[1], "y");
  EXPECT_EQ(map.entries()[2].value, 2u);
  EXPECT_EQ(map.find({"c", "x"}), nullptr);
}

TEST(MetricsLabelMap, ExistingLabelsDoNotGrowTheMap) {
  LabelMap<1, uint64_t> map;
  std::string route = "/api";  // a string_view into a temporary buffer, as on the hot path
  for (int i = 0; i < 1000; ++i) ++map[{std::string_view(route)}];
  EXPECT_EQ(map.size(), 1u);
  EXPECT_EQ(map.entries()[0].value, 1000u);
  const void* storage = map.entries().data();
  ++map[{"/api"}];
  EXPECT_EQ(map.entries().data(), storage);  // no reallocation for a known label set
}

// The last-found entry is tried first: an insert before it shifts the entries, and a label
// buffer reused with other contents (same address, same size) must not count as the old tuple.
TEST(MetricsLabelMap, LastFoundEntryIsRecheckedAfterInsertsAndBufferReuse) {
  LabelMap<2, uint64_t> map;
  std::string route = "/m";
  ++map[{std::string_view(route), "2xx"}];
  ++map[{"/a", "2xx"}];  // sorts first: the /m entry moves up one slot
  ++map[{std::string_view(route), "2xx"}];
  route[1] = 'z';  // same buffer and size, other label
  ++map[{std::string_view(route), "2xx"}];
  ++map[{"/m", "5xx"}];
  ++map[{"/m", "2xx"}];
  ASSERT_EQ(map.size(), 4u);
  EXPECT_EQ(*map.find({"/a", "2xx"}), 1u);
  EXPECT_EQ(*map.find({"/m", "2xx"}), 3u);
  EXPECT_EQ(*map.find({"/m", "5xx"}), 1u);
  EXPECT_EQ(*map.find({"/z", "2xx"}), 1u);
}

TEST(MetricsShard, CountsRequestsByRouteAndStatusClass) {
  MetricsShard shard;
  shard.on_request(request(200));
  shard.on_request(request(204));
  shard.on_request(request(404));
  shard.on_request(request(502, Cause::connect_refused));
  shard.on_request(request(200, Cause::none, "/static"));
  shard.on_request(request(0, Cause::client_closed, ""));
  EXPECT_EQ(value_or_zero(shard.requests(), {"/api", "2xx"}), 2u);
  EXPECT_EQ(value_or_zero(shard.requests(), {"/api", "4xx"}), 1u);
  EXPECT_EQ(value_or_zero(shard.requests(), {"/api", "5xx"}), 1u);
  EXPECT_EQ(value_or_zero(shard.requests(), {"/static", "2xx"}), 1u);
  EXPECT_EQ(value_or_zero(shard.requests(), {"none", "none"}), 1u);
  const Histogram* api = shard.request_duration().find({"/api"});
  ASSERT_NE(api, nullptr);
  EXPECT_EQ(api->count, 4u);
  const ByteCounts* bytes = shard.bytes().find({"/api"});
  ASSERT_NE(bytes, nullptr);
  EXPECT_EQ(bytes->in, 40u);
  EXPECT_EQ(bytes->out, 800u);
}

TEST(MetricsShard, Counts5xxByFinalCause) {
  MetricsShard shard;
  shard.on_request(request(502, Cause::connect_refused));
  shard.on_request(request(502, Cause::connect_refused));
  shard.on_request(request(504, Cause::response_timeout));
  shard.on_request(request(500));  // the upstream's own 500, passed through
  shard.on_request(request(499, Cause::client_closed));
  EXPECT_EQ(value_or_zero(shard.responses_5xx(), {"connect_refused"}), 2u);
  EXPECT_EQ(value_or_zero(shard.responses_5xx(), {"response_timeout"}), 1u);
  EXPECT_EQ(value_or_zero(shard.responses_5xx(), {"none"}), 1u);
  EXPECT_EQ(value_or_zero(shard.responses_5xx(), {"client_closed"}), 0u);
}

TEST(MetricsShard, CountsAttemptFailuresRetriesAndAttemptDurations) {
  MetricsShard shard;
  // Keep-alive race saved by a retry on a fresh connection.
  RequestRecord saved = request(200);
  saved.attempts = {attempt("10.0.0.1:80", 0, Cause::reset_before_response_on_reused, true),
                    attempt("10.0.0.1:80", 200, Cause::none, false)};
  shard.on_request(saved);
  // Connect refused twice, then given up.
  RequestRecord failed = request(502, Cause::connect_refused);
  failed.attempts = {attempt("10.0.0.1:80", 0, Cause::connect_refused),
                     attempt("10.0.0.2:80", 0, Cause::connect_refused)};
  shard.on_request(failed);
  // A client that went away is not an upstream failure.
  RequestRecord gone = request(0, Cause::client_closed);
  gone.attempts = {attempt("10.0.0.2:80", 0, Cause::client_closed, true)};
  shard.on_request(gone);

  EXPECT_EQ(value_or_zero(shard.upstream_failures(),
                          {"app", "10.0.0.1:80", "reset_before_response_on_reused"}),
            1u);
  EXPECT_EQ(value_or_zero(shard.upstream_failures(), {"app", "10.0.0.1:80", "connect_refused"}),
            1u);
  EXPECT_EQ(value_or_zero(shard.upstream_failures(), {"app", "10.0.0.2:80", "connect_refused"}),
            1u);
  EXPECT_EQ(shard.upstream_failures().size(), 3u);

  EXPECT_EQ(value_or_zero(shard.retries(), {"reset_before_response_on_reused", "success"}), 1u);
  EXPECT_EQ(value_or_zero(shard.retries(), {"connect_refused", "failure"}), 1u);
  EXPECT_EQ(shard.retries().size(), 2u);

  EXPECT_EQ(value_or_zero(shard.upstream_attempts(), {"app", "10.0.0.1:80", "reused"}), 1u);
  EXPECT_EQ(value_or_zero(shard.upstream_attempts(), {"app", "10.0.0.1:80", "new"}), 2u);
  EXPECT_EQ(value_or_zero(shard.upstream_attempts(), {"app", "10.0.0.2:80", "reused"}), 1u);

  const Histogram* upstream = shard.upstream_duration().find({"app"});
  ASSERT_NE(upstream, nullptr);
  EXPECT_EQ(upstream->count, 5u);
}

TEST(MetricsShard, MergeSumsEveryFamily) {
  MetricsShard a, b;
  RequestRecord r = request(502, Cause::reset_before_response_on_new);
  r.attempts = {attempt("h:1", 0, Cause::reset_before_response_on_new),
                attempt("h:1", 0, Cause::reset_before_response_on_new)};
  a.on_request(r);
  b.on_request(r);
  b.on_request(request(200, Cause::none, "/other", "other"));

  MetricsShard merged;
  merged.merge_from(a);
  merged.merge_from(b);
  EXPECT_EQ(value_or_zero(merged.requests(), {"/api", "5xx"}), 2u);
  EXPECT_EQ(value_or_zero(merged.requests(), {"/other", "2xx"}), 1u);
  EXPECT_EQ(value_or_zero(merged.responses_5xx(), {"reset_before_response_on_new"}), 2u);
  EXPECT_EQ(
      value_or_zero(merged.upstream_failures(), {"app", "h:1", "reset_before_response_on_new"}),
      4u);
  EXPECT_EQ(value_or_zero(merged.retries(), {"reset_before_response_on_new", "failure"}), 2u);
  EXPECT_EQ(merged.request_duration().find({"/api"})->count, 2u);
  EXPECT_EQ(merged.upstream_duration().find({"app"})->count, 4u);
  EXPECT_EQ(merged.bytes().find({"/api"})->out, 400u);
  // The sources are unchanged.
  EXPECT_EQ(value_or_zero(a.requests(), {"/api", "5xx"}), 1u);
}

TEST(MetricsShard, KnownLabelSetsCountWithoutAllocating) {
  MetricsShard shard;
  RequestRecord r = request(502, Cause::connect_refused);
  r.attempts = {attempt("10.0.0.1:80", 0, Cause::reset_before_response_on_reused, true),
                attempt("10.0.0.2:80", 0, Cause::connect_refused)};
  shard.on_request(r);  // first sight of these label sets: allocates them once
  const size_t before = test_alloc::allocations_on_this_thread();
  for (int i = 0; i < 1000; ++i) shard.on_request(r);
  EXPECT_EQ(test_alloc::allocations_on_this_thread() - before, 0u);
  EXPECT_EQ(value_or_zero(shard.responses_5xx(), {"connect_refused"}), 1001u);
  // A new label set does allocate (the counter above can see it).
  RequestRecord other = request(200, Cause::none, "/new-route");
  shard.on_request(other);
  EXPECT_GT(test_alloc::allocations_on_this_thread() - before, 0u);
}

}  // namespace
}  // namespace needle::observe
