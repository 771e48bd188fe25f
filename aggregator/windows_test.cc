#include "aggregator/windows.h"

#include <limits>
#include <map>

#include "aggregator/internal/test_config.h"
#include "common/clock.h"
#include "cybersyn/v1/state.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace cybersyn::aggregator {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::SizeIs;

constexpr int64_t kT0 = 1'700'000'040'000;  // a minute boundary
constexpr int64_t kMin = 60'000;

class WindowsTest : public ::testing::Test {
 protected:
  WindowsTest() : model_(testing::TestConfig()), w_(&model_, now_) {}

  Outcome Offer(const std::string& node, const std::string& ind, double v, int64_t t, uint64_t seq,
                const std::string& gw = "gw") {
    v1::Record r;
    r.set_node(node);
    r.set_indicator(ind);
    r.set_value(v);
    r.set_event_time_ms(t);
    r.set_sequence(seq);
    auto e = model_.node(std::max(0, model_.NodeIndex(node))).enterprise;
    return w_.Offer(gw, r, e, now_);
  }
  std::vector<Emission> Close() {
    std::vector<Emission> out;
    w_.CloseDue(now_, &out);
    return out;
  }
  static const v1::WindowAggregate* Find(const std::vector<Emission>& es, const std::string& node,
                                         const std::string& ind, int64_t window_ms) {
    for (const Emission& e : es) {
      if (e.aggregate.series().node() == node && e.aggregate.series().indicator() == ind &&
          e.aggregate.series().window_ms() == window_ms) {
        return &e.aggregate;
      }
    }
    return nullptr;
  }

  int64_t now_ = kT0 + 3'600'000;  // wall clock an hour after the events
  Model model_;
  PartitionWindows w_;
};

TEST_F(WindowsTest, AssignsEverySizeAndRollsUpToEnterprise) {
  EXPECT_EQ(Offer("cl/tex/yarur/spin", "output", 2, kT0, 1), Outcome::kApplied);
  EXPECT_EQ(Offer("cl/tex/yarur/weave", "output", 3, kT0 + 1000, 2), Outcome::kApplied);
  EXPECT_EQ(Offer("cl/tex/yarur/spin", "output", 4, kT0 + 2000, 3), Outcome::kApplied);
  const Stats* unit = w_.FindForTest("cl/tex/yarur/spin", "output", kMin, kT0);
  ASSERT_NE(unit, nullptr);
  EXPECT_EQ(unit->count, 2u);
  EXPECT_DOUBLE_EQ(unit->sum, 6);
  const Stats* ent = w_.FindForTest("cl/tex/yarur", "output", 10 * kMin, kT0);
  ASSERT_NE(ent, nullptr);
  EXPECT_EQ(ent->count, 3u);
  EXPECT_DOUBLE_EQ(ent->sum, 9);
  EXPECT_EQ(w_.FindForTest("cl/tex", "output", kMin, kT0), nullptr);  // stage 2's job
  EXPECT_EQ(w_.open_windows(), 6u);                                   // 3 nodes x 2 sizes
}

TEST_F(WindowsTest, NoneRuleStaysAtItsNode) {
  EXPECT_EQ(Offer("cl/tex/yarur/spin", "note", 2, kT0, 1), Outcome::kApplied);
  EXPECT_EQ(w_.FindForTest("cl/tex/yarur", "note", kMin, kT0), nullptr);
  EXPECT_EQ(w_.open_windows(), 2u);
}

TEST_F(WindowsTest, DuplicatesAreDroppedPerGateway) {
  EXPECT_EQ(Offer("cl/tex/yarur/spin", "output", 1, kT0, 5), Outcome::kApplied);
  EXPECT_EQ(Offer("cl/tex/yarur/spin", "output", 1, kT0, 5), Outcome::kDuplicate);
  EXPECT_EQ(Offer("cl/tex/yarur/spin", "output", 1, kT0, 4), Outcome::kDuplicate);
  EXPECT_EQ(Offer("cl/tex/yarur/spin", "output", 1, kT0, 5, "other"), Outcome::kApplied);
  EXPECT_EQ(w_.FindForTest("cl/tex/yarur/spin", "output", kMin, kT0)->count, 2u);
}

