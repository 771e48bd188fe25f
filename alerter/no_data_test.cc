#include "alerter/no_data.h"

#include "gtest/gtest.h"

namespace cybersyn::alerter {
namespace {

AggregatorConfig Demo() {  // deploy/examples/demo.yaml
  AggregatorConfig a;
  a.allowed_lateness = absl::Seconds(5);
  a.grace = absl::Seconds(2);
  a.idle_advance = absl::Seconds(5);
  return a;
}

TEST(NoDataTest, ExpectEveryRulesWhenTheWindowIsShort) {
  // 10s windows arrive every 10 s (+ lateness and grace): 30s of silence is real silence.
  EXPECT_EQ(NoDataAfterMs(absl::Seconds(30), 10'000, Demo()), 30'000);
}

TEST(NoDataTest, ALongWindowIsNotSilentBetweenItsWindows) {
  // The demo's burst: 1m output windows with expect_every 30s. A 1m series is silent only when a
  // window is missing: 60 s + 5 s lateness + 2 s grace + 5 s roll-up wait.
  EXPECT_EQ(NoDataAfterMs(absl::Seconds(30), 60'000, Demo()), 72'000);
  EXPECT_EQ(NoDataAfterMs(absl::Minutes(5), 60'000, Demo()), 300'000);
}

}  // namespace
}  // namespace cybersyn::alerter
