#include "aggregator/windows.h"

#include <limits>
#include <map>

#include "absl/strings/str_cat.h"
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
  // Only own-node windows are state: the enterprise's is built from them at close.
  EXPECT_EQ(w_.FindForTest("cl/tex/yarur", "output", 10 * kMin, kT0), nullptr);
  EXPECT_EQ(w_.FindForTest("cl/tex", "output", kMin, kT0), nullptr);  // stage 2's job
  EXPECT_EQ(w_.open_windows(), 4u);                                   // 2 units x 2 sizes
  std::vector<Emission> out;
  w_.AdvanceIdle(now_ + 10'000, true, &out);
  ASSERT_THAT(out, SizeIs(6));  // (2 units + enterprise) x 2 sizes
  const v1::WindowAggregate* ent = Find(out, "cl/tex/yarur", "output", 10 * kMin);
  ASSERT_NE(ent, nullptr);
  EXPECT_EQ(ent->count(), 3u);
  EXPECT_DOUBLE_EQ(ent->sum(), 9);
  EXPECT_DOUBLE_EQ(ent->mean(), 3);
  EXPECT_DOUBLE_EQ(ent->variance(), 2.0 / 3);
  EXPECT_EQ(ent->children_reported(), 2u);
  EXPECT_EQ(ent->children_expected(), 2u);
  EXPECT_EQ(ent->level(), 2u);
  EXPECT_EQ(ent->last_event_time_ms(), kT0 + 2000);
  EXPECT_DOUBLE_EQ(ent->last_value(), 4);
  for (const Emission& e : out) {
    const bool enterprise = e.aggregate.series().node() == "cl/tex/yarur";
    EXPECT_EQ(e.rollup_parent, enterprise ? "cl/tex" : "") << e.aggregate.ShortDebugString();
  }
}

