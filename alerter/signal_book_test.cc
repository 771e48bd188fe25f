#include "alerter/signal_book.h"

#include <limits>

#include "alerter/alerter_state.h"
#include "common/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace cybersyn::alerter {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

constexpr char kUnit[] = "cl/textiles/yarur/spinning";

std::shared_ptr<const Hierarchy> Chile() {
  auto h = Hierarchy::FromPaths({{"nation", absl::Hours(1), absl::Hours(4)},
                                 {"sector", absl::Minutes(30), absl::Hours(2)},
                                 {"enterprise", absl::Minutes(15), absl::Hours(1)},
                                 {"unit", absl::Minutes(5), absl::Minutes(30)}},
                                {kUnit, "cl/textiles/sumar/weaving", "cl/mining/cmc/smelter"});
  EXPECT_TRUE(h.ok()) << h.status();
  return std::make_shared<const Hierarchy>(std::move(*h));
}

Detection Step(const std::string& node = kUnit, int64_t window_start = 1000,
               v1::SignalKind kind = v1::SIGNAL_KIND_STEP) {
  Detection d;
  d.series.set_node(node);
  d.series.set_indicator("output");
  d.series.set_window_ms(60000);
  d.kind = kind;
  d.severity = kind == v1::SIGNAL_KIND_REWARD ? v1::SEVERITY_REWARD : v1::SEVERITY_ALERT;
  d.score = 0.9;
  d.observed = 50;
  d.forecast = 100;
  d.lower = 90;
  d.upper = 110;
  d.window_start_ms = window_start;
  return d;
}

v1::Command Cmd(v1::CommandKind kind, const std::string& id, const std::string& who = "ana") {
  v1::Command c;
  c.set_id("cmd-" + who);
  c.set_kind(kind);
  c.set_signal_id(id);
  c.set_operator_id(who);
  return c;
}

class SignalBookTest : public ::testing::Test {
 protected:
  int64_t now() const { return clock_.NowMillis(); }
  std::vector<v1::SignalEvent> TickAfter(absl::Duration d) {
    clock_.Advance(d);
    return book_.Tick(now());
  }
  ManualClock clock_;
  SignalBook book_{Chile(), SignalBookOptions{.auto_resolve_after = 3}};
};

TEST_F(SignalBookTest, RaiseCarriesDeadlinesOfTheOriginLevel) {
  auto ev = book_.OnDetection(Step(), now());
  ASSERT_THAT(ev, SizeIs(1));
  const v1::Signal& s = ev[0].signal();
  EXPECT_EQ(ev[0].transition().kind(), v1::TRANSITION_KIND_RAISED);
  EXPECT_EQ(ev[0].transition().actor(), "system");
  EXPECT_EQ(ev[0].transition().at_ms(), now());
  EXPECT_EQ(s.state(), v1::SIGNAL_STATE_FIRING);
  EXPECT_EQ(s.origin_node(), kUnit);
  EXPECT_EQ(s.current_node(), kUnit);
  EXPECT_EQ(s.current_level_name(), "unit");
  EXPECT_EQ(s.current_level(), 3u);
  EXPECT_EQ(s.ack_deadline_ms(), now() + 5 * 60000);
  EXPECT_EQ(s.resolve_deadline_ms(), now() + 30 * 60000);
  EXPECT_EQ(s.revision(), 1u);
  EXPECT_THAT(s.history(), SizeIs(1));
  EXPECT_THAT(s.id(), ::testing::StartsWith("sig-"));
  EXPECT_EQ(s.id(), SignalId(s.series(), v1::SIGNAL_KIND_STEP, 1000));
}