TEST_F(WindowsTest, ValidatesRecords) {
  EXPECT_EQ(Offer("cl/tex/nope", "output", 1, kT0, 1), Outcome::kUnknownNode);
  EXPECT_EQ(Offer("cl/tex", "output", 1, kT0, 2), Outcome::kNodeAboveEnterprise);
  EXPECT_EQ(Offer("cl/tex/yarur/spin", "bogus", 1, kT0, 3), Outcome::kUnknownIndicator);
  EXPECT_EQ(Offer("cl/tex/yarur/spin", "output", std::numeric_limits<double>::quiet_NaN(), kT0, 4),
            Outcome::kNotFinite);
  EXPECT_EQ(Offer("cl/tex/yarur/spin", "output", std::numeric_limits<double>::infinity(), kT0, 5),
            Outcome::kNotFinite);
  EXPECT_EQ(Offer("cl/tex/yarur/spin", "output", 1, 12, 6), Outcome::kBadTimestamp);
  EXPECT_EQ(Offer("cl/tex/yarur/spin", "output", 1, now_ + 3'600'000, 7), Outcome::kBadTimestamp);
  v1::Record r;
  r.set_node("cl/tex/yarur/spin");
  r.set_indicator("output");
  r.set_event_time_ms(kT0);
  r.set_sequence(8);
  EXPECT_EQ(w_.Offer("gw", r, model_.NodeIndex("cl/tex/sumar"), now_), Outcome::kWrongEnterprise);
  EXPECT_EQ(w_.open_windows(), 0u);
  EXPECT_EQ(OutcomeReason(Outcome::kLate), "late");
  EXPECT_EQ(OutcomeReason(Outcome::kNotFinite), "not_finite");
}

