// The alerter's loop on the broker-free TopologyTestDriver: detection, escalation across a
// crash, commands, dirty-only state, poison input, and the three bugs of issue 19 (a batch
// straddling a revoke, stale state after a revoke, corrupt state dropped silently), plus the
// upgrade from the encodings before state.proto.
#include "alerter/topology.h"

#include <map>
#include <random>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_replace.h"
#include "alerter/alerter_state.h"
#include "alerter/detectors/detector.h"
#include "common/config.h"
#include "common/kafka_admin.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "stream/task_store.h"
#include "stream/test_driver.h"
#include "tests/alerter_testing.h"

namespace cybersyn::alerter {
namespace {

using stream::TopologyTestDriver;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

constexpr char kSpinning[] = "textiles/yarur/spinning";
constexpr char kWeaving[] = "textiles/yarur/weaving";
constexpr char kSumar[] = "textiles/sumar/spinning";
constexpr int64_t kT0 = 1'700'000'000'000 - 3 * 3'600'000;

std::shared_ptr<const Config> TestConfig() {
  auto c =
      LoadConfigString(cybersyn::testing::TextilesConfigYaml("127.0.0.1:9", "alr", R"(operators:
  - {name: ana, subtree: textiles/yarur, token: tok-ana}
alerter: {warmup: 5, auto_resolve_after: 3}
)"),
                       "test.yaml");
  EXPECT_TRUE(c.ok()) << c.status();
  if (!c.ok()) std::abort();
  return std::make_shared<const Config>(std::move(*c));
}

// The committed transitions of `kind` on <prefix>.signals.
std::vector<v1::SignalEvent> EventsOf(TopologyTestDriver& driver, const std::string& topic,
                                      v1::TransitionKind kind) {
  std::vector<v1::SignalEvent> out;
  for (const auto& r : driver.ReadAll(topic)) {
    v1::SignalEvent e;
    EXPECT_TRUE(e.ParseFromString(r.value.value_or("")));
    if (e.transition().kind() == kind) out.push_back(e);
  }
  return out;
}

std::string Aggregate(const std::string& node, int window, double value) {
  v1::WindowAggregate a;
  a.mutable_series()->set_node(node);
  a.mutable_series()->set_indicator("output");
  a.mutable_series()->set_window_ms(60000);
  a.set_window_start_ms(kT0 + window * 60000);
  a.set_window_end_ms(kT0 + (window + 1) * 60000);
  a.set_value(value);
  a.set_count(1);
  return a.SerializeAsString();
}

class AlerterTopologyTest : public ::testing::Test {
 protected:
  AlerterTopologyTest()
      : config_(TestConfig()), names_("alr"), driver_([this](Clock* clock) {
          return AlerterTopology({config_, "alr", &metrics_, clock, nullptr});
        }) {}

  // Windows [from, to) of `node` around 100; from `step_at` on at 60 (a step down).
  void PipeSeries(const std::string& node, int from, int to, int step_at = 1 << 30) {
    std::mt19937 rng(42 + from);
    std::normal_distribution<double> noise(0, 1);
    for (int i = from; i < to; ++i) {
      driver_.Pipe(names_.aggregates, node,
                   Aggregate(node, i, (i < step_at ? 100 : 60) + noise(rng)));
    }
  }
  void PipeCommand(v1::CommandKind kind, const std::string& signal_id, const std::string& origin,
                   const std::string& id) {
    v1::Command c;
    c.set_id(id);
    c.set_kind(kind);
    c.set_signal_id(signal_id);
    c.set_operator_id("ana");
    c.set_reason("test");
    driver_.Pipe(names_.commands, origin, c.SerializeAsString());
  }
  std::vector<v1::SignalEvent> Events() {
    std::vector<v1::SignalEvent> out;
    for (const auto& r : driver_.ReadAll(names_.signals)) {
      v1::SignalEvent e;
      EXPECT_TRUE(e.ParseFromString(r.value.value_or("")));
      out.push_back(e);
    }
    return out;
  }
  int Count(v1::TransitionKind kind) {
    int n = 0;
    for (const auto& e : Events()) n += e.transition().kind() == kind;
    return n;
  }
  int32_t PartitionOf(const std::string& node) {
    return driver_.broker().PartitionFor(names_.aggregates, node);
  }
  AlerterProcessor* Task(const std::string& node) {
    return driver_.processor<AlerterProcessor>("alr", PartitionOf(node));
  }
  std::string RaisedId() {
    for (const auto& e : Events()) {
      if (e.transition().kind() == v1::TRANSITION_KIND_RAISED) return e.signal().id();
    }
    return "";
  }
  std::string SeriesId(const std::string& node) { return absl::StrCat(node, "|output|60000"); }