TEST_F(SignalBookTest, UnackedSignalClimbsUnitEnterpriseSectorNationAtTheDeadlines) {
  const std::string id = book_.OnDetection(Step(), now())[0].signal().id();
  EXPECT_THAT(TickAfter(absl::Minutes(5) - absl::Milliseconds(1)), IsEmpty());
  struct Step {
    absl::Duration after;
    std::string from, to, level;
  };
  const std::vector<Step> climb = {
      {absl::Milliseconds(1), kUnit, "cl/textiles/yarur", "enterprise"},
      {absl::Minutes(15), "cl/textiles/yarur", "cl/textiles", "sector"},
      {absl::Minutes(30), "cl/textiles", "cl", "nation"}};
  uint64_t revision = 1;
  for (const Step& step : climb) {
    if (step.after > absl::Milliseconds(1)) {
      EXPECT_THAT(TickAfter(step.after - absl::Milliseconds(1)), IsEmpty()) << step.to;
      clock_.Advance(absl::Milliseconds(1));
    } else {
      clock_.Advance(step.after);
    }
    auto ev = book_.Tick(now());
    ASSERT_THAT(ev, SizeIs(1)) << step.to;
    EXPECT_EQ(ev[0].transition().kind(), v1::TRANSITION_KIND_ESCALATED);
    EXPECT_EQ(ev[0].transition().from_node(), step.from);
    EXPECT_EQ(ev[0].transition().to_node(), step.to);
    EXPECT_EQ(ev[0].transition().actor(), "system");
    EXPECT_EQ(ev[0].transition().at_ms(), now());
    EXPECT_EQ(ev[0].signal().state(), v1::SIGNAL_STATE_ESCALATED);
    EXPECT_EQ(ev[0].signal().current_node(), step.to);
    EXPECT_EQ(ev[0].signal().current_level_name(), step.level);
    EXPECT_EQ(ev[0].signal().revision(), ++revision);
    EXPECT_EQ(ev[0].signal().origin_node(), kUnit);
  }
  // The nation's deadline passes: nobody above, no transition, no repeated firing.
  EXPECT_THAT(TickAfter(absl::Hours(5)), IsEmpty());
  EXPECT_THAT(TickAfter(absl::Hours(5)), IsEmpty());
  ASSERT_NE(book_.Find(id), nullptr);
  EXPECT_EQ(book_.Find(id)->signal.current_node(), "cl");
  EXPECT_EQ(book_.NextDeadline(), std::numeric_limits<int64_t>::max());
}

TEST_F(SignalBookTest, NodeOverrideOfDeadlinesIsUsed) {
  auto h = Hierarchy::Build({{"enterprise", absl::Minutes(15), absl::Hours(1)},
                             {"unit", absl::Minutes(5), absl::Minutes(30)}},
                            NodeSpec{"acme",
                                     "",
                                     std::nullopt,
                                     std::nullopt,
                                     {NodeSpec{"kiln", "", absl::Minutes(1), std::nullopt, {}}}});
  ASSERT_TRUE(h.ok()) << h.status();
  SignalBook book(std::make_shared<const Hierarchy>(std::move(*h)), {});
  auto ev = book.OnDetection(Step("acme/kiln"), now());
  EXPECT_EQ(ev[0].signal().ack_deadline_ms(), now() + 60000);
  EXPECT_THAT(book.Tick(now() + 60000), SizeIs(1));
}

