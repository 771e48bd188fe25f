#include "alerter/detectors/cyberstride.h"

#include <cmath>
#include <cstdio>
#include <limits>
#include <set>

#include "alerter/detectors/internal/synthetic.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace cybersyn::alerter {
namespace {

using internal::Fault;
using ::testing::HasSubstr;

std::unique_ptr<Detector> Make(DetectorParams params = {}) {
  auto det = MakeDetector("cyberstride", params);
  EXPECT_TRUE(det.ok()) << det.status();
  return std::move(det).value();
}

TEST(Cyberstride, StepIsConfirmedAsStepOneObservationLater) {
  int steps = 0;
  for (uint64_t seed = 1; seed <= 10; ++seed) {
    auto det = Make();
    internal::SyntheticSpec spec{Fault::kStep, 300, 200, 6.0, 0.01, 5.0, 0.0, seed};
    auto v = internal::RunSeries(*det, internal::Generate(spec));
    const int64_t at = internal::FirstSignal(v, 200, 203);
    ASSERT_GE(at, 0) << "seed " << seed;
    steps += v[at].kind == SignalKind::kStep;
    EXPECT_EQ(v[at].direction, Direction::kUp);
    // A persistent shift signals once: no further signal in its direction (an unrelated noise
    // excursion the other way, e.g. seed 6 at t = 264, is a separate event).
    int up = 0;
    for (size_t t = 200; t < v.size(); ++t) up += v[t].signal && v[t].direction == Direction::kUp;
    EXPECT_EQ(up, 1) << "a persistent shift signals once; seed " << seed;
  }
  EXPECT_GE(steps, 9);
}

TEST(Cyberstride, TransientIsClassifiedAsTransientAfterConfirmation) {
  // A 7σ outlier on noise (the value itself departs by 7σ plus the noise, so a little less at
  // times): signalled one observation later, as a transient, nearly always.
  int detected = 0, transients = 0;
  for (uint64_t seed = 1; seed <= 10; ++seed) {
    auto det = Make();
    internal::SyntheticSpec spec{Fault::kTransient, 300, 200, -7.0, 1e4, 1e6, 0.0, seed};
    auto v = internal::RunSeries(*det, internal::Generate(spec));
    EXPECT_FALSE(v[200].signal) << "waits one observation to tell it from a step";
    if (!v[201].signal) continue;
    ++detected;
    transients += v[201].kind == SignalKind::kTransient;
    EXPECT_EQ(v[201].direction, Direction::kDown);
    EXPECT_GT(v[200].probs.transient + v[200].probs.step, v[200].probs.steady);
  }
  EXPECT_GE(detected, 8);
  EXPECT_EQ(transients, detected);
}

TEST(Cyberstride, ConfirmZeroSignalsAtOnce) {
  auto det = Make({{"confirm", 0}});
  internal::SyntheticSpec spec{Fault::kTransient, 300, 200, 8.0, 1.0, 0.0, 0.0, 3};
  auto v = internal::RunSeries(*det, internal::Generate(spec));
  EXPECT_TRUE(v[200].signal);
}

TEST(Cyberstride, NoSignalDuringWarmup) {
  auto det = Make({{"warmup", 50}});
  internal::SyntheticSpec spec{Fault::kStep, 100, 20, 20.0, 1.0, 0.0, 0.0, 3};
  auto v = internal::RunSeries(*det, internal::Generate(spec));
  EXPECT_EQ(internal::CountSignals(v, 0, 50), 0);
}

TEST(Cyberstride, ForecastIntervalCoversAboutNinetyFivePercent) {
  auto det = Make();
  internal::SyntheticSpec spec{Fault::kNone, 20000, 20000, 0, 3e-4, 2e-3, 0.0, 5};
  const auto values = internal::Generate(spec);
  auto v = internal::RunSeries(*det, values);
  int inside = 0, n = 0;
  for (size_t t = 100; t < v.size(); ++t) {
    ++n;
    inside += values[t] >= v[t].lower && values[t] <= v[t].upper;
  }
  EXPECT_NEAR(double(inside) / n, 0.95, 0.03);
}

TEST(Cyberstride, MissingObservationWidensTheInterval) {
  auto det = Make();
  internal::SyntheticSpec spec{Fault::kNone, 200, 200, 0, 1.0, 0.0, 0.0, 5};
  for (double y : internal::Generate(spec)) det->Update({0, y});
  const Verdict a = det->Update({0, 0, true});
  const Verdict b = det->Update({0, 0, true});
  const Verdict c = det->Update({0, 0.0});
  EXPECT_FALSE(a.signal);
  EXPECT_GT(b.upper - b.lower, a.upper - a.lower);
  EXPECT_GT(c.upper - c.lower, b.upper - b.lower);
}

TEST(Cyberstride, HeldValuesAreSkipped) {
  // Sample-and-hold: each measurement repeated 5 times. Skipping repeats must not raise more
  // signals than the distinct values alone, and far fewer than not skipping.
  internal::SyntheticSpec spec{Fault::kNone, 20000, 20000, 0, 2.0, 10.0, 0.0, 9};
  const auto values = internal::Generate(spec);
  auto held = Make();
  auto distinct = Make();
  auto naive = Make({{"skip_repeats", 0}});
  int held_signals = 0, distinct_signals = 0, naive_signals = 0;
  for (size_t t = 0; t < values.size(); ++t) {
    held_signals += held->Update({0, values[t / 5 * 5]}).signal;
    naive_signals += naive->Update({0, values[t / 5 * 5]}).signal;
    if (t % 5 == 0) distinct_signals += distinct->Update({0, values[t]}).signal;
  }
  EXPECT_EQ(held_signals, distinct_signals);
  EXPECT_LT(held_signals, naive_signals);
}

TEST(Cyberstride, ScoreIsCalibratedOnMessyAndCleanSeries) {
  // Heavy-tailed noise with frequent jumps, and clean noise: on both, a score of 0.5 is as rare
  // as the budget says (1 a week at one value a minute: 1 in 10,080), and below it the scores
  // are graded rather than stuck at 0.
  internal::SyntheticSpec spec{Fault::kNone, 50000, 50000, 0, 1.0, 0.0, 0.0, 13};
  auto clean = internal::Generate(spec);
  auto messy = clean;
  for (size_t t = 0; t < messy.size(); ++t) {
    if (t % 7 == 0) messy[t] += (t % 2 ? 1 : -1) * 4.0 * (1 + t % 5);
  }
  for (const auto* values : {&clean, &messy}) {
    auto det = Make();
    auto v = internal::RunSeries(*det, *values);
    int above = 0;
    double max_below = 0;
    for (size_t t = 1000; t < v.size(); ++t) {
      above += v[t].score >= 0.5;
      if (v[t].score < 0.5) max_below = std::max(max_below, v[t].score);
    }
    EXPECT_LE(above, 3 * 49000 / 10080) << (values == &clean ? "clean" : "messy");
    EXPECT_GT(max_below, 0.1) << (values == &clean ? "clean" : "messy");
  }
}

TEST(Cyberstride, NonFiniteStateIsResetAndReported) {
  auto det = Make();
  for (int t = 0; t < 50; ++t) det->Update({t, std::sin(t)});
  bool reset = false;
  for (double y : {1e300, -1e300, 1e300, 3e300, -2e300}) {
    const Verdict v = det->Update({0, y});
    reset = reset || v.reset;
    EXPECT_TRUE(std::isfinite(v.score));
  }
  EXPECT_TRUE(reset);
  // It recovers: a calm series afterwards is calm.
  int signals = 0;
  for (int t = 0; t < 500; ++t) signals += det->Update({t, 5 + std::sin(t)}).signal;
  EXPECT_LE(signals, 1);
}

TEST(Cyberstride, SlowDriftIsCaughtByTheCumulativeMonitor) {
  // 0.08 s.d. per observation: often too slow for the 3-value window, whose reference follows
  // part of it; the monitor accumulates the evidence (20/20 against 9/20 without it).
  int with_monitor = 0, without = 0;
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    internal::SyntheticSpec spec{Fault::kSlope, 700,  500, seed % 2 ? 0.08 : -0.08,
                                 3.0,           50.0, 0.0, seed + 300};
    const auto values = internal::Generate(spec);
    auto det = Make();
    auto off = Make({{"monitor_h", 0}});
    with_monitor += internal::FirstSignal(internal::RunSeries(*det, values), 500, 560) >= 0;
    without += internal::FirstSignal(internal::RunSeries(*off, values), 500, 560) >= 0;
  }
  std::printf("drift detected within 60: %d/20 with the monitor, %d/20 without\n", with_monitor,
              without);
  EXPECT_GE(with_monitor, 18);
  EXPECT_GT(with_monitor, without + 5);
}