  std::shared_ptr<const Config> config_;
  TopicNames names_;
  prometheus::Registry registry_;
  AlerterMetrics metrics_{registry_};
  TopologyTestDriver driver_;
};

TEST_F(AlerterTopologyTest, AStepRaisesOneSignalAtTheSeriesNode) {
  ASSERT_TRUE(driver_.Start().ok());
  PipeSeries(kSpinning, 0, 43, /*step_at=*/40);
  PipeSeries(kSumar, 0, 43);
  ASSERT_TRUE(driver_.Process().ok());
  const auto events = Events();
  ASSERT_THAT(events, SizeIs(1)) << "one RAISED; the noise series stays quiet";
  const v1::Signal& s = events[0].signal();
  EXPECT_EQ(events[0].transition().kind(), v1::TRANSITION_KIND_RAISED);
  EXPECT_EQ(s.origin_node(), kSpinning);
  EXPECT_EQ(s.current_level_name(), "unit");
  EXPECT_GE(s.window_start_ms(), kT0 + 40 * 60000);
  EXPECT_EQ(driver_.counter("aggregates"), 86u);
  EXPECT_EQ(Task(kSpinning)->WindowsOf(SeriesId(kSpinning)), 43u);
  EXPECT_EQ(Task(kSpinning)->book().open().size(), 1u);
}

// Dirty-only: a series written once per commit however many windows the batch held.
TEST_F(AlerterTopologyTest, EachChangedSeriesIsWrittenOncePerCommit) {
  ASSERT_TRUE(driver_.Start().ok());
  PipeSeries(kSumar, 0, 30);
  ASSERT_TRUE(driver_.Process().ok());
  int series_entries = 0;
  for (const auto& r : driver_.ReadAll(TopicNames("alr").Changelog("alerter"))) {
    series_entries += absl::StartsWith(r.key, "d/");
  }
  EXPECT_EQ(series_entries, 1);
  EXPECT_EQ(driver_.runtime()->stats().transactions, 1u);
}

TEST_F(AlerterTopologyTest, DeadlineThatPassedWhileDownEscalatesOnceAfterRestart) {
  ASSERT_TRUE(driver_.Start().ok());
  PipeSeries(kSpinning, 0, 43, 40);
  ASSERT_TRUE(driver_.Process().ok());
  ASSERT_EQ(Count(v1::TRANSITION_KIND_RAISED), 1);
  driver_.Crash();
  driver_.clock().Advance(absl::Minutes(6));  // the unit's 5m ack deadline passes while down
  ASSERT_TRUE(driver_.Start().ok());
  ASSERT_TRUE(driver_.Process().ok());
  ASSERT_EQ(Count(v1::TRANSITION_KIND_ESCALATED), 1);
  for (const auto& e : Events()) {
    if (e.transition().kind() != v1::TRANSITION_KIND_ESCALATED) continue;
    EXPECT_EQ(e.transition().from_node(), kSpinning);
    EXPECT_EQ(e.transition().to_node(), "textiles/yarur");
    EXPECT_EQ(e.signal().current_level_name(), "enterprise");
  }
  driver_.Crash();
  ASSERT_TRUE(driver_.Start().ok());
  ASSERT_TRUE(driver_.Process().ok());
  EXPECT_EQ(Count(v1::TRANSITION_KIND_ESCALATED), 1) << "escalated twice";
}

TEST_F(AlerterTopologyTest, CommandsApplyOnceAndOnlyInTheOperatorsSubtree) {
  ASSERT_TRUE(driver_.Start().ok());
  PipeSeries(kSpinning, 0, 43, 40);
  ASSERT_TRUE(driver_.Process().ok());
  const std::string id = RaisedId();
  ASSERT_FALSE(id.empty());
  PipeCommand(v1::COMMAND_KIND_ACKNOWLEDGE, id, kSpinning, "cmd-1");
  PipeCommand(v1::COMMAND_KIND_RESOLVE, id, kSpinning, "cmd-2");
  PipeCommand(v1::COMMAND_KIND_RESOLVE, id, kSpinning, "cmd-2");  // redelivered
  ASSERT_TRUE(driver_.Process().ok());
  EXPECT_EQ(Count(v1::TRANSITION_KIND_ACKNOWLEDGED), 1);
  EXPECT_EQ(Count(v1::TRANSITION_KIND_RESOLVED), 1);
  EXPECT_EQ(driver_.counter("commands"), 2u);
  EXPECT_TRUE(Task(kSpinning)->book().open().empty());
  // The applied ids survive a restart from the changelog alone.
  driver_.Crash(/*wipe_store=*/true);
  ASSERT_TRUE(driver_.Start().ok());
  PipeCommand(v1::COMMAND_KIND_RESOLVE, id, kSpinning, "cmd-2");
  ASSERT_TRUE(driver_.Process().ok());
  EXPECT_EQ(driver_.counter("rejected_commands"), 0u) << "a remembered id is not even tried";
}

TEST_F(AlerterTopologyTest, MalformedInputIsDeadLetteredWithItsReason) {
  ASSERT_TRUE(driver_.Start().ok());
  driver_.Pipe(names_.aggregates, kSpinning, "\xff garbage");
  v1::WindowAggregate nameless;
  nameless.set_value(1);
  driver_.Pipe(names_.aggregates, kSpinning, nameless.SerializeAsString());
  driver_.Pipe(names_.commands, kSpinning, "\xff garbage");
  PipeSeries(kSpinning, 0, 3);
  ASSERT_TRUE(driver_.Process().ok());
  std::vector<std::string> reasons;
  for (const auto& r : driver_.ReadAll(names_.deadletter)) {
    for (const auto& [k, v] : r.headers) {
      if (k == "reason") reasons.push_back(v);
    }
  }
  EXPECT_THAT(reasons, ElementsAre("malformed", "malformed", "malformed"));
  EXPECT_EQ(driver_.counter("aggregates"), 3u);
}

TEST_F(AlerterTopologyTest, FailedCommitsPublishEachTransitionOnce) {
  int failures = 0;
  driver_.SetCommitHook([&](uint64_t) -> absl::Status {
    if (failures++ < 2) return absl::UnavailableError("injected");
    return absl::OkStatus();
  });
  ASSERT_TRUE(driver_.Start().ok());
  PipeSeries(kSpinning, 0, 43, 40);
  ASSERT_TRUE(driver_.Process().ok());
  EXPECT_EQ(driver_.runtime()->stats().rewinds, 2u);
  EXPECT_EQ(Count(v1::TRANSITION_KIND_RAISED), 1);
  EXPECT_EQ(driver_.counter("aggregates"), 43u);
}

// Issue 19, bug 1: the alerter committed the offsets of messages from partitions it had not
// restored (or no longer owned), so those windows were never processed by anyone.
TEST_F(AlerterTopologyTest, WindowsOfPartitionsRevokedMidBatchAreProcessedByTheNextOwner) {
  ASSERT_TRUE(driver_.Start().ok());
  ASSERT_TRUE(driver_.Process().ok());
  const int32_t p = PartitionOf(kSpinning);
  ASSERT_NE(PartitionOf(kSumar), p) << "the test needs the two series apart";
  PipeSeries(kSpinning, 0, 20);
  PipeSeries(kSumar, 0, 20);
  std::vector<int32_t> keep;
  for (int32_t q = 0; q < 4; ++q) {
    if (q != p) keep.push_back(q);
  }
  driver_.KeepPartitions(keep, /*mid_batch=*/true);
  ASSERT_TRUE(driver_.Process().ok());
  EXPECT_FALSE(driver_.Committed().contains({names_.aggregates, p}))
      << "committed past windows nobody processed";
  EXPECT_EQ(driver_.counter("aggregates"), 20u);
  driver_.AssignAll();
  ASSERT_TRUE(driver_.Process().ok());
  EXPECT_EQ(Task(kSpinning)->WindowsOf(SeriesId(kSpinning)), 20u);
  EXPECT_EQ(Task(kSumar)->WindowsOf(SeriesId(kSumar)), 20u);
}

// Issue 19, bug 2: after a revoke the local state stayed. Another instance resolved the signal
// meanwhile (a tombstone), compaction removed the tombstone; the partition came back and the
// restore from the stale checkpoint over the stale keys resurrected the resolved signal.
TEST_F(AlerterTopologyTest, ResolvedElsewhereWhileRevokedStaysResolved) {
  ASSERT_TRUE(driver_.Start().ok());
  PipeSeries(kSpinning, 0, 43, 40);
  ASSERT_TRUE(driver_.Process().ok());
  const std::string id = RaisedId();
  ASSERT_FALSE(id.empty());
  const int32_t p = PartitionOf(kSpinning);
  std::vector<int32_t> keep;
  for (int32_t q = 0; q < 4; ++q) {
    if (q != p) keep.push_back(q);
  }
  driver_.KeepPartitions(keep);
  ASSERT_TRUE(driver_.Process().ok());
  // The other owner resolves it: the signal's state is deleted; compaction drops the tombstone.
  const std::string changelog = names_.Changelog("alerter");
  driver_.broker().Append(changelog, p, absl::StrCat("s/", id), std::nullopt);
  driver_.broker().Compact(changelog);
  driver_.AssignAll();
  ASSERT_TRUE(driver_.Process().ok());
  EXPECT_EQ(Task(kSpinning)->book().Find(id), nullptr) << "a resolved signal came back";
  EXPECT_EQ(Task(kSpinning)->WindowsOf(SeriesId(kSpinning)), 43u);
}

// Issue 19, bug 3: a series or open signal that did not decode was skipped silently: the
// signal disappeared. Now the task is rebuilt from the changelog, and it is counted.
TEST_F(AlerterTopologyTest, CorruptLocalStateIsRebuiltFromTheChangelogAndCounted) {
  ASSERT_TRUE(driver_.Start().ok());
  PipeSeries(kSpinning, 0, 43, 40);
  ASSERT_TRUE(driver_.Process().ok());
  const std::string id = RaisedId();
  driver_.Crash();
  const std::string prefix = stream::StatePrefix(stream::TaskPrefix("alr", PartitionOf(kSpinning)));
  ASSERT_TRUE(driver_.store().Put(absl::StrCat(prefix, "s/", id), "\x07garbage").ok());
  ASSERT_TRUE(driver_.store().Put(absl::StrCat(prefix, "d/", SeriesId(kSpinning)), "\x01").ok());
  ASSERT_TRUE(driver_.Start().ok());
  ASSERT_TRUE(driver_.Process().ok());
  ASSERT_NE(Task(kSpinning)->book().Find(id), nullptr) << "the open signal was dropped";
  EXPECT_EQ(Task(kSpinning)->WindowsOf(SeriesId(kSpinning)), 43u);
  EXPECT_EQ(driver_.runtime()->stats().corrupt_local_entries, 2u);
  EXPECT_THAT(driver_.ReadAll(names_.deadletter), IsEmpty());
}

TEST_F(AlerterTopologyTest, SignalCorruptInTheChangelogIsDeadLetteredNotLostSilently) {
  ASSERT_TRUE(driver_.Start().ok());
  PipeSeries(kSpinning, 0, 43, 40);
  ASSERT_TRUE(driver_.Process().ok());
  const std::string id = RaisedId();
  const int32_t p = PartitionOf(kSpinning);
  const std::string changelog = names_.Changelog("alerter");
  for (const auto& r : driver_.broker().ReadCommitted(changelog, p)) {
    if (r.key == absl::StrCat("s/", id)) {
      ASSERT_TRUE(driver_.broker().CorruptRecordForTest(changelog, p, r.offset, "\x07junk").ok());
    }
  }
  driver_.Crash(/*wipe_store=*/true);
  ASSERT_TRUE(driver_.Start().ok());
  ASSERT_TRUE(driver_.Process().ok());
  const auto dead = driver_.ReadAll(names_.deadletter);
  ASSERT_THAT(dead, SizeIs(1));
  std::map<std::string, std::string> h(dead[0].headers.begin(), dead[0].headers.end());
  EXPECT_EQ(h["reason"], "corrupt_state");
  EXPECT_EQ(h["state_key"], absl::StrCat("s/", id));
  EXPECT_THAT(h["error"], HasSubstr("open signal"));
  EXPECT_EQ(driver_.runtime()->stats().corrupt_changelog_entries, 1u);
}

// The upgrade: an alerter of the version before state.proto left its local store in the old
// layout and its changelog in the old encodings. Everything is read, and rewritten.
TEST_F(AlerterTopologyTest, StateOfThePreviousVersionIsReadAndRewritten) {
  const int32_t p = driver_.broker().PartitionFor(names_.aggregates, kWeaving);
  const std::string changelog = names_.Changelog("alerter");
  driver_.broker().CreateTopic(changelog, 4);
  // A warmed-up cyberstride state of 30 windows.
  auto det = MakeDetector("cyberstride", {});
  ASSERT_TRUE(det.ok());
  for (int i = 0; i < 30; ++i) (*det)->Update({kT0 + i * 60000, 100.0 + (i % 3), false});
  v1::AlerterSeriesState old;
  old.set_windows(30);
  old.set_last_window_start_ms(kT0 + 29 * 60000);
  old.set_last_arrival_ms(driver_.clock().NowMillis());
  old.set_detector((*det)->Serialize());
  OpenSignal sig;
  sig.normal_windows = 1;
  sig.signal.set_id("sig-00000000000000aa");
  *sig.signal.mutable_series() = [] {
    v1::SeriesKey k;
    k.set_node(kWeaving);
    k.set_indicator("output");
    k.set_window_ms(60000);
    return k;
  }();
  sig.signal.set_kind(v1::SIGNAL_KIND_STEP);
  sig.signal.set_origin_node(kWeaving);
  sig.signal.set_current_node(kWeaving);
  sig.signal.set_state(v1::SIGNAL_STATE_FIRING);
  driver_.broker().Append(changelog, p, absl::StrCat("d/", SeriesId(kWeaving)),
                          EncodeLegacySeriesStateForTest(old));
  driver_.broker().Append(changelog, p, "s/sig-00000000000000aa",
                          EncodeLegacyOpenSignalForTest(sig));
  driver_.broker().Append(changelog, p, "c/cmd-old", absl::StrCat(driver_.clock().NowMillis()));
  // The old local layout: deleted at open (the changelog has the same).
  ASSERT_TRUE(driver_.store().Put("p/00001/d/x|y|1", "\x01\x01").ok());
  ASSERT_TRUE(driver_.store().Put("o/00001", "3").ok());

  ASSERT_TRUE(driver_.Start().ok());
  PipeSeries(kWeaving, 30, 31);
  PipeCommand(v1::COMMAND_KIND_ACKNOWLEDGE, "sig-00000000000000aa", kWeaving, "cmd-old");
  ASSERT_TRUE(driver_.Process().ok());
  AlerterProcessor* t = Task(kWeaving);
  EXPECT_EQ(t->WindowsOf(SeriesId(kWeaving)), 31u) << "the detector's history was kept";
  ASSERT_NE(t->book().Find("sig-00000000000000aa"), nullptr);
  EXPECT_EQ(Count(v1::TRANSITION_KIND_ACKNOWLEDGED), 0) << "cmd-old was applied before";
  EXPECT_FALSE(driver_.store().Get("o/00001").ok());
  EXPECT_FALSE(driver_.store().Get("p/00001/d/x|y|1").ok());
  // Rewritten in the current encoding at the first commit.
  std::map<std::string, std::string> latest;
  for (const auto& r : driver_.broker().ReadCommitted(changelog, p)) {
    latest[r.key] = r.value.value_or("");
  }
  bool legacy = true;
  ASSERT_TRUE(DecodeSeriesState(latest[absl::StrCat("d/", SeriesId(kWeaving))], &legacy).ok());
  EXPECT_FALSE(legacy);
  ASSERT_TRUE(DecodeOpenSignal(latest["s/sig-00000000000000aa"], &legacy).ok());
  EXPECT_FALSE(legacy);
  ASSERT_TRUE(DecodeAppliedCommand(latest["c/cmd-old"], &legacy).ok());
  EXPECT_FALSE(legacy);
}

// Attribution (docs/attribution.md): Beer's derived indices at the node of their bases.
class AlerterAttributionTest : public ::testing::Test {
 protected:
  explicit AlerterAttributionTest(const std::string& output_attribution = "on")
      : config_(Config(output_attribution)), names_("alr"), driver_([this](Clock* clock) {
          return AlerterTopology({config_, "alr", &metrics_, clock, nullptr});
        }) {}