TEST_F(WindowsTest, WatermarkClosesAfterLatenessAndGrace) {
  // Window [kT0-40s, kT0+20s) ends at E; closes when max_event - 30s >= E + 10s.
  const int64_t start = WindowStart(kT0, kMin);
  const int64_t end = start + kMin;
  ASSERT_EQ(Offer("cl/tex/yarur/spin", "output", 1, kT0, 1), Outcome::kApplied);
  ASSERT_EQ(Offer("cl/tex/yarur/spin", "output", 1, end + 39'999, 2), Outcome::kApplied);
  EXPECT_THAT(Close(), IsEmpty());
  // A record within lateness is still accepted into the old window.
  ASSERT_EQ(Offer("cl/tex/yarur/spin", "output", 5, end - 1, 3), Outcome::kApplied);
  ASSERT_EQ(Offer("cl/tex/yarur/spin", "output", 1, end + 40'000, 4), Outcome::kApplied);
  EXPECT_EQ(w_.watermark_ms(), end + 10'000);
  std::vector<Emission> closed = Close();
  ASSERT_THAT(closed, SizeIs(2));  // unit + enterprise, 1m
  const v1::WindowAggregate* u = Find(closed, "cl/tex/yarur/spin", "output", kMin);
  ASSERT_NE(u, nullptr);
  EXPECT_EQ(u->count(), 2u);
  EXPECT_DOUBLE_EQ(u->sum(), 6);
  EXPECT_DOUBLE_EQ(u->value(), 6);
  EXPECT_EQ(u->window_start_ms(), start);
  EXPECT_EQ(u->window_end_ms(), end);
  EXPECT_EQ(u->level(), 3u);
  EXPECT_EQ(u->children_reported(), 2u);  // records, at a unit
  EXPECT_TRUE(closed[0].rollup_parent.empty() || closed[1].rollup_parent == "cl/tex");
  const v1::WindowAggregate* e = Find(closed, "cl/tex/yarur", "output", kMin);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->children_reported(), 1u);
  EXPECT_EQ(e->children_expected(), 2u);
  // Now the window is closed: a record for it is late, also for the 10m size.
  EXPECT_EQ(Offer("cl/tex/yarur/spin", "output", 1, end - 1, 5), Outcome::kLate);
  EXPECT_EQ(w_.FindForTest("cl/tex/yarur/spin", "output", 10 * kMin, kT0)->count, 4u);
}

TEST_F(WindowsTest, LatenessDoesNotDependOnBatching) {
  // Closing is deferred (CloseDue) but lateness is decided by the watermark at the record.
  const int64_t end = WindowStart(kT0, kMin) + kMin;
  ASSERT_EQ(Offer("cl/tex/yarur/spin", "output", 1, end + 40'000, 1), Outcome::kApplied);
  EXPECT_EQ(Offer("cl/tex/yarur/spin", "output", 1, kT0, 2), Outcome::kLate);
}

TEST_F(WindowsTest, IdlePartitionAdvancesByClockOnlyWhenCaughtUp) {
  ASSERT_EQ(Offer("cl/tex/yarur/spin", "output", 1, kT0, 1), Outcome::kApplied);
  std::vector<Emission> out;
  ManualClock clock(absl::FromUnixMillis(now_));
  clock.Advance(absl::Seconds(4));
  w_.AdvanceIdle(clock.NowMillis(), true, &out);
  EXPECT_THAT(out, IsEmpty());  // not idle long enough
  clock.Advance(absl::Seconds(2));
  w_.AdvanceIdle(clock.NowMillis(), false, &out);
  EXPECT_THAT(out, IsEmpty());  // data still waiting in the log
  w_.AdvanceIdle(clock.NowMillis(), true, &out);
  EXPECT_THAT(out, SizeIs(4));  // 2 nodes x 2 sizes, all long past
  EXPECT_EQ(w_.open_windows(), 0u);
}

TEST_F(WindowsTest, DerivesBeerIndices) {
  ASSERT_EQ(Offer("cl/tex/yarur/spin", "output", 6, kT0, 1), Outcome::kApplied);
  ASSERT_EQ(Offer("cl/tex/yarur/spin", "capacity", 8, kT0, 2), Outcome::kApplied);
  ASSERT_EQ(Offer("cl/tex/yarur/spin", "potential", 10, kT0, 3), Outcome::kApplied);
  std::vector<Emission> out;
  w_.AdvanceIdle(now_ + 10'000, true, &out);
  const v1::WindowAggregate* p = Find(out, "cl/tex/yarur/spin", "productivity", kMin);
  ASSERT_NE(p, nullptr);
  EXPECT_TRUE(p->derived());
  EXPECT_DOUBLE_EQ(p->value(), 0.75);
  EXPECT_DOUBLE_EQ(Find(out, "cl/tex/yarur", "latency", kMin)->value(), 0.8);
  EXPECT_DOUBLE_EQ(Find(out, "cl/tex/yarur", "performance", 10 * kMin)->value(), 0.6);
}

TEST_F(WindowsTest, ChangesRestoreTheSameState) {
  ASSERT_EQ(Offer("cl/tex/yarur/spin", "output", 1.5, kT0, 1), Outcome::kApplied);
  ASSERT_EQ(Offer("cl/tex/yarur/weave", "temp", 2.5, kT0 + 5, 2), Outcome::kApplied);
  std::vector<StateChange> changes;
  w_.TakeChanges(&changes);
  PartitionWindows copy(&model_, now_);
  for (const StateChange& c : changes) ASSERT_TRUE(copy.Load(c.key, c.value).ok()) << c.key;
  EXPECT_EQ(copy.open_windows(), w_.open_windows());
  EXPECT_EQ(copy.watermark_ms(), w_.watermark_ms());
  // Dedup state came along.
  v1::Record dup;
  dup.set_node("cl/tex/yarur/spin");
  dup.set_indicator("output");
  dup.set_event_time_ms(kT0);
  dup.set_sequence(2);
  EXPECT_EQ(copy.Offer("gw", dup, model_.NodeIndex("cl/tex/yarur"), now_), Outcome::kDuplicate);
  // Both close to identical aggregates.
  std::vector<Emission> a, b;
  w_.AdvanceIdle(now_ + 10'000, true, &a);
  copy.AdvanceIdle(now_ + 10'000, true, &b);
  ASSERT_EQ(a.size(), b.size());
  std::map<std::string, std::string> sa, sb;
  for (const auto& e : a)
    sa[e.aggregate.series().ShortDebugString()] = e.aggregate.SerializeAsString();
  for (const auto& e : b)
    sb[e.aggregate.series().ShortDebugString()] = e.aggregate.SerializeAsString();
  EXPECT_EQ(sa, sb);
  // Closing produced deletes of every window key.
  std::vector<StateChange> after;
  w_.TakeChanges(&after);
  int deletes = 0;
  for (const auto& c : after) deletes += c.value.empty();
  EXPECT_EQ(deletes, 8);  // 2 series x (unit + enterprise) x 2 sizes
  EXPECT_THAT(copy.Load("w/bad", "S\xff\xff"),
              ::testing::Not(::testing::Property(&absl::Status::ok, true)));
}

// A catching-up partition opens and closes many windows between two commits: those never reach
// the changelog (neither the put nor a tombstone), while windows that were handed out get their
// tombstone, so the persisted state ends up with no stale window either way.
TEST_F(WindowsTest, WindowsOpenedAndClosedBetweenCommitsLeaveNoChangelogEntries) {
  ASSERT_EQ(Offer("cl/tex/yarur/spin", "output", 1, kT0, 1), Outcome::kApplied);
  std::map<std::string, std::string> store;  // what the changelog/RocksDB would hold
  auto apply = [&](const std::vector<StateChange>& changes) {
    for (const StateChange& c : changes) {
      if (c.value.empty()) {
        EXPECT_EQ(store.erase(c.key), 1u) << "tombstone for a key never written: " << c.key;
      } else {
        store[c.key] = c.value;
      }
    }
  };
  std::vector<StateChange> first;
  w_.TakeChanges(&first);
  apply(first);
  EXPECT_EQ(store.size(), 5u);  // (unit + enterprise) x 2 sizes + the partition entry
  // The next minute's windows open, then everything closes, before the next commit.
  ASSERT_EQ(Offer("cl/tex/yarur/spin", "output", 2, kT0 + kMin, 2), Outcome::kApplied);
  std::vector<Emission> closed;
  w_.AdvanceIdle(now_ + 10'000, true, &closed);
  const v1::WindowAggregate* second = nullptr;
  for (const Emission& e : closed) {
    const auto& series = e.aggregate.series();
    if (series.node() == "cl/tex/yarur/spin" && series.indicator() == "output" &&
        series.window_ms() == kMin && e.aggregate.window_start_ms() == kT0 + kMin) {
      second = &e.aggregate;
    }
  }
  ASSERT_NE(second, nullptr) << "the never-persisted window still closes and is published";
  EXPECT_EQ(second->count(), 1u);
  EXPECT_EQ(w_.open_windows(), 0u);
  std::vector<StateChange> after;
  w_.TakeChanges(&after);
  int deletes = 0, window_puts = 0;
  for (const StateChange& c : after) {
    deletes += c.value.empty();
    window_puts += !c.value.empty() && c.key != kPartitionStateKey;
  }
  EXPECT_EQ(deletes, 4);  // only the four windows the first commit persisted
  EXPECT_EQ(window_puts, 0);
  apply(after);
  EXPECT_THAT(store, SizeIs(1));  // just the partition entry
  EXPECT_EQ(store.count(std::string(kPartitionStateKey)), 1u);
}

// Found with fuzz/changelog_fuzz under UBSan: a corrupt entry's start + size overflowed.
TEST_F(WindowsTest, StateEntryWithAnImpossibleWindowStartIsDataLoss) {
  v1::WindowState s;
  s.set_node("cl/tex/yarur/spin");
  s.set_indicator("output");
  s.set_window_ms(kMin);
  s.set_window_start_ms(std::numeric_limits<int64_t>::max() - 1000);
  s.set_count(1);
  PartitionWindows copy(&model_, now_);
  EXPECT_EQ(copy.Load("w/x", "S" + s.SerializeAsString()).code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(copy.open_windows(), 0u);
}

}  // namespace
}  // namespace cybersyn::aggregator
