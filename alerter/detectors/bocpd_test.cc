#include "alerter/detectors/bocpd.h"

#include "alerter/detectors/internal/synthetic.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace cybersyn::alerter {
namespace {

using internal::Fault;

TEST(Bocpd, LargeStepIsDetectedWithinAFewObservations) {
  int detected = 0;
  for (uint64_t seed = 1; seed <= 10; ++seed) {
    auto det = MakeDetector("bocpd", {});
    ASSERT_TRUE(det.ok());
    internal::SyntheticSpec spec{Fault::kStep, 400, 200, 5.0, 1e5, 3e6, 0.0, seed};
    auto v = internal::RunSeries(**det, internal::Generate(spec));
    detected += internal::FirstSignal(v, 200, 205) >= 0;
  }
  EXPECT_GE(detected, 9);
}

TEST(Bocpd, RunLengthDistributionIsTruncated) {
  auto det = MakeDetector("bocpd", {{"max_run", 50}});
  ASSERT_TRUE(det.ok());
  internal::SyntheticSpec spec{Fault::kNone, 2000, 2000, 0, 1.0, 0.0, 0.0, 3};
  internal::RunSeries(**det, internal::Generate(spec));
  // Gate, baseline (count, mean, sigma, ready) and at most 50 runs of 5 doubles (47 bytes each
  // as protobuf), plus the messages' framing.
  EXPECT_LE((*det)->Serialize().size(), 64 + 50 * 47u);
}

TEST(Bocpd, HazardOutOfRangeIsRejected) {
  auto det = MakeDetector("bocpd", {{"hazard", 1}});
  ASSERT_FALSE(det.ok());
  EXPECT_THAT(det.status().message(), ::testing::HasSubstr("'hazard'"));
}

}  // namespace
}  // namespace cybersyn::alerter