  // The textiles config with capacity, and `attribution: <output_attribution>` on output.
  static std::shared_ptr<const cybersyn::Config> Config(const std::string& output_attribution) {
    auto c = LoadConfigString(
        absl::StrReplaceAll(
            cybersyn::testing::TextilesConfigYaml("127.0.0.1:9", "alr", R"(
  - {name: capacity, unit: t, rollup: sum, role: capability}
alerter: {warmup: 5, auto_resolve_after: 3}
)"),
            {{"role: actuality}", "role: actuality, attribution: " + output_attribution + "}"}}),
        "test.yaml");
    EXPECT_TRUE(c.ok()) << c.status();
    if (!c.ok()) std::abort();
    return std::make_shared<const cybersyn::Config>(std::move(*c));
  }
  std::string Agg(const std::string& indicator, int window, double value) {
    v1::WindowAggregate a;
    a.mutable_series()->set_node(kSpinning);
    a.mutable_series()->set_indicator(indicator);
    a.mutable_series()->set_window_ms(60000);
    a.set_window_start_ms(kT0 + window * 60000);
    a.set_window_end_ms(kT0 + (window + 1) * 60000);
    a.set_value(value);
    a.set_count(1);
    a.set_derived(indicator == "productivity");
    return a.SerializeAsString();
  }
  // Windows [0, to) of spinning as the aggregator sends them (output, capacity, then the
  // productivity output / capacity): output ~100 steps down to `output_after` at window 40;
  // from there the index is also multiplied by `index_extra` (1: as derived).
  void Pipe(int to, double output_after, double index_extra = 1) {
    std::mt19937 rng(7);
    std::normal_distribution<double> noise(0, 1);
    for (int i = 0; i < to; ++i) {
      const double output = (i < 40 ? 100 : output_after) + noise(rng);
      const double capacity = 125 + noise(rng);
      driver_.Pipe(names_.aggregates, kSpinning, Agg("output", i, output));
      driver_.Pipe(names_.aggregates, kSpinning, Agg("capacity", i, capacity));
      driver_.Pipe(names_.aggregates, kSpinning,
                   Agg("productivity", i, output / capacity * (i < 40 ? 1 : index_extra)));
    }
  }
  std::vector<v1::SignalEvent> Events(v1::TransitionKind kind) {
    return EventsOf(driver_, names_.signals, kind);
  }