TEST_F(SignalBookTest, AckStopsTheAckDeadlineButNotTheResolveDeadline) {
  const std::string id = book_.OnDetection(Step(), now())[0].signal().id();
  clock_.Advance(absl::Minutes(1));
  auto acked = book_.Apply(Cmd(v1::COMMAND_KIND_ACKNOWLEDGE, id), "cl/textiles/yarur", now());
  ASSERT_TRUE(acked.ok()) << acked.status();
  ASSERT_THAT(*acked, SizeIs(1));
  EXPECT_EQ((*acked)[0].transition().kind(), v1::TRANSITION_KIND_ACKNOWLEDGED);
  EXPECT_EQ((*acked)[0].transition().actor(), "ana");
  EXPECT_EQ((*acked)[0].signal().state(), v1::SIGNAL_STATE_ACKNOWLEDGED);
  EXPECT_EQ((*acked)[0].signal().ack_deadline_ms(), 0);
  EXPECT_TRUE((*acked)[0].signal().acknowledged());
  // A second ack is a no-op.
  auto again = book_.Apply(Cmd(v1::COMMAND_KIND_ACKNOWLEDGE, id), "cl", now());
  ASSERT_TRUE(again.ok());
  EXPECT_THAT(*again, IsEmpty());
  // Past the ack deadline: nothing. Past the resolve deadline (30m after raise): escalates.
  EXPECT_THAT(TickAfter(absl::Minutes(10)), IsEmpty());
  EXPECT_THAT(TickAfter(absl::Minutes(19) - absl::Milliseconds(1)), IsEmpty());
  auto ev = TickAfter(absl::Milliseconds(1));
  ASSERT_THAT(ev, SizeIs(1));
  EXPECT_EQ(ev[0].transition().kind(), v1::TRANSITION_KIND_ESCALATED);
  EXPECT_THAT(ev[0].transition().reason(), HasSubstr("not resolved"));
  EXPECT_EQ(ev[0].signal().current_node(), "cl/textiles/yarur");
  EXPECT_FALSE(ev[0].signal().acknowledged());  // the enterprise has not acknowledged it
  EXPECT_EQ(ev[0].signal().ack_deadline_ms(), now() + 15 * 60000);
}

TEST_F(SignalBookTest, ResolveStopsEverything) {
  const std::string id = book_.OnDetection(Step(), now())[0].signal().id();
  auto r = book_.Apply(Cmd(v1::COMMAND_KIND_RESOLVE, id), kUnit, now());
  ASSERT_TRUE(r.ok());
  ASSERT_THAT(*r, SizeIs(1));
  EXPECT_EQ((*r)[0].signal().state(), v1::SIGNAL_STATE_RESOLVED);
  EXPECT_EQ((*r)[0].signal().ack_deadline_ms(), 0);
  EXPECT_EQ((*r)[0].signal().resolve_deadline_ms(), 0);
  EXPECT_EQ(book_.Find(id), nullptr);
  EXPECT_THAT(TickAfter(absl::Hours(24)), IsEmpty());
  EXPECT_THAT(book_.Apply(Cmd(v1::COMMAND_KIND_ACKNOWLEDGE, id), kUnit, now()).status().code(),
              absl::StatusCode::kNotFound);
  EXPECT_THAT(book_.TakeDirty(), ::testing::ElementsAre(id));
}

TEST_F(SignalBookTest, HysteresisResolvesAfterConsecutiveNormalWindows) {
  const Detection d = Step();
  const std::string id = book_.OnDetection(d, now())[0].signal().id();
  EXPECT_THAT(book_.OnWindow(d.series, {}, now()), IsEmpty());
  EXPECT_THAT(book_.OnWindow(d.series, {}, now()), IsEmpty());
  // A flapping window resets the count.
  EXPECT_THAT(book_.OnWindow(d.series, {.detector_anomalous = true}, now()), IsEmpty());
  EXPECT_THAT(book_.OnWindow(d.series, {}, now()), IsEmpty());
  EXPECT_THAT(book_.OnWindow(d.series, {}, now()), IsEmpty());
  auto ev = book_.OnWindow(d.series, {}, now());
  ASSERT_THAT(ev, SizeIs(1));
  EXPECT_EQ(ev[0].transition().kind(), v1::TRANSITION_KIND_RESOLVED);
  EXPECT_EQ(ev[0].transition().actor(), "system");
  EXPECT_EQ(book_.Find(id), nullptr);
}

