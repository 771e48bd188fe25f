#include "alerter/detectors/threshold.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace cybersyn::alerter {
namespace {

TEST(Threshold, SignalsOnceAtExcursionWithDirectionAndGradedScore) {
  auto det = MakeDetector("threshold", {{"min", 0}, {"max", 100}});
  ASSERT_TRUE(det.ok());
  std::vector<Verdict> v;
  for (double y : {50.0, 105.0, 150.0, 120.0, 50.0, 50.0, 50.0, 50.0, 50.0, -5.0}) {
    v.push_back((*det)->Update({0, y}));
  }
  EXPECT_TRUE(v[1].signal);
  EXPECT_EQ(KindLabel(v[1].kind, v[1].direction), "threshold_up");
  EXPECT_FALSE(v[2].signal);  // same excursion
  EXPECT_GT(v[2].score, v[1].score);
  EXPECT_LT(v[2].score, 1.0);
  EXPECT_EQ(v[4].score, 0.0);
  EXPECT_TRUE(v[9].signal);  // re-armed after 5 normal values
  EXPECT_EQ(v[9].direction, Direction::kDown);
}

TEST(Threshold, AutoSigmaLearnsLimitsFromWarmup) {
  auto det = MakeDetector("threshold", {{"auto_sigma", 3}, {"warmup", 4}});
  ASSERT_TRUE(det.ok());
  for (double y : {10.0, 11.0, 9.0, 10.0}) EXPECT_FALSE((*det)->Update({0, y}).signal);
  EXPECT_FALSE((*det)->Update({0, 11.0}).signal);
  EXPECT_TRUE((*det)->Update({0, 20.0}).signal);
}

TEST(Threshold, NeedsLimits) {
  EXPECT_THAT(MakeDetector("threshold", {}).status().message(),
              ::testing::HasSubstr("needs 'min', 'max'"));
  EXPECT_THAT(MakeDetector("threshold", {{"min", 5}, {"max", 1}}).status().message(),
              ::testing::HasSubstr("min < max"));
}

}  // namespace
}  // namespace cybersyn::alerter