  std::vector<std::string> RaisedIndicators() {
    std::vector<std::string> out;
    for (const auto& e : Events(v1::TRANSITION_KIND_RAISED)) {
      out.push_back(e.signal().series().indicator());
    }
    return out;
  }
  std::shared_ptr<const cybersyn::Config> config_;
  TopicNames names_;
  prometheus::Registry registry_;
  AlerterMetrics metrics_{registry_};
  TopologyTestDriver driver_;
};

// A unit's output falls by 15 %: its productivity falls with it, and raises nothing; the output
// signal lists it. After the output signal resolves (the detectors absorbed the new level) no
// late signal follows.
TEST_F(AlerterAttributionTest, IndexThatItsBasesExplainRaisesNothingAndIsListed) {
  ASSERT_TRUE(driver_.Start().ok());
  Pipe(140, 85);
  ASSERT_TRUE(driver_.Process().ok());
  const auto raised = Events(v1::TRANSITION_KIND_RAISED);
  ASSERT_THAT(raised, SizeIs(1)) << raised.back().DebugString();
  EXPECT_EQ(raised[0].signal().series().indicator(), "output");
  const auto also = Events(v1::TRANSITION_KIND_ALSO_VISIBLE);
  ASSERT_THAT(also, SizeIs(1)) << "once per series, however many windows it is explained in";
  EXPECT_EQ(also[0].signal().id(), raised[0].signal().id());
  ASSERT_THAT(also[0].signal().also_visible_at(), SizeIs(1));
  EXPECT_EQ(also[0].signal().also_visible_at(0).series().indicator(), "productivity");
  EXPECT_EQ(also[0].signal().also_visible_at(0).series().node(), kSpinning);
  EXPECT_GE(also[0].signal().also_visible_at(0).window_start_ms(), kT0 + 40 * 60000);
  EXPECT_THAT(also[0].transition().reason(), HasSubstr("also visible at"));
  EXPECT_GE(driver_.counter("attributed"), 1u);
  EXPECT_THAT(Events(v1::TRANSITION_KIND_RESOLVED), SizeIs(1)) << "hysteresis ended it";
}

// The index moves twice as far as its bases explain: its own signal.
TEST_F(AlerterAttributionTest, IndexMovingBeyondWhatItsBasesExplainRaisesItsOwn) {
  ASSERT_TRUE(driver_.Start().ok());
  Pipe(46, 90, 0.5);
  ASSERT_TRUE(driver_.Process().ok());
  EXPECT_THAT(RaisedIndicators(), ::testing::UnorderedElementsAre("output", "productivity"));
  EXPECT_THAT(Events(v1::TRANSITION_KIND_ALSO_VISIBLE), IsEmpty());
}

// `attribution: off` on output (config): its signal explains nothing, so the productivity it
// moves raises its own signal, as before attribution.
class AlerterAttributionOffTest : public AlerterAttributionTest {
 protected:
  AlerterAttributionOffTest() : AlerterAttributionTest("off") {}
};

TEST_F(AlerterAttributionOffTest, IndexOfABaseWithAttributionOffRaisesItsOwn) {
  ASSERT_TRUE(driver_.Start().ok());
  Pipe(140, 85);
  ASSERT_TRUE(driver_.Process().ok());
  EXPECT_THAT(RaisedIndicators(), ::testing::UnorderedElementsAre("output", "productivity"));
  EXPECT_THAT(Events(v1::TRANSITION_KIND_ALSO_VISIBLE), IsEmpty());
  EXPECT_EQ(driver_.counter("attributed"), 0u);
}

// Rule 1 across nodes (docs/attribution.md): the textiles tree (textiles > yarur > spinning,
// weaving; textiles > sumar > spinning) on 4 partitions, every node's output as the aggregator
// sends it (sums of the units), each window for every node before the next window.
class AlerterHierarchyTest : public ::testing::Test {
 protected:
  static constexpr char kYarur[] = "textiles/yarur";
  static constexpr char kSumarEnt[] = "textiles/sumar";
  static constexpr char kRoot[] = "textiles";

