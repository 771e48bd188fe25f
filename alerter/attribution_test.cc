#include "alerter/attribution.h"

#include "gtest/gtest.h"

namespace cybersyn::alerter {
namespace {

TEST(AttributionTest, IndexMoveFollowsItsBasesRatios) {
  const BaseMove output_down{.observed = 60, .forecast = 100};
  const BaseMove capacity_down{.observed = 80, .forecast = 100};
  EXPECT_DOUBLE_EQ(ExpectedIndexMove(0.8, &output_down, nullptr), 0.8 * (0.6 - 1));
  EXPECT_DOUBLE_EQ(ExpectedIndexMove(0.8, nullptr, &capacity_down), 0.8 * (1 / 0.8 - 1));
  EXPECT_DOUBLE_EQ(ExpectedIndexMove(0.8, &output_down, &capacity_down), 0.8 * (0.6 / 0.8 - 1));
  EXPECT_DOUBLE_EQ(ExpectedIndexMove(0.8, nullptr, nullptr), 0);
  const BaseMove no_forecast{.observed = 60, .forecast = 0};
  EXPECT_DOUBLE_EQ(ExpectedIndexMove(0.8, &no_forecast, nullptr), 0);
}

TEST(AttributionTest, ExplainedWhenTheRestFallsBackInsideTheInterval) {
  // Productivity forecast 0.8 in [0.75, 0.85], observed 0.48: output fell by 40 %.
  EXPECT_TRUE(Explains(0.48, 0.8, 0.75, 0.85, -0.32));
  EXPECT_TRUE(Explains(0.48, 0.8, 0.75, 0.85, -0.29));  // rest 0.77: inside
  EXPECT_TRUE(Explains(0.48, 0.8, 0.75, 0.85, -0.5));   // more than the deviation: clipped
  EXPECT_FALSE(Explains(0.48, 0.8, 0.75, 0.85, -0.1));  // rest 0.58: the index's own part
  EXPECT_FALSE(Explains(0.48, 0.8, 0.75, 0.85, 0.2));   // the other way
  EXPECT_FALSE(Explains(0.48, 0.8, 0.75, 0.85, 0));
  EXPECT_FALSE(Explains(0.8, 0.8, 0.75, 0.85, -0.3));  // no deviation
  // No interval yet: only the whole deviation.
  EXPECT_TRUE(Explains(0.48, 0.8, 0, 0, -0.32));
  EXPECT_FALSE(Explains(0.48, 0.8, 0, 0, -0.2));
}

}  // namespace
}  // namespace cybersyn::alerter