TEST_F(SignalBookTest, NewLevelResolvesAStepAtOnceButNotATransient) {
  const Detection step = Step(kUnit, 1000);
  const Detection transient = Step(kUnit, 1000, v1::SIGNAL_KIND_TRANSIENT);
  const std::string step_id = book_.OnDetection(step, now())[0].signal().id();
  const std::string transient_id = book_.OnDetection(transient, now())[0].signal().id();
  // The detector re-baselined on the step's level: resolved with that note, no hysteresis.
  auto ev = book_.OnWindow(step.series, {.new_level = true}, now());
  ASSERT_THAT(ev, SizeIs(1));
  EXPECT_EQ(ev[0].signal().id(), step_id);
  EXPECT_EQ(ev[0].transition().kind(), v1::TRANSITION_KIND_RESOLVED);
  EXPECT_EQ(ev[0].transition().actor(), "system");
  EXPECT_EQ(ev[0].transition().reason(), "new level");
  EXPECT_EQ(book_.Find(step_id), nullptr);
  EXPECT_NE(book_.Find(transient_id), nullptr);
}

TEST_F(SignalBookTest, ThresholdHysteresisLooksAtTheLimitNotTheDetector) {
  const Detection d = Step(kUnit, 1000, v1::SIGNAL_KIND_THRESHOLD);
  book_.OnDetection(d, now());
  for (int i = 0; i < 5; ++i) {
    EXPECT_THAT(book_.OnWindow(d.series, {.threshold_breached = true}, now()), IsEmpty());
  }
  for (int i = 0; i < 2; ++i) {
    EXPECT_THAT(book_.OnWindow(d.series, {.detector_anomalous = true}, now()), IsEmpty());
  }
  EXPECT_THAT(book_.OnWindow(d.series, {.detector_anomalous = true}, now()), SizeIs(1));
}

TEST_F(SignalBookTest, OneOpenSignalPerSeriesAndKind) {
  auto first = book_.OnDetection(Step(kUnit, 1000), now());
  clock_.Advance(absl::Minutes(1));
  auto second = book_.OnDetection(Step(kUnit, 61000), now());
  ASSERT_THAT(second, SizeIs(1));
  EXPECT_EQ(second[0].transition().kind(), v1::TRANSITION_KIND_UPDATED);
  EXPECT_EQ(second[0].signal().id(), first[0].signal().id());
  EXPECT_EQ(second[0].signal().revision(), 2u);
  EXPECT_EQ(second[0].signal().window_start_ms(), 61000);
  // An update does not move the deadlines (no new page).
  EXPECT_EQ(second[0].signal().ack_deadline_ms(), first[0].signal().ack_deadline_ms());
  EXPECT_EQ(second[0].signal().raised_at_ms(), first[0].signal().raised_at_ms());
  auto slope = book_.OnDetection(Step(kUnit, 61000, v1::SIGNAL_KIND_SLOPE), now());
  EXPECT_EQ(slope[0].transition().kind(), v1::TRANSITION_KIND_RAISED);
  EXPECT_NE(slope[0].signal().id(), first[0].signal().id());
  EXPECT_THAT(book_.open(), SizeIs(2));
  // After resolution the same (series, kind) raises anew with a new id.
  ASSERT_TRUE(book_.Apply(Cmd(v1::COMMAND_KIND_RESOLVE, first[0].signal().id()), "cl", now()).ok());
  auto third = book_.OnDetection(Step(kUnit, 121000), now());
  EXPECT_EQ(third[0].transition().kind(), v1::TRANSITION_KIND_RAISED);
  EXPECT_NE(third[0].signal().id(), first[0].signal().id());
}

TEST_F(SignalBookTest, RewardsNeverPageOrEscalate) {
  auto ev = book_.OnDetection(Step(kUnit, 1000, v1::SIGNAL_KIND_REWARD), now());
  EXPECT_EQ(ev[0].signal().severity(), v1::SEVERITY_REWARD);
  EXPECT_EQ(ev[0].signal().ack_deadline_ms(), 0);
  EXPECT_EQ(ev[0].signal().resolve_deadline_ms(), 0);
  EXPECT_THAT(TickAfter(absl::Hours(48)), IsEmpty());
}

