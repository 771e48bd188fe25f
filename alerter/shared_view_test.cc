#include "alerter/shared_view.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace cybersyn::alerter {
namespace {

constexpr int64_t kW = 60'000;

v1::ViewUpdate Update(int64_t window, double observed, bool resolved = false) {
  v1::ViewUpdate u;
  u.set_from_partition(2);
  v1::Signal* s = u.add_signals();
  s->set_id("sig-1");
  s->mutable_series()->set_node("textiles/yarur/spinning");
  s->mutable_series()->set_indicator("output");
  s->mutable_series()->set_window_ms(kW);
  s->set_window_start_ms(window * kW);
  s->set_observed(observed);
  s->set_forecast(100);
  s->set_state(resolved ? v1::SIGNAL_STATE_RESOLVED : v1::SIGNAL_STATE_FIRING);
  return u;
}

// A decision as of window 42 reads the signal as it stood then, though its owner has updated it
// at window 45 and resolved it since: the same departure whenever the decision is taken.
TEST(SharedViewTest, ReadsASignalAsOfAWindowAfterLaterUpdatesAndItsResolution) {
  SharedView view;
  view.Apply(Update(40, 60));
  view.Apply(Update(41, 65));
  view.Apply(Update(45, 90));
  view.Apply(Update(45, 90, /*resolved=*/true));
  ASSERT_EQ(view.signals().size(), 1u);
  const SharedView::Entry& e = view.signals().at("sig-1");
  EXPECT_TRUE(e.resolved);
  EXPECT_EQ(e.from_partition, 2);
  const SharedView::Detected* d = SharedView::AsOf(e, 42 * kW);
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->window_start_ms, 41 * kW);
  EXPECT_EQ(d->observed, 65);
  EXPECT_EQ(SharedView::AsOf(e, 40 * kW), nullptr) << "window 40 ends at 41";
  EXPECT_EQ(SharedView::AsOf(e, 46 * kW)->observed, 90);
  view.Apply(Update(47, 10));
  EXPECT_EQ(SharedView::AsOf(view.signals().at("sig-1"), 48 * kW)->observed, 90)
      << "a resolved entry is final";
}

// Restored from the changelog with its detections and its resolution; pruned once old.
TEST(SharedViewTest, RestoresDetectionsAndPrunesOldResolvedEntries) {
  SharedView view;
  view.Apply(Update(40, 60));
  view.Apply(Update(41, 65, /*resolved=*/true));
  std::vector<stream::StateChange> changes;
  view.TakeChanges(&changes);
  SharedView restored;
  for (const stream::StateChange& c : changes) ASSERT_TRUE(restored.Load(c.key, c.value).ok());
  ASSERT_EQ(restored.signals().size(), 1u);
  const SharedView::Entry& e = restored.signals().at("sig-1");
  EXPECT_TRUE(e.resolved);
  ASSERT_THAT(e.detections, ::testing::SizeIs(2));
  EXPECT_EQ(SharedView::AsOf(e, 41 * kW)->observed, 60);

  restored.Prune(42 * kW);  // the last detection ends at 42: still needed
  EXPECT_EQ(restored.signals().size(), 1u);
  restored.Prune(42 * kW + 1);
  EXPECT_TRUE(restored.signals().empty());
  changes.clear();
  restored.TakeChanges(&changes);
  ASSERT_THAT(changes, ::testing::SizeIs(1));
  EXPECT_EQ(changes[0].key, "v/sig-1");
  EXPECT_TRUE(changes[0].value.empty()) << "a tombstone";
}

TEST(SharedViewTest, KeepsTheNewestDetections) {
  SharedView view;
  for (int i = 0; i < 40; ++i) view.Apply(Update(i, i));
  const SharedView::Entry& e = view.signals().at("sig-1");
  ASSERT_THAT(e.detections, ::testing::SizeIs(SharedView::kMaxDetections));
  EXPECT_EQ(e.detections.front().window_start_ms, (40 - SharedView::kMaxDetections) * kW);
}

}  // namespace
}  // namespace cybersyn::alerter