TEST(Cyberstride, SnapshotIsCompact) {
  auto det = Make();
  for (int t = 0; t < 100; ++t) det->Update({t, std::cos(t)});
  EXPECT_LE(det->Serialize().size(), 512u);
}

// A snapshot written before the weekly cycle existed (no `weekly` field) restores with a zero
// weekly cycle and carries on; one with more weekly coefficients than the state holds is
// rejected as corrupt.
TEST(Cyberstride, SnapshotWithoutTheWeeklyCycleRestores) {
  constexpr int64_t kHour = 3600000;
  auto det = Make();
  for (int64_t t = 0; t < 400; ++t) det->Update({t * kHour, std::cos(t * 0.3) + 0.01 * t});
  v1::DetectorState state;
  ASSERT_TRUE(state.ParseFromString(det->Serialize()));
  ASSERT_EQ(state.cyberstride().weekly_size(), 6);
  state.mutable_cyberstride()->clear_weekly();
  auto old = Make();
  ASSERT_TRUE(old->Restore(state.SerializeAsString()).ok());
  const Verdict v = old->Update({400 * kHour, std::cos(400 * 0.3) + 4.0});
  EXPECT_TRUE(std::isfinite(v.forecast));
  v1::DetectorState restored;
  ASSERT_TRUE(restored.ParseFromString(old->Serialize()));
  EXPECT_EQ(restored.cyberstride().weekly_size(), 6);
  for (int i = 0; i < 9; ++i) state.mutable_cyberstride()->add_weekly(0.1f);
  EXPECT_EQ(old->Restore(state.SerializeAsString()).message(),
            "cyberstride snapshot is truncated or corrupt");
}

TEST(Cyberstride, RestoreRejectsOtherDetectorsState) {
  auto ewma = MakeDetector("ewma", {});
  ASSERT_TRUE(ewma.ok());
  auto det = Make();
  EXPECT_THAT(det->Restore((*ewma)->Serialize()).message(), HasSubstr("not a cyberstride"));
}

TEST(Cyberstride, InvalidParamsNameTheParam) {
  auto det = MakeDetector("cyberstride", {{"prior_step", 1.5}});
  ASSERT_FALSE(det.ok());
  EXPECT_THAT(det.status().message(), HasSubstr("'prior_step'"));
  det = MakeDetector("cyberstride", {{"confirm", 2}});
  EXPECT_THAT(det.status().message(), HasSubstr("'confirm'"));
  det = MakeDetector("cyberstride", {{"ar_horizon", 0.5}});
  EXPECT_THAT(det.status().message(), HasSubstr("'ar_horizon'"));
}

}  // namespace
}  // namespace cybersyn::alerter