  AlerterHierarchyTest()
      : config_(TestConfig()), names_("alr"), driver_([this](Clock* clock) {
          AlerterTopologyOptions o{config_, "alr", &metrics_, clock, nullptr};
          o.partitions = [] { return 4; };
          return AlerterTopology(o);
        }) {}

  // Windows [from, to): units around 100 (seeded noise), plus `unit_step` at `step_unit` and
  // `own_step` at the parent yarur's own records from window `step_at` on.
  void Pipe(int from, int to, int step_at, const std::string& step_unit, double unit_step,
            double own_step = 0) {
    std::mt19937 rng(11);
    std::normal_distribution<double> noise(0, 1);
    for (int i = 0; i < to; ++i) {
      std::map<std::string, double> v;
      for (const char* u : {kSpinning, kWeaving, kSumar}) {
        v[u] = 100 + noise(rng) + (i >= step_at && u == step_unit ? unit_step : 0);
      }
      v[kYarur] = v[kSpinning] + v[kWeaving] + (i >= step_at ? own_step : 0);
      v[kSumarEnt] = v[kSumar];
      v[kRoot] = v[kYarur] + v[kSumarEnt];
      if (i < from) continue;
      for (const auto& [node, value] : v) {
        driver_.Pipe(names_.aggregates, node, Aggregate(node, i, value));
      }
    }
  }
  std::vector<v1::SignalEvent> Events(v1::TransitionKind kind) {
    return EventsOf(driver_, names_.signals, kind);
  }
  std::vector<std::string> RaisedAt() {
    std::vector<std::string> nodes;
    for (const auto& e : Events(v1::TRANSITION_KIND_RAISED)) {
      nodes.push_back(e.signal().origin_node());
    }
    return nodes;
  }
  // The nodes the signals list as "also visible at", in the last transition of each.
  std::vector<std::string> AlsoVisibleNodes() {
    std::vector<std::string> nodes;
    for (const auto& e : Events(v1::TRANSITION_KIND_ALSO_VISIBLE)) {
      nodes.push_back(e.signal().also_visible_at().rbegin()->series().node());
    }
    return nodes;
  }