TEST_F(SignalBookTest, SilenceMutesButNeverStopsEscalation) {
  const std::string id = book_.OnDetection(Step(), now())[0].signal().id();
  v1::Command c = Cmd(v1::COMMAND_KIND_SILENCE, id);
  c.set_silence_for_ms(10 * 60000);
  auto s = book_.Apply(c, kUnit, now());
  ASSERT_TRUE(s.ok());
  EXPECT_EQ((*s)[0].transition().kind(), v1::TRANSITION_KIND_SILENCED);
  EXPECT_EQ((*s)[0].signal().silenced_until_ms(), now() + 10 * 60000);
  // Detection goes on while silenced.
  EXPECT_EQ(book_.OnDetection(Step(kUnit, 2000), now())[0].transition().kind(),
            v1::TRANSITION_KIND_UPDATED);
  auto ev = TickAfter(absl::Minutes(5));
  ASSERT_THAT(ev, SizeIs(1));
  EXPECT_EQ(ev[0].transition().kind(), v1::TRANSITION_KIND_ESCALATED);
  ev = TickAfter(absl::Minutes(5));
  ASSERT_THAT(ev, SizeIs(1));
  EXPECT_EQ(ev[0].transition().kind(), v1::TRANSITION_KIND_UNSILENCED);
  EXPECT_EQ(ev[0].signal().silenced_until_ms(), 0);
  c.set_silence_for_ms(0);
  EXPECT_EQ(book_.Apply(c, kUnit, now()).status().code(), absl::StatusCode::kInvalidArgument);
}

// Found with fuzz/command_fuzz under UBSan: now + INT64_MAX overflowed (and the silence ended at
// the next tick). A huge duration now means "until further notice".
TEST_F(SignalBookTest, HugeSilenceSaturatesInsteadOfOverflowing) {
  const std::string id = book_.OnDetection(Step(), now())[0].signal().id();
  v1::Command c = Cmd(v1::COMMAND_KIND_SILENCE, id);
  c.set_silence_for_ms(std::numeric_limits<int64_t>::max());
  auto s = book_.Apply(c, kUnit, now());
  ASSERT_TRUE(s.ok());
  EXPECT_EQ((*s)[0].signal().silenced_until_ms(), std::numeric_limits<int64_t>::max());
  for (const v1::SignalEvent& e : TickAfter(absl::Hours(1))) {
    EXPECT_NE(e.transition().kind(), v1::TRANSITION_KIND_UNSILENCED);
  }
}

