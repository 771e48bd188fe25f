#include "alerter/detectors/cusum.h"

#include "alerter/detectors/internal/synthetic.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace cybersyn::alerter {
namespace {

using internal::Fault;

TEST(Cusum, PersistentShiftSignalsOnceWithDirection) {
  auto det = MakeDetector("cusum", {});
  ASSERT_TRUE(det.ok());
  internal::SyntheticSpec spec{Fault::kStep, 600, 300, -4.0, 1e-3, 1.0, 0.0, 5};
  auto v = internal::RunSeries(**det, internal::Generate(spec));
  const int64_t at = internal::FirstSignal(v, 300, 310);
  ASSERT_GE(at, 0);
  EXPECT_EQ(v[at].kind, SignalKind::kStep);
  EXPECT_EQ(v[at].direction, Direction::kDown);
  EXPECT_EQ(internal::CountSignals(v, 300, 600), 1);
}

TEST(Cusum, NoSignalDuringWarmupAndNoForecastBeforeBaseline) {
  auto det = MakeDetector("cusum", {{"warmup", 40}});
  ASSERT_TRUE(det.ok());
  internal::SyntheticSpec spec{Fault::kStep, 100, 35, 10.0, 1.0, 0.0, 0.0, 5};
  auto v = internal::RunSeries(**det, internal::Generate(spec));
  EXPECT_EQ(internal::CountSignals(v, 0, 40), 0);
  EXPECT_TRUE(std::isnan(v[10].forecast));
  EXPECT_FALSE(std::isnan(v[40].forecast));  // the baseline is ready at 40 (the step then
                                             // signals and restarts it)
}

TEST(Cusum, LambdaOutOfRangeIsRejected) {
  auto det = MakeDetector("cusum", {{"h", -1}});
  ASSERT_FALSE(det.ok());
  EXPECT_THAT(det.status().message(), ::testing::HasSubstr("'h'"));
}

}  // namespace
}  // namespace cybersyn::alerter
