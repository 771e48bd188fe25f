#include "bench/hierarchy_score.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace cybersyn::bench {
namespace {

using ::testing::ElementsAre;

constexpr int64_t kW = 10'000;  // window

Config TestConfig() {
  auto c = LoadConfigString(R"(
kafka: {bootstrap: embedded, topic_prefix: t}
levels:
  - {name: nation, ack_within: 30s, resolve_within: 2m}
  - {name: sector, ack_within: 20s, resolve_within: 1m}
  - {name: enterprise, ack_within: 15s, resolve_within: 45s}
  - {name: unit, ack_within: 10s, resolve_within: 30s}
hierarchy:
  cl:
    children:
      mining:
        children:
          chuqui: {children: {smelter: {}, extraction: {}}}
indicators:
  - {name: output, unit: t, rollup: sum, role: actuality}
  - {name: capacity, unit: t, rollup: sum, role: capability}
  - {name: energy, unit: MWh, rollup: sum}
)",
                            "test.yaml");
  EXPECT_TRUE(c.ok()) << c.status();
  return *std::move(c);
}

RaisedSignal Sig(std::string id, std::string node, std::string indicator, int64_t start,
                 v1::SignalKind kind = v1::SIGNAL_KIND_STEP) {
  return {.id = std::move(id),
          .node = std::move(node),
          .indicator = std::move(indicator),
          .window_ms = kW,
          .window_start_ms = start,
          .kind = kind,
          .severity = kind == v1::SIGNAL_KIND_REWARD ? v1::SEVERITY_REWARD : v1::SEVERITY_ALERT};
}

TruthEvent Fault(std::string node, std::string indicator, int64_t start, int64_t end) {
  TruthEvent e;
  e.node = node;
  e.units = {node};
  e.indicator = std::move(indicator);
  e.what = "step";
  e.start_ms = start;
  e.end_ms = end;
  return e;
}

