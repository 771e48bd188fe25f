#include "common/clock.h"

#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace cybersyn {
namespace {

TEST(ManualClockTest, MovesOnlyWhenAdvanced) {
  ManualClock clock(absl::FromUnixMillis(1000));
  EXPECT_EQ(clock.NowMillis(), 1000);
  clock.Advance(absl::Seconds(2));
  EXPECT_EQ(clock.NowMillis(), 3000);
  clock.Set(absl::FromUnixMillis(50));
  EXPECT_EQ(clock.NowMillis(), 50);
}

TEST(RealClockTest, IsNearAbslNow) {
  const absl::Duration skew = Clock::Real()->Now() - absl::Now();
  EXPECT_LT(absl::AbsDuration(skew), absl::Seconds(1));
}

}  // namespace
}  // namespace cybersyn
