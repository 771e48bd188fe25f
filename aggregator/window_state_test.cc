#include "aggregator/window_state.h"

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

}  // namespace
}  // namespace cybersyn::aggregator
