#include "aggregator/window_state.h"

#include <limits>
#include <random>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace cybersyn::aggregator {
namespace {

TEST(StatsTest, AddComputesEverything) {
  Stats s;
  s.Add(2, 10);
  s.Add(4, 30);
  s.Add(9, 20);
  EXPECT_EQ(s.count, 3u);
  EXPECT_DOUBLE_EQ(s.sum, 15);
  EXPECT_DOUBLE_EQ(s.min, 2);
  EXPECT_DOUBLE_EQ(s.max, 9);
  EXPECT_DOUBLE_EQ(s.mean, 5);
  EXPECT_DOUBLE_EQ(s.Variance(), (9 + 1 + 16) / 3.0);
  EXPECT_DOUBLE_EQ(s.last_value, 4);  // latest event time, not latest added
  EXPECT_EQ(s.last_event_time_ms, 30);
}

TEST(StatsTest, MergeEqualsSequentialAdd) {
  std::mt19937_64 rng(7);
  std::normal_distribution<double> d(1e6, 3);
  std::vector<double> v(1000);
  for (double& x : v) x = d(rng);
  Stats all, parts[4];
  for (size_t i = 0; i < v.size(); ++i) {
    all.Add(v[i], static_cast<int64_t>(i));
    parts[i % 4].Add(v[i], static_cast<int64_t>(i));
  }
  Stats merged;
  for (const Stats& p : parts) merged.Merge(p);
  EXPECT_EQ(merged.count, all.count);
  EXPECT_DOUBLE_EQ(merged.min, all.min);
  EXPECT_DOUBLE_EQ(merged.max, all.max);
  EXPECT_NEAR(merged.sum, all.sum, 1e-6);
  EXPECT_NEAR(merged.mean, all.mean, 1e-9);
  EXPECT_NEAR(merged.Variance(), all.Variance(), 1e-6);
  EXPECT_NEAR(all.Variance(), 9.0, 1.0);  // stable despite the 1e6 offset
  EXPECT_DOUBLE_EQ(merged.last_value, v.back());
}

// Among equal event times the largest value is "last", for Add in any order and for Merge in
// any order, so a parent built from children equals one built from the records.
TEST(StatsTest, LastValueTieBreakIsOrderIndependent) {
  Stats a, b;
  a.Add(3, 10);
  a.Add(7, 10);
  a.Add(5, 10);
  b.Add(5, 10);
  b.Add(7, 10);
  b.Add(3, 10);
  EXPECT_DOUBLE_EQ(a.last_value, 7);
  EXPECT_DOUBLE_EQ(b.last_value, 7);
  Stats x, y;
  x.Add(-1, 10);
  y.Add(-2, 10);
  Stats xy = x, yx = y;
  xy.Merge(y);
  yx.Merge(x);
  EXPECT_DOUBLE_EQ(xy.last_value, -1);
  EXPECT_DOUBLE_EQ(yx.last_value, -1);
  Stats later;
  later.Add(-5, 11);
  xy.Merge(later);
  EXPECT_DOUBLE_EQ(xy.last_value, -5);  // event time first
}

TEST(StatsTest, MergeWithEmptyIsIdentity) {
  Stats a;
  a.Add(3, 1);
  Stats b = a;
  b.Merge(Stats{});
  EXPECT_EQ(a, b);
  Stats c;
  c.Merge(a);
  EXPECT_EQ(a, c);
}

TEST(StatsTest, RollupValueFollowsRule) {
  Stats s;
  s.Add(1, 5);
  s.Add(5, 1);
  EXPECT_DOUBLE_EQ(RollupValue(Rollup::kSum, s), 6);
  EXPECT_DOUBLE_EQ(RollupValue(Rollup::kMean, s), 3);
  EXPECT_DOUBLE_EQ(RollupValue(Rollup::kMin, s), 1);
  EXPECT_DOUBLE_EQ(RollupValue(Rollup::kMax, s), 5);
  EXPECT_DOUBLE_EQ(RollupValue(Rollup::kLast, s), 1);
  EXPECT_DOUBLE_EQ(RollupValue(Rollup::kNone, s), 3);
}

TEST(StatsTest, ProtoRoundTripIsExact) {
  Stats s;
  s.Add(0.1, 1);
  s.Add(0.7, 2);
  v1::WindowState p;
  StatsToProto(s, &p);
  EXPECT_EQ(StatsFromProto(p), s);
  v1::WindowAggregate a;
  StatsToAggregate(s, Rollup::kSum, &a);
  EXPECT_EQ(StatsFromAggregate(a), s);
  EXPECT_DOUBLE_EQ(a.value(), s.sum);
  EXPECT_DOUBLE_EQ(a.variance(), s.Variance());
}

TEST(WindowStartTest, FloorsAlsoForNegativeTimes) {
  EXPECT_EQ(WindowStart(125'000, 60'000), 120'000);
  EXPECT_EQ(WindowStart(120'000, 60'000), 120'000);
  EXPECT_EQ(WindowStart(-1, 60'000), -60'000);
}

TEST(WindowSizeMsTest, StartEqualsWindowStartForEveryTime) {
  std::mt19937_64 rng(42);
  for (int64_t size : {int64_t{1}, int64_t{7}, int64_t{1000}, int64_t{60'000}, int64_t{600'000},
                       int64_t{3'600'000}, int64_t{86'400'000}, int64_t{604'800'000}}) {
    const WindowSizeMs w(size);
    std::vector<int64_t> times = {0,
                                  -1,
                                  1,
                                  size,
                                  size - 1,
                                  -size,
                                  -size + 1,
                                  946'684'800'000,
                                  1'795'881'599'999,
                                  1'795'881'600'000,
                                  (int64_t{1} << 52) - 1,
                                  int64_t{1} << 52,
                                  -(int64_t{1} << 52),
                                  std::numeric_limits<int64_t>::max(),
                                  std::numeric_limits<int64_t>::min() + size};
    // Window edges around now, and random times over the whole range.
    for (int i = 0; i < 2000; ++i) {
      const int64_t edge = (1'795'000'000'000 / size + i) * size;
      times.insert(times.end(), {edge - 1, edge, edge + 1});
      times.push_back(static_cast<int64_t>(rng() >> (rng() % 40)) * (rng() % 2 ? 1 : -1));
    }
    for (int64_t t : times) ASSERT_EQ(w.Start(t), WindowStart(t, size)) << t << " / " << size;
  }
}

}  // namespace
}  // namespace cybersyn::aggregator