TEST_F(SignalBookTest, CommandsOutsideTheOriginSubtreeAreDenied) {
  const std::string id = book_.OnDetection(Step(), now())[0].signal().id();
  auto denied = book_.Apply(Cmd(v1::COMMAND_KIND_ACKNOWLEDGE, id), "cl/textiles/sumar", now());
  EXPECT_EQ(denied.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(denied.status().message(), HasSubstr("outside cl/textiles/sumar"));
  // Segment-wise: "cl/textiles/yar" is not a prefix of the enterprise "yarur".
  EXPECT_EQ(
      book_.Apply(Cmd(v1::COMMAND_KIND_ACKNOWLEDGE, id), "cl/textiles/yar", now()).status().code(),
      absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(book_.Apply(Cmd(v1::COMMAND_KIND_ACKNOWLEDGE, id), "", now()).status().code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(book_.Apply(Cmd(v1::COMMAND_KIND_ACKNOWLEDGE, id), "cl/textiles", now()).ok());
}

TEST_F(SignalBookTest, DeadlinesThatPassedWhileDownFireAtTheFirstTickAfterRestore) {
  book_.OnDetection(Step(), now());
  std::vector<std::string> persisted;
  for (const auto& [id, s] : book_.open()) persisted.push_back(EncodeOpenSignal(s));
  // "Restart": a fresh book restored from the persisted bytes, 25 minutes later.
  SignalBook restarted(Chile(), {});
  for (const std::string& bytes : persisted) {
    auto s = DecodeOpenSignal(bytes);
    ASSERT_TRUE(s.ok()) << s.status();
    restarted.Restore(*s);
  }
  clock_.Advance(absl::Minutes(25));
  auto ev = restarted.Tick(now());
  // unit ack deadline (5m) passed -> enterprise (deadline now+15m): one climb, at tick time.
  ASSERT_THAT(ev, SizeIs(1));
  EXPECT_EQ(ev[0].transition().to_node(), "cl/textiles/yarur");
  EXPECT_EQ(ev[0].transition().at_ms(), now());
  EXPECT_THAT(restarted.Tick(now()), IsEmpty());  // fired once
}

TEST(SeverityTest, ScoreOrSizeMakesACrisis) {
  EXPECT_EQ(SeverityFor(0.6, 105, 100, 95, 105), v1::SEVERITY_ALERT);
  EXPECT_EQ(SeverityFor(0.995, 105, 100, 95, 105), v1::SEVERITY_CRISIS);
  EXPECT_EQ(SeverityFor(0.6, 116, 100, 95, 105), v1::SEVERITY_CRISIS);
  EXPECT_EQ(SeverityFor(0.6, 116, NAN, NAN, NAN), v1::SEVERITY_ALERT);
}

TEST(SignalIdTest, IsDeterministicAndDistinct) {
  v1::SeriesKey k;
  k.set_node("a/b");
  k.set_indicator("output");
  k.set_window_ms(60000);
  EXPECT_EQ(SignalId(k, v1::SIGNAL_KIND_STEP, 5), SignalId(k, v1::SIGNAL_KIND_STEP, 5));
  EXPECT_NE(SignalId(k, v1::SIGNAL_KIND_STEP, 5), SignalId(k, v1::SIGNAL_KIND_SLOPE, 5));
  EXPECT_NE(SignalId(k, v1::SIGNAL_KIND_STEP, 5), SignalId(k, v1::SIGNAL_KIND_STEP, 6));
}

// Attribution's record: once per series, with its first window, in the changelog's signal.
TEST_F(SignalBookTest, AlsoVisibleListsASeriesOnceWithItsFirstWindow) {
  const std::string id = book_.OnDetection(Step(), now())[0].signal().id();
  (void)book_.TakeDirty();
  v1::SeriesKey index;
  index.set_node(kUnit);
  index.set_indicator("productivity");
  index.set_window_ms(60000);
  auto ev = book_.AlsoVisible(id, index, 61000, now());
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].transition().kind(), v1::TRANSITION_KIND_ALSO_VISIBLE);
  EXPECT_EQ(ev[0].transition().state(), v1::SIGNAL_STATE_FIRING);
  EXPECT_EQ(ev[0].signal().revision(), 2u);
  ASSERT_EQ(ev[0].signal().also_visible_at_size(), 1);
  EXPECT_EQ(ev[0].signal().also_visible_at(0).series().indicator(), "productivity");
  EXPECT_EQ(ev[0].signal().also_visible_at(0).window_start_ms(), 61000);
  EXPECT_THAT(book_.TakeDirty(), ::testing::ElementsAre(id));
  EXPECT_TRUE(book_.AlsoVisible(id, index, 121000, now()).empty()) << "listed already";
  index.set_window_ms(10000);
  EXPECT_EQ(book_.AlsoVisible(id, index, 121000, now()).size(), 1u) << "another series";
  EXPECT_EQ(book_.Find(id)->signal.also_visible_at_size(), 2);
  EXPECT_TRUE(book_.AlsoVisible("sig-unknown", index, 121000, now()).empty());
}

}  // namespace
}  // namespace cybersyn::alerter
