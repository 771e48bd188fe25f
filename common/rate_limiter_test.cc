#include "common/rate_limiter.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace cybersyn {
namespace {

using ::testing::HasSubstr;

TEST(RateLimiterTest, BurstThenSustainedRatePerKey) {
  ManualClock clock;
  RateLimiter rl({/*per_second=*/2, /*burst=*/3}, &clock);
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(rl.Acquire("ana", "ana").ok()) << i;
  absl::Status s = rl.Acquire("ana", "operator ana");
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(s.message(), HasSubstr("operator ana: rate limit of 2 per second (burst 3)"));
  EXPECT_THAT(s.message(), HasSubstr("retry in 500 ms"));
  // Another key has its own bucket.
  EXPECT_TRUE(rl.Acquire("bob", "bob").ok());
  // Half a second refills one token, not more.
  clock.Advance(absl::Milliseconds(500));
  EXPECT_TRUE(rl.Acquire("ana", "ana").ok());
  EXPECT_FALSE(rl.Acquire("ana", "ana").ok());
  // A long pause refills up to the burst only.
  clock.Advance(absl::Hours(1));
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(rl.Acquire("ana", "ana").ok()) << i;
  EXPECT_FALSE(rl.Acquire("ana", "ana").ok());
}

TEST(RateLimiterTest, ZeroRateDisablesTheLimit) {
  ManualClock clock;
  RateLimiter rl({0, 1}, &clock);
  for (int i = 0; i < 1000; ++i) ASSERT_TRUE(rl.Acquire("k", "k").ok());
}

TEST(RateLimiterTest, KeyTableIsBounded) {
  ManualClock clock;
  RateLimiter rl({1, 1}, &clock, /*max_keys=*/2);
  EXPECT_TRUE(rl.Acquire("a", "a").ok());
  clock.Advance(absl::Milliseconds(1));
  EXPECT_TRUE(rl.Acquire("b", "b").ok());
  clock.Advance(absl::Milliseconds(1));
  EXPECT_TRUE(rl.Acquire("c", "c").ok());  // evicts "a", the stalest
  // "b" is still tracked and empty.
  EXPECT_FALSE(rl.Acquire("b", "b").ok());
}

}  // namespace
}  // namespace cybersyn