// A record naming the enterprise itself goes to the enterprise's own window, which merges with
// its children's at close; completeness still counts children only.
TEST_F(WindowsTest, EnterpriseOwnRecordsMergeWithItsChildren) {
  ASSERT_EQ(Offer("cl/tex/yarur", "output", 10, kT0 + 10, 1), Outcome::kApplied);
  ASSERT_EQ(Offer("cl/tex/yarur/spin", "output", 2, kT0, 2), Outcome::kApplied);
  ASSERT_EQ(Offer("cl/tex/yarur", "peak", 7, kT0, 3), Outcome::kApplied);  // no child at all
  EXPECT_EQ(w_.open_windows(), 6u);
  std::vector<Emission> out;
  w_.AdvanceIdle(now_ + 10'000, true, &out);
  const v1::WindowAggregate* ent = Find(out, "cl/tex/yarur", "output", kMin);
  ASSERT_NE(ent, nullptr);
  EXPECT_EQ(ent->count(), 2u);
  EXPECT_DOUBLE_EQ(ent->sum(), 12);
  EXPECT_DOUBLE_EQ(ent->min(), 2);
  EXPECT_DOUBLE_EQ(ent->last_value(), 10);
  EXPECT_EQ(ent->children_reported(), 1u);
  const v1::WindowAggregate* peak = Find(out, "cl/tex/yarur", "peak", kMin);
  ASSERT_NE(peak, nullptr);
  EXPECT_EQ(peak->count(), 1u);
  EXPECT_EQ(peak->children_reported(), 0u);
  EXPECT_EQ(out.size(), 6u);  // spin/output, yarur/output, yarur/peak x 2 sizes
}

// "Last" among equal event times is the largest value, at every level, whatever the order in
// which the records (or the children's windows) arrived.
TEST_F(WindowsTest, LastValueTieBreakDoesNotDependOnArrivalOrder) {
  auto run = [&](bool spin_first) {
    PartitionWindows w(&model_, now_);
    auto offer = [&](const std::string& node, double v, uint64_t seq) {
      v1::Record r;
      r.set_node(node);
      r.set_indicator("level");
      r.set_value(v);
      r.set_event_time_ms(kT0 + 5);
      r.set_sequence(seq);
      return w.Offer("gw", r, model_.NodeIndex("cl/tex/yarur"), now_);
    };
    if (spin_first) {
      EXPECT_EQ(offer("cl/tex/yarur/spin", 9, 1), Outcome::kApplied);
      EXPECT_EQ(offer("cl/tex/yarur/spin", 1, 2), Outcome::kApplied);
      EXPECT_EQ(offer("cl/tex/yarur/weave", 5, 3), Outcome::kApplied);
    } else {
      EXPECT_EQ(offer("cl/tex/yarur/weave", 5, 1), Outcome::kApplied);
      EXPECT_EQ(offer("cl/tex/yarur/spin", 1, 2), Outcome::kApplied);
      EXPECT_EQ(offer("cl/tex/yarur/spin", 9, 3), Outcome::kApplied);
    }
    std::vector<Emission> out;
    w.AdvanceIdle(now_ + 10'000, true, &out);
    std::map<std::string, double> last;
    for (const Emission& e : out) {
      if (e.aggregate.series().window_ms() == kMin) {
        last[e.aggregate.series().node()] = e.aggregate.value();
      }
    }
    return last;
  };
  const std::map<std::string, double> a = run(true);
  EXPECT_EQ(a, run(false));
  EXPECT_DOUBLE_EQ(a.at("cl/tex/yarur/spin"), 9);
  EXPECT_DOUBLE_EQ(a.at("cl/tex/yarur/weave"), 5);
  EXPECT_DOUBLE_EQ(a.at("cl/tex/yarur"), 9);
}

// An older version persisted the enterprise's window too (with its children's records and a
// children list). Restoring such a state drops it (counted, tombstoned) and rebuilds the
// enterprise from the units at close: nothing is counted twice.
TEST_F(WindowsTest, LegacyAncestorWindowsAreDroppedOnLoad) {
  ASSERT_EQ(Offer("cl/tex/yarur/spin", "output", 2, kT0, 1), Outcome::kApplied);
  ASSERT_EQ(Offer("cl/tex/yarur/weave", "output", 3, kT0 + 1, 2), Outcome::kApplied);
  std::vector<StateChange> changes;
  w_.TakeChanges(&changes);
  ASSERT_EQ(changes.size(), 5u);  // 2 units x 2 sizes + the partition entry
  // The old version's enterprise window for the 1m size.
  v1::WindowState legacy;
  legacy.set_node("cl/tex/yarur");
  legacy.set_indicator("output");
  legacy.set_window_ms(kMin);
  legacy.set_window_start_ms(WindowStart(kT0, kMin));
  legacy.set_count(2);
  legacy.set_sum(5);
  legacy.add_children("cl/tex/yarur/spin");
  legacy.add_children("cl/tex/yarur/weave");
  const std::string legacy_key =
      absl::StrCat("w/", kMin, "/", WindowStart(kT0, kMin), "/output/cl/tex/yarur");
  changes.insert(changes.begin() + 1, {legacy_key, "S" + legacy.SerializeAsString()});
  PartitionWindows copy(&model_, now_);
  for (const StateChange& c : changes) ASSERT_TRUE(copy.Load(c.key, c.value).ok()) << c.key;
  EXPECT_EQ(copy.legacy_windows_dropped(), 1u);
  EXPECT_EQ(copy.open_windows(), 4u);
  std::vector<StateChange> tombstones;
  copy.TakeChanges(&tombstones);
  ASSERT_THAT(tombstones, SizeIs(1));
  EXPECT_EQ(tombstones[0].key, legacy_key);
  EXPECT_EQ(tombstones[0].value, "");
  std::vector<Emission> out;
  copy.AdvanceIdle(now_ + 10'000, true, &out);
  const v1::WindowAggregate* ent = Find(out, "cl/tex/yarur", "output", kMin);
  ASSERT_NE(ent, nullptr);
  EXPECT_EQ(ent->count(), 2u);
  EXPECT_DOUBLE_EQ(ent->sum(), 5);
  EXPECT_EQ(ent->children_reported(), 2u);
}

// Levels between the unit and the enterprise are built at close too, bottom-up.
TEST(WindowsDeepTest, IntermediateLevelsAreBuiltFromTheirChildren) {
  auto c = std::make_shared<Config>(*testing::TestConfig());
  std::vector<LevelSpec> levels = {{"nation", absl::Minutes(60), absl::Hours(5)},
                                   {"sector", absl::Minutes(40), absl::Hours(4)},
                                   {"enterprise", absl::Minutes(20), absl::Hours(3)},
                                   {"plant", absl::Minutes(15), absl::Hours(3)},
                                   {"unit", absl::Minutes(10), absl::Hours(2)}};
  auto h = Hierarchy::FromPaths(levels, {"cl/tex/yarur/p1/spin", "cl/tex/yarur/p1/weave",
                                         "cl/tex/yarur/p2/spin", "cl/tex/sumar/p1/spin"});
  ASSERT_TRUE(h.ok()) << h.status();
  c->hierarchy = std::make_shared<Hierarchy>(std::move(*h));
  Model model(c);
  const int64_t now = kT0 + 3'600'000;
  PartitionWindows w(&model, now);
  uint64_t seq = 0;
  auto offer = [&](const std::string& node, double v) {
    v1::Record r;
    r.set_node(node);
    r.set_indicator("output");
    r.set_value(v);
    r.set_event_time_ms(kT0);
    r.set_sequence(++seq);
    return w.Offer("gw", r, model.NodeIndex("cl/tex/yarur"), now);
  };
  ASSERT_EQ(offer("cl/tex/yarur/p1/spin", 1), Outcome::kApplied);
  ASSERT_EQ(offer("cl/tex/yarur/p1/weave", 2), Outcome::kApplied);
  ASSERT_EQ(offer("cl/tex/yarur/p2/spin", 4), Outcome::kApplied);
  ASSERT_EQ(offer("cl/tex/yarur/p2", 8), Outcome::kApplied);  // at the plant itself
  EXPECT_EQ(w.open_windows(), 8u);
  std::vector<Emission> out;
  w.AdvanceIdle(now + 10'000, true, &out);
  std::map<std::string, const v1::WindowAggregate*> m;
  for (const Emission& e : out) {
    if (e.aggregate.series().window_ms() == kMin) m[e.aggregate.series().node()] = &e.aggregate;
  }
  ASSERT_THAT(m, SizeIs(6));  // 3 units, 2 plants (p2's own window merged in), the enterprise
  EXPECT_DOUBLE_EQ(m.at("cl/tex/yarur/p1")->sum(), 3);
  EXPECT_EQ(m.at("cl/tex/yarur/p1")->children_reported(), 2u);
  EXPECT_EQ(m.at("cl/tex/yarur/p1")->level(), 3u);
  EXPECT_DOUBLE_EQ(m.at("cl/tex/yarur/p2")->sum(), 12);
  EXPECT_EQ(m.at("cl/tex/yarur/p2")->count(), 2u);
  EXPECT_EQ(m.at("cl/tex/yarur/p2")->children_reported(), 1u);
  EXPECT_EQ(m.at("cl/tex/yarur/p2")->children_expected(), 1u);
  EXPECT_DOUBLE_EQ(m.at("cl/tex/yarur")->sum(), 15);
  EXPECT_EQ(m.at("cl/tex/yarur")->count(), 4u);
  EXPECT_EQ(m.at("cl/tex/yarur")->children_reported(), 2u);
  EXPECT_DOUBLE_EQ(m.at("cl/tex/yarur")->max(), 8);
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

// The node-name cache (direct-mapped, by a hash of the path) must never confuse two nodes:
// records interleaved over every unit land in their own unit's window.
TEST_F(WindowsTest, InterleavedNodesEachGetTheirOwnRecords) {
  uint64_t seq = 0;
  const std::vector<std::string> units = testing::TestUnits();
  for (int round = 0; round < 3; ++round) {
    for (size_t u = 0; u < units.size(); ++u) {
      for (size_t k = 0; k <= u; ++k) {
        ASSERT_EQ(Offer(units[u], "output", 1, kT0, ++seq), Outcome::kApplied) << units[u];
      }
      EXPECT_EQ(Offer(units[u] + "x", "output", 1, kT0, ++seq), Outcome::kUnknownNode);
    }
  }
  for (size_t u = 0; u < units.size(); ++u) {
    const Stats* s = w_.FindForTest(units[u], "output", kMin, kT0);
    ASSERT_NE(s, nullptr) << units[u];
    EXPECT_EQ(s->count, 3 * (u + 1)) << units[u];
  }
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
  // Emitted in (window, start, indicator, node) order: the enterprise (lower pre-order index)
  // comes first; only its emission feeds stage 2.
  EXPECT_EQ(closed[0].aggregate.series().node(), "cl/tex/yarur");
  EXPECT_EQ(closed[0].rollup_parent, "cl/tex");
  EXPECT_EQ(closed[1].rollup_parent, "");
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
  EXPECT_EQ(deletes, 4);  // 2 series x 2 sizes (own-node windows only)
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
  EXPECT_EQ(store.size(), 3u);  // the unit's windows x 2 sizes + the partition entry
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
  EXPECT_EQ(deletes, 2);  // only the two windows the first commit persisted
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
