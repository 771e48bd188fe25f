#include "alerter/alerter_state.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace cybersyn::alerter {
namespace {

using ::testing::HasSubstr;

v1::AlerterSeriesState Series() {
  v1::AlerterSeriesState s;
  s.set_windows(42);
  s.set_last_window_start_ms(1'700'000'000'000);
  s.set_last_arrival_ms(1'700'000'060'000);
  s.set_no_data_raised_for_ms(-5);  // (negative survives: zig-zag in the older encoding)
  s.set_detector(std::string("\x01\x02\x00\xff", 4));
  return s;
}

OpenSignal Signal(int normal_windows) {
  OpenSignal s;
  s.normal_windows = normal_windows;
  s.signal.set_id("sig-0123456789abcdef");
  s.signal.set_origin_node("cl/textiles/yarur/spinning");
  s.signal.set_score(0.75);
  return s;
}

TEST(AlerterStateTest, SeriesStateRoundTripsInBothEncodings) {
  for (bool old : {false, true}) {
    const v1::AlerterSeriesState want = Series();
    const std::string bytes = old ? EncodeLegacySeriesStateForTest(want) : EncodeSeriesState(want);
    bool legacy = !old;
    auto got = DecodeSeriesState(bytes, &legacy);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(legacy, old);
    EXPECT_EQ(got->SerializeAsString(), want.SerializeAsString());
  }
  EXPECT_EQ(DecodeSeriesState("").status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(DecodeSeriesState("\x01\xff").status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(DecodeSeriesState("\x08\x00").status().message(),  // windows 0: not persisted
              HasSubstr("not an AlerterSeriesState"));
}

// Counters that make the older encoding's first byte look like a tag (8, 10 = 0x0a) still read
// as what they are.
TEST(AlerterStateTest, OpenSignalRoundTripsInBothEncodingsForAnyCounter) {
  for (int n : {0, 2, 7, 8, 10, 127, 300}) {
    for (bool old : {false, true}) {
      SCOPED_TRACE(::testing::Message() << "counter " << n << (old ? " legacy" : ""));
      const OpenSignal want = Signal(n);
      const std::string bytes = old ? EncodeLegacyOpenSignalForTest(want) : EncodeOpenSignal(want);
      bool legacy = !old;
      auto got = DecodeOpenSignal(bytes, &legacy);
      ASSERT_TRUE(got.ok()) << got.status();
      EXPECT_EQ(legacy, old);
      EXPECT_EQ(got->normal_windows, n);
      EXPECT_EQ(got->signal.SerializeAsString(), want.signal.SerializeAsString());
    }
  }
  EXPECT_EQ(DecodeOpenSignal("").status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(DecodeOpenSignal("\xff\xff\xff\xff\xff\xff").status().code(),
            absl::StatusCode::kDataLoss);
  EXPECT_EQ(DecodeOpenSignal(std::string("\x00\x0a\x00", 3)).status().code(),
            absl::StatusCode::kDataLoss);  // a signal without an id
}

TEST(AlerterStateTest, AppliedCommandsReadBothEncodings) {
  bool legacy = true;
  auto at = DecodeAppliedCommand(EncodeAppliedCommand(1'700'000'000'123), &legacy);
  ASSERT_TRUE(at.ok());
  EXPECT_EQ(*at, 1'700'000'000'123);
  EXPECT_FALSE(legacy);
  at = DecodeAppliedCommand("1700000000456", &legacy);  // what the older version wrote
  ASSERT_TRUE(at.ok());
  EXPECT_EQ(*at, 1'700'000'000'456);
  EXPECT_TRUE(legacy);
  EXPECT_FALSE(EncodeAppliedCommand(0).empty()) << "an empty value would be a tombstone";
  EXPECT_EQ(DecodeAppliedCommand("").status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(DecodeAppliedCommand("\xff\xff").status().code(), absl::StatusCode::kDataLoss);
}

}  // namespace
}  // namespace cybersyn::alerter
