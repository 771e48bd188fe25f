#include "alerter/grpc_limits.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace cybersyn::alerter {
namespace {

using ::testing::HasSubstr;

TEST(StreamLimiterTest, PerKeyAndTotalLimitsAndRelease) {
  StreamLimiter sl(/*max_total=*/3, /*max_per_key=*/2);
  auto a1 = sl.Acquire("ana");
  auto a2 = sl.Acquire("ana");
  ASSERT_TRUE(a1.ok() && a2.ok());
  auto a3 = sl.Acquire("ana");
  EXPECT_EQ(a3.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(a3.status().message(), HasSubstr("operator ana already has 2 Watch streams"));
  auto b1 = sl.Acquire("bob");
  ASSERT_TRUE(b1.ok());
  auto b2 = sl.Acquire("bob");
  EXPECT_EQ(b2.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(b2.status().message(), HasSubstr("too many Watch streams on this server (limit 3)"));
  EXPECT_EQ(sl.active(), 3);
  a1->reset();  // a closed stream frees its slot
  EXPECT_EQ(sl.active(), 2);
  EXPECT_TRUE(sl.Acquire("ana").ok());  // the temporary lease is released at once
  EXPECT_EQ(sl.active(), 2);
}

}  // namespace
}  // namespace cybersyn::alerter
