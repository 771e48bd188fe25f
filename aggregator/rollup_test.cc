#include "aggregator/rollup.h"

#include <limits>

#include "aggregator/internal/test_config.h"
#include "cybersyn/v1/state.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace cybersyn::aggregator {
namespace {

using ::testing::IsEmpty;
using ::testing::SizeIs;

constexpr int64_t kStart = 1'700'000'040'000;  // a minute boundary
constexpr int64_t kMin = 60'000;

v1::WindowAggregate Child(const std::string& node, const std::string& ind,
                          std::vector<double> values, uint32_t reported = 2) {
  Stats s;
  int64_t t = kStart;
  for (double v : values) s.Add(v, t++);
  v1::WindowAggregate a;
  a.mutable_series()->set_node(node);
  a.mutable_series()->set_indicator(ind);
  a.mutable_series()->set_window_ms(kMin);
  a.set_window_start_ms(kStart);
  a.set_window_end_ms(kStart + kMin);
  StatsToAggregate(s, Rollup::kSum, &a);
  a.set_children_reported(reported);
  a.set_children_expected(2);
  return a;
}

class RollupTest : public ::testing::Test {
 protected:
  RollupTest() : model_(testing::TestConfig()), r_(&model_) {}
  int64_t now_ = 1'800'000'000'000;
  Model model_;
  RollupWindows r_;
};

TEST_F(RollupTest, PublishesWhenAllChildrenReported) {
  std::vector<Emission> out;
  ASSERT_TRUE(r_.Offer(Child("cl/tex/yarur", "output", {1, 2}), now_, &out).ok());
  EXPECT_THAT(out, IsEmpty());
  ASSERT_TRUE(r_.Offer(Child("cl/tex/sumar", "output", {3, 4, 5}), now_, &out).ok());
  ASSERT_THAT(out, SizeIs(1));
  const v1::WindowAggregate& a = out[0].aggregate;
  EXPECT_EQ(a.series().node(), "cl/tex");
  EXPECT_EQ(a.count(), 5u);
  EXPECT_DOUBLE_EQ(a.sum(), 15);
  EXPECT_DOUBLE_EQ(a.mean(), 3);
  EXPECT_DOUBLE_EQ(a.variance(), 2);
  EXPECT_DOUBLE_EQ(a.value(), 15);
  EXPECT_EQ(a.children_reported(), 2u);
  EXPECT_EQ(a.children_expected(), 2u);
  EXPECT_EQ(a.level(), 1u);
  EXPECT_EQ(out[0].rollup_parent, "cl");
}

TEST_F(RollupTest, RepublishedChildReplacesItsContribution) {
  std::vector<Emission> out;
  ASSERT_TRUE(r_.Offer(Child("cl/tex/yarur", "output", {1, 2}), now_, &out).ok());
  ASSERT_TRUE(r_.Offer(Child("cl/tex/sumar", "output", {3}), now_, &out).ok());
  ASSERT_TRUE(r_.Offer(Child("cl/tex/sumar", "output", {3}), now_, &out).ok());
  ASSERT_THAT(out, SizeIs(2));
  EXPECT_EQ(out[1].aggregate.count(), 3u);
  EXPECT_DOUBLE_EQ(out[1].aggregate.sum(), 6);
}

TEST_F(RollupTest, IncompleteParentPublishesAfterDeadlineThenUpdates) {
  std::vector<Emission> out;
  ASSERT_TRUE(r_.Offer(Child("cl/min/chuqui", "output", {1}), now_, &out).ok());
  r_.Tick(now_ + 14'999, &out);  // idle 5s + grace 10s
  EXPECT_THAT(out, IsEmpty());
  r_.Tick(now_ + 15'000, &out);
  ASSERT_THAT(out, SizeIs(1));
  EXPECT_EQ(out[0].aggregate.children_reported(), 1u);
  ASSERT_TRUE(r_.Offer(Child("cl/min/teniente", "output", {2}), now_ + 16'000, &out).ok());
  ASSERT_THAT(out, SizeIs(2));
  EXPECT_EQ(out[1].aggregate.children_reported(), 2u);
  EXPECT_DOUBLE_EQ(out[1].aggregate.sum(), 3);
  // Forgotten after the retention.
  r_.Tick(now_ + 16'000 + model_.rollup_retention_ms(), &out);
  EXPECT_EQ(r_.open_windows(), 0u);
}

TEST_F(RollupTest, MergeOrderDoesNotDependOnArrival) {
  RollupWindows other(&model_);
  std::vector<Emission> a, b;
  auto y = Child("cl/tex/yarur", "temp", {0.1, 0.7, 1e6});
  auto s = Child("cl/tex/sumar", "temp", {0.3, 1e-3});
  ASSERT_TRUE(r_.Offer(y, now_, &a).ok());
  ASSERT_TRUE(r_.Offer(s, now_, &a).ok());
  ASSERT_TRUE(other.Offer(s, now_, &b).ok());
  ASSERT_TRUE(other.Offer(y, now_, &b).ok());
  ASSERT_THAT(a, SizeIs(1));
  ASSERT_THAT(b, SizeIs(1));
  EXPECT_EQ(a[0].aggregate.SerializeAsString(), b[0].aggregate.SerializeAsString());
  EXPECT_DOUBLE_EQ(a[0].aggregate.value(), a[0].aggregate.mean());  // temp rolls up by mean
}

TEST_F(RollupTest, RejectsWhatDoesNotFit) {
  std::vector<Emission> out;
  EXPECT_EQ(r_.Offer(Child("cl/nope", "output", {1}), now_, &out).message(), "unknown_node");
  EXPECT_EQ(r_.Offer(Child("cl", "output", {1}), now_, &out).message(), "node_is_root");
  EXPECT_EQ(r_.Offer(Child("cl/tex", "nope", {1}), now_, &out).message(), "unknown_indicator");
  EXPECT_EQ(r_.Offer(Child("cl/tex", "note", {1}), now_, &out).message(),
            "indicator_does_not_roll_up");
  auto odd = Child("cl/tex", "output", {1});
  odd.mutable_series()->set_window_ms(7);
  EXPECT_EQ(r_.Offer(odd, now_, &out).message(), "unknown_window");
}

TEST_F(RollupTest, DerivesIndicesWhenRolesArePublished) {
  std::vector<Emission> out;
  for (const char* e : {"cl/tex/yarur", "cl/tex/sumar"}) {
    ASSERT_TRUE(r_.Offer(Child(e, "output", {3}), now_, &out).ok());
    ASSERT_TRUE(r_.Offer(Child(e, "capacity", {4}), now_, &out).ok());
    ASSERT_TRUE(r_.Offer(Child(e, "potential", {8}), now_, &out).ok());
  }
  std::map<std::string, double> derived;
  for (const auto& e : out) {
    if (e.aggregate.derived()) derived[e.aggregate.series().indicator()] = e.aggregate.value();
  }
  EXPECT_DOUBLE_EQ(derived["productivity"], 0.75);
  EXPECT_DOUBLE_EQ(derived["latency"], 0.5);
  EXPECT_DOUBLE_EQ(derived["performance"], 0.375);
}

TEST_F(RollupTest, ChangesRestoreTheSameState) {
  std::vector<Emission> out;
  ASSERT_TRUE(r_.Offer(Child("cl/tex/yarur", "output", {1, 2}), now_, &out).ok());
  std::vector<StateChange> changes;
  r_.TakeChanges(&changes);
  ASSERT_THAT(changes, SizeIs(1));
  RollupWindows copy(&model_);
  ASSERT_TRUE(copy.Load(changes[0].key, changes[0].value).ok());
  std::vector<Emission> a, b;
  ASSERT_TRUE(r_.Offer(Child("cl/tex/sumar", "output", {3}), now_, &a).ok());
  ASSERT_TRUE(copy.Offer(Child("cl/tex/sumar", "output", {3}), now_, &b).ok());
  ASSERT_THAT(a, SizeIs(1));
  ASSERT_THAT(b, SizeIs(1));
  EXPECT_EQ(a[0].aggregate.SerializeAsString(), b[0].aggregate.SerializeAsString());
}

// Found with fuzz/changelog_fuzz under UBSan: publishing a corrupt entry overflowed start + size.
TEST_F(RollupTest, StateEntryWithAnImpossibleWindowStartIsDataLoss) {
  v1::RollupWindowState s;
  s.set_node("cl/tex");
  s.set_indicator("output");
  s.set_window_ms(60'000);
  s.set_window_start_ms(std::numeric_limits<int64_t>::max() - 1000);
  s.add_children()->set_child("cl/tex/yarur");
  RollupWindows copy(&model_);
  EXPECT_EQ(copy.Load("r/x", "S" + s.SerializeAsString()).code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(copy.open_windows(), 0u);
}

}  // namespace
}  // namespace cybersyn::aggregator