TEST(HierarchyScoreTest, MatchesAtTheNodeAndAncestorsOnTheIndicatorAndItsIndices) {
  const Config c = TestConfig();
  const std::vector<TruthEvent> truth = {
      Fault("cl/mining/chuqui/smelter", "output", 100'000, 200'000)};
  const std::vector<RaisedSignal> sigs = {
      Sig("unit", "cl/mining/chuqui/smelter", "output", 100'000),
      Sig("parent-index", "cl/mining/chuqui", "productivity", 110'000),
      Sig("nation", "cl", "output", 120'000),
      Sig("sibling", "cl/mining/chuqui/extraction", "output", 100'000),
      Sig("other-indicator", "cl/mining", "energy", 100'000),
      Sig("unrelated-index", "cl/mining", "latency", 100'000),  // capacity / potential
      Sig("last-window", "cl/mining", "output", 200'000 + 2 * kW),
      Sig("too-late", "cl/mining", "output", 200'000 + 2 * kW + 1),
      Sig("window-before-start", "cl", "output", 100'000 - kW),
      Sig("window-holding-start", "cl", "output", 100'000 - kW + 1),
      Sig("reward", "cl", "output", 120'000, v1::SIGNAL_KIND_REWARD),
      Sig("no-data", "cl/mining/chuqui/smelter", "output", 120'000, v1::SIGNAL_KIND_NO_DATA),
      Sig("warm-up", "cl", "output", 5'000),
  };
  Score s = ScoreSignals(c, truth, sigs, 10'000, 1'000'000);
  EXPECT_EQ(s.counted, 10);
  EXPECT_EQ(s.matched, 5);
  EXPECT_EQ(s.rewards, 1);
  EXPECT_EQ(s.no_data, 1);
  EXPECT_THAT(s.false_ids, ElementsAre("sibling", "other-indicator", "unrelated-index", "too-late",
                                       "window-before-start"));
  ASSERT_EQ(s.events.size(), 1u);
  EXPECT_THAT(s.events[0].signal_ids,
              ElementsAre("unit", "parent-index", "nation", "last-window", "window-holding-start"));
  EXPECT_TRUE(s.events[0].at_node);
  const Score::Totals t = s.TotalsOf(TruthEvent::Kind::kFault);
  EXPECT_EQ(t.events, 1);
  EXPECT_EQ(t.caught, 1);
  EXPECT_DOUBLE_EQ(t.SignalsPerCaught(), 5);
  EXPECT_DOUBLE_EQ(t.RecallAtNode(), 1);
}

// A signal that two events explain counts once, for the one that started last; a pattern's
// signals at its own units are counted apart; events that started in the warm-up match but are
// not in the totals.
TEST(HierarchyScoreTest, OneEventPerSignalAndPatternsCountTheirUnits) {
  const Config c = TestConfig();
  TruthEvent early = Fault("cl/mining/chuqui/smelter", "output", 100'000, 300'000);
  early.scored = false;
  TruthEvent drift;
  drift.kind = TruthEvent::Kind::kParentOnly;
  drift.node = "cl/mining/chuqui";
  drift.units = {"cl/mining/chuqui/extraction", "cl/mining/chuqui/smelter"};
  drift.indicator = "output";
  drift.what = "drift";
  drift.start_ms = 150'000;
  drift.end_ms = 250'000;
  const std::vector<TruthEvent> truth = {early, drift};
  const std::vector<RaisedSignal> sigs = {
      Sig("before-drift", "cl/mining", "output", 120'000),
      Sig("during-drift", "cl/mining", "output", 160'000),
      Sig("at-parent", "cl/mining/chuqui", "output", 170'000),
      Sig("at-unit", "cl/mining/chuqui/extraction", "output", 170'000),
  };
  Score s = ScoreSignals(c, truth, sigs, 0, 1'000'000);
  EXPECT_EQ(s.false_signals, 0);
  EXPECT_THAT(s.events[0].signal_ids, ElementsAre("before-drift"));
  EXPECT_THAT(s.events[1].signal_ids, ElementsAre("during-drift", "at-parent", "at-unit"));
  EXPECT_TRUE(s.events[1].at_node);
  EXPECT_EQ(s.events[1].at_units, 1);
  EXPECT_EQ(s.TotalsOf(TruthEvent::Kind::kFault).events, 0);  // started in the warm-up
  EXPECT_EQ(s.TotalsOf(TruthEvent::Kind::kParentOnly).signals, 3);
}

// A fault on a base indicator is caught at its node by an index derived from it there (a unit's
// capacity fault seen in its productivity), not by a signal at an ancestor.
TEST(HierarchyScoreTest, AtTheNodeCountsTheDerivedIndicesThere) {
  const Config c = TestConfig();
  const std::vector<TruthEvent> truth = {
      Fault("cl/mining/chuqui/smelter", "capacity", 100'000, 200'000),
      Fault("cl/mining/chuqui/extraction", "capacity", 110'000, 200'000)};
  Score s = ScoreSignals(c, truth,
                         {Sig("index", "cl/mining/chuqui/smelter", "productivity", 100'000),
                          Sig("above", "cl/mining/chuqui", "capacity", 130'000)},
                         0, 1'000'000);
  EXPECT_TRUE(s.events[0].at_node);
  EXPECT_FALSE(s.events[1].at_node);
  EXPECT_EQ(s.TotalsOf(TruthEvent::Kind::kFault).caught, 2);
  EXPECT_DOUBLE_EQ(s.TotalsOf(TruthEvent::Kind::kFault).RecallAtNode(), 0.5);
}

// Parent echoes: a counted signal at a node whose descendant has one on the same indicator with
// a window ending within 10 s; derived: counted signals on an index.
TEST(HierarchyScoreTest, ParentEchoesAndDerivedIndexSignalsAreCounted) {
  const Config c = TestConfig();
  Score s = ScoreSignals(
      c, {},
      {Sig("unit", "cl/mining/chuqui/smelter", "output", 100'000),
       Sig("echo", "cl/mining/chuqui", "output", 110'000),  // +10 s
       Sig("echo-2", "cl", "output", 90'000),               // -10 s
       Sig("too-far", "cl/mining", "output", 125'000),      // +15 s from chuqui's
       Sig("other-ind", "cl/mining", "energy", 100'000),    // no energy below
       Sig("sibling", "cl/mining/chuqui/extraction", "output", 100'000),
       Sig("index", "cl/mining/chuqui", "productivity", 100'000),  // derived
       Sig("reward", "cl/mining/chuqui/smelter", "output", 100'000, v1::SIGNAL_KIND_REWARD)},
      0, 1'000'000);
  EXPECT_EQ(s.counted, 7);
  EXPECT_EQ(s.parent_echoes, 2);  // echo, echo-2
  EXPECT_EQ(s.derived, 1);
}

}  // namespace
}  // namespace cybersyn::bench