  // Windows [from, to) of the units (which stop after window 37) and of yarur, whose own
  // output falls by 40 from window 40: a view that never covers yarur's detection.
  void PipeUnitsStoppingAt38(int to, int from = 0) {
    std::mt19937 rng(3);
    std::normal_distribution<double> noise(0, 1);
    for (int i = 0; i < to; ++i) {
      for (const char* u : {kSpinning, kWeaving, kSumar}) {
        if (i >= 38) continue;
        const double v = 100 + noise(rng);
        if (i >= from) driver_.Pipe(names_.aggregates, u, Aggregate(u, i, v));
      }
      const double y = 200 + noise(rng) + (i >= 40 ? -40 : 0);
      if (i >= from) driver_.Pipe(names_.aggregates, kYarur, Aggregate(kYarur, i, y));
    }
  }

  std::shared_ptr<const Config> config_;
  TopicNames names_;
  prometheus::Registry registry_;
  AlerterMetrics metrics_{registry_};
  TopologyTestDriver driver_;
};

// One unit steps: one signal, at the unit; the roll-ups that moved with it (its enterprise and
// the sector, on other partitions) raise nothing and are listed on it. Without attribution
// across nodes, the same input raises at all three.
TEST_F(AlerterHierarchyTest, UnitStepRaisesOneSignalListingTheAncestors) {
  ASSERT_TRUE(driver_.Start().ok());
  Pipe(0, 43, 40, kSpinning, -40);
  ASSERT_TRUE(driver_.Process().ok());
  EXPECT_THAT(RaisedAt(), ElementsAre(kSpinning));
  EXPECT_EQ(driver_.counter("attributed"), 2u);
  // Still one after a kill -9 and more windows: the decisions and the waiting detections were
  // committed with the state.
  driver_.Crash();
  ASSERT_TRUE(driver_.Start().ok());
  Pipe(43, 46, 40, kSpinning, -40);
  ASSERT_TRUE(driver_.Process().ok());
  EXPECT_THAT(RaisedAt(), ElementsAre(kSpinning));
  EXPECT_THAT(AlsoVisibleNodes(), ::testing::UnorderedElementsAre(kYarur, kRoot));
  EXPECT_EQ(metrics_.attributed_to_descendants.Value(), 2);
  EXPECT_EQ(metrics_.attributed_to_bases.Value(), 0);
}

// The issue's test: the explaining signal is resolved by an operator. The roll-ups' detectors
// took the windows it explained, so they carry on from the new level: no ancestor signal
// afterwards, however many windows follow at that level.
TEST_F(AlerterHierarchyTest, ExplainingSignalResolvedByAnOperatorLeavesNoAncestorSignal) {
  ASSERT_TRUE(driver_.Start().ok());
  Pipe(0, 43, 40, kSpinning, -40);
  ASSERT_TRUE(driver_.Process().ok());
  const auto raised = Events(v1::TRANSITION_KIND_RAISED);
  ASSERT_THAT(raised, SizeIs(1));
  ASSERT_EQ(raised[0].signal().origin_node(), kSpinning);
  v1::Command c;
  c.set_id("cmd-resolve");
  c.set_kind(v1::COMMAND_KIND_RESOLVE);
  c.set_signal_id(raised[0].signal().id());
  c.set_operator_id("ana");
  c.set_reason("fixed the spindle drive");
  driver_.Pipe(names_.commands, kSpinning, c.SerializeAsString());
  ASSERT_TRUE(driver_.Process().ok());
  ASSERT_THAT(Events(v1::TRANSITION_KIND_RESOLVED), SizeIs(1));
  Pipe(43, 70, 40, kSpinning, -40);
  ASSERT_TRUE(driver_.Process().ok());
  ASSERT_TRUE(driver_.Advance(absl::Seconds(600)).ok());
  EXPECT_THAT(RaisedAt(), ElementsAre(kSpinning));
  EXPECT_EQ(metrics_.attribution_timeouts.Value(), 0);
}

TEST_F(AlerterHierarchyTest, WithoutTheSharedViewEveryLevelRaises) {
  TopologyTestDriver plain([this](Clock* clock) {
    return AlerterTopology({config_, "alr", &metrics_, clock, nullptr});
  });
  ASSERT_TRUE(plain.Start().ok());
  std::mt19937 rng(11);
  std::normal_distribution<double> noise(0, 1);
  for (int i = 0; i < 43; ++i) {
    const double s = 100 + noise(rng) + (i >= 40 ? -40 : 0), w = 100 + noise(rng),
                 m = 100 + noise(rng);
    for (const auto& [node, value] : std::map<std::string, double>{{kSpinning, s},
                                                                   {kWeaving, w},
                                                                   {kSumar, m},
                                                                   {kYarur, s + w},
                                                                   {kSumarEnt, m},
                                                                   {kRoot, s + w + m}}) {
      plain.Pipe(names_.aggregates, node, Aggregate(node, i, value));
    }
  }
  ASSERT_TRUE(plain.Process().ok());
  std::vector<std::string> nodes;
  for (const auto& e : EventsOf(plain, names_.signals, v1::TRANSITION_KIND_RAISED)) {
    nodes.push_back(e.signal().origin_node());
  }
  EXPECT_THAT(nodes, ::testing::UnorderedElementsAre(kSpinning, kYarur, kRoot));
}

// `attribution: off` on output (config): every level raises on its own view, as before.
TEST_F(AlerterHierarchyTest, AttributionOffOnTheIndicatorRaisesAtEveryLevel) {
  auto c = LoadConfigString(
      absl::StrReplaceAll(
          cybersyn::testing::TextilesConfigYaml("127.0.0.1:9", "alr",
                                                "alerter: {warmup: 5, auto_resolve_after: 3}\n"),
          {{"role: actuality}", "role: actuality, attribution: off}"}}),
      "test.yaml");
  ASSERT_TRUE(c.ok()) << c.status();
  config_ = std::make_shared<const Config>(std::move(*c));
  ASSERT_TRUE(driver_.Start().ok());
  Pipe(0, 43, 40, kSpinning, -40);
  ASSERT_TRUE(driver_.Process().ok());
  EXPECT_THAT(RaisedAt(), ::testing::UnorderedElementsAre(kSpinning, kYarur, kRoot));
  EXPECT_THAT(AlsoVisibleNodes(), IsEmpty());
}

// The roll-ups arrive before their units (as across instances, where the units' partition may
// be read later): the units' tasks, which had no series yet, held the roll-ups' decisions back
// until the units came; they had claimed "no series" and the roll-ups raised.
TEST_F(AlerterHierarchyTest, RollUpsBeforeTheirUnitsWaitForThem) {
  ASSERT_TRUE(driver_.Start().ok());
  std::mt19937 rng(11);
  std::normal_distribution<double> noise(0, 1);
  std::vector<std::map<std::string, double>> windows;
  for (int i = 0; i < 43; ++i) {
    std::map<std::string, double>& v = windows.emplace_back();
    for (const char* u : {kSpinning, kWeaving, kSumar}) {
      v[u] = 100 + noise(rng) + (i >= 40 && u == std::string(kSpinning) ? -40 : 0);
    }
    v[kYarur] = v[kSpinning] + v[kWeaving];
    v[kSumarEnt] = v[kSumar];
    v[kRoot] = v[kYarur] + v[kSumarEnt];
  }
  const std::set<std::string> units = {kSpinning, kWeaving, kSumar};
  for (bool unit_pass : {false, true}) {
    for (int i = 0; i < 43; ++i) {
      for (const auto& [node, value] : windows[i]) {
        if (units.contains(node) == unit_pass) {
          driver_.Pipe(names_.aggregates, node, Aggregate(node, i, value));
        }
      }
    }
    ASSERT_TRUE(driver_.Process().ok());
    if (!unit_pass) {
      EXPECT_THAT(RaisedAt(), IsEmpty()) << "decided before the units came";
    }
  }
  EXPECT_THAT(RaisedAt(), ElementsAre(kSpinning));
  EXPECT_THAT(AlsoVisibleNodes(), ::testing::UnorderedElementsAre(kYarur, kRoot));
}

// A step in the parent's own records (its units quiet): its own signal, explained by nothing.
TEST_F(AlerterHierarchyTest, ParentsOwnStepRaisesAtTheParent) {
  ASSERT_TRUE(driver_.Start().ok());
  Pipe(0, 43, 40, "", 0, -40);
  ASSERT_TRUE(driver_.Process().ok());
  EXPECT_THAT(RaisedAt(), ElementsAre(kYarur));
  EXPECT_THAT(AlsoVisibleNodes(), ElementsAre(kRoot))
      << "the sector's move is the enterprise's signal's: listed there, not raised";
}

// The wait rule's other way: a view that never covers the window (the units stopped at window
// 38). Yarur's step is detected at window 41; its own input up to window 42 is not
// attribution_wait (2) windows past the coverage point (41 + 1 + lag 1 = 43): however long the
// clock runs, short of the stalled bound, nothing is decided (a stalled pipeline does not time
// out); two more windows of its own input, with the wait's time passed (kept across a kill -9
// with the waiting detection), decide it.
TEST_F(AlerterHierarchyTest, UncoveredWindowIsDecidedAfterItsOwnInputMovesOnAndTheWait) {
  ASSERT_TRUE(driver_.Start().ok());
  PipeUnitsStoppingAt38(43);
  ASSERT_TRUE(driver_.Process().ok());
  EXPECT_THAT(RaisedAt(), IsEmpty()) << "waiting for the view";
  driver_.Crash();
  ASSERT_TRUE(driver_.Start().ok());
  ASSERT_TRUE(driver_.Advance(absl::Seconds(600)).ok());
  EXPECT_THAT(RaisedAt(), IsEmpty()) << "its own input has not moved on: no timeout by the clock";
  EXPECT_EQ(metrics_.attribution_timeouts.Value(), 0);
  PipeUnitsStoppingAt38(44, 43);
  ASSERT_TRUE(driver_.Process().ok());
  ASSERT_TRUE(driver_.Advance(absl::Seconds(1)).ok());
  EXPECT_THAT(RaisedAt(), IsEmpty());
  PipeUnitsStoppingAt38(45, 44);
  ASSERT_TRUE(driver_.Process().ok());
  ASSERT_TRUE(driver_.Advance(absl::Seconds(1)).ok());
  EXPECT_THAT(RaisedAt(), ElementsAre(kYarur));
  EXPECT_EQ(metrics_.attribution_timeouts.Value(), 1);
}

// The input moves on at once (a replay): the wait's time still has to pass.
TEST_F(AlerterHierarchyTest, UncoveredWindowInAReplayWaitsTheWaitsTime) {
  ASSERT_TRUE(driver_.Start().ok());
  PipeUnitsStoppingAt38(46);
  ASSERT_TRUE(driver_.Process().ok());
  ASSERT_TRUE(driver_.Advance(absl::Seconds(119)).ok());
  EXPECT_THAT(RaisedAt(), IsEmpty());
  ASSERT_TRUE(driver_.Advance(absl::Seconds(1)).ok());
  EXPECT_THAT(RaisedAt(), ElementsAre(kYarur));
}

// No input at all (the end of the data): decided after kStalledWaits times the wait.
TEST_F(AlerterHierarchyTest, UncoveredWindowWithNoMoreInputIsDecidedAfterTheStalledBound) {
  ASSERT_TRUE(driver_.Start().ok());
  PipeUnitsStoppingAt38(43);
  ASSERT_TRUE(driver_.Process().ok());
  ASSERT_TRUE(driver_.Advance(absl::Seconds(kStalledWaits * 120 - 1)).ok());
  EXPECT_THAT(RaisedAt(), IsEmpty());
  ASSERT_TRUE(driver_.Advance(absl::Seconds(1)).ok());
  EXPECT_THAT(RaisedAt(), ElementsAre(kYarur));
}

}  // namespace
}  // namespace cybersyn::alerter
