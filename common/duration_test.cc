#include "common/duration.h"

#include <cstdint>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace cybersyn {
namespace {

using ::testing::HasSubstr;

TEST(ParseDurationTest, SingleUnits) {
  EXPECT_EQ(*ParseDuration("500ms"), absl::Milliseconds(500));
  EXPECT_EQ(*ParseDuration("30s"), absl::Seconds(30));
  EXPECT_EQ(*ParseDuration("15m"), absl::Minutes(15));
  EXPECT_EQ(*ParseDuration("4h"), absl::Hours(4));
  EXPECT_EQ(*ParseDuration("1d"), absl::Hours(24));
  EXPECT_EQ(*ParseDuration("0"), absl::ZeroDuration());
  EXPECT_EQ(*ParseDuration("0s"), absl::ZeroDuration());
}

TEST(ParseDurationTest, Compound) {
  EXPECT_EQ(*ParseDuration("1h30m"), absl::Minutes(90));
  EXPECT_EQ(*ParseDuration("2d3h4m5s6ms"),
            absl::Hours(51) + absl::Minutes(4) + absl::Seconds(5) + absl::Milliseconds(6));
  EXPECT_EQ(*ParseDuration("1m500ms"), absl::Milliseconds(60500));
}

TEST(ParseDurationTest, Errors) {
  for (const char* bad : {"", "soon", "15", "m", "1.5h", "-5m", "5 m", "15M", "1m1h", "1m1m",
                          "1h30", "30s ", "1w", "999999999999999999999h"}) {
    absl::StatusOr<absl::Duration> d = ParseDuration(bad);
    EXPECT_EQ(d.status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
  EXPECT_EQ(ParseDuration("soon").status().message(), "expected a duration like 15m, got \"soon\"");
  EXPECT_EQ(ParseDuration("15").status().message(),
            "expected a duration like 15m, got \"15\" (add a unit: ms, s, m, h or d)");
  EXPECT_EQ(ParseDuration("1m1h").status().message(), "expected a duration like 15m, got \"1m1h\"");
}

TEST(DurationToStringTest, RoundTrips) {
  EXPECT_EQ(DurationToString(absl::Minutes(90)), "1h30m");
  EXPECT_EQ(DurationToString(absl::Milliseconds(500)), "500ms");
  EXPECT_EQ(DurationToString(absl::ZeroDuration()), "0s");
  EXPECT_EQ(DurationToString(absl::Hours(48)), "2d");
  EXPECT_EQ(DurationToString(-absl::Seconds(5)), "-5s");
  for (const char* text : {"500ms", "30s", "15m", "4h", "1d", "1h30m", "2d3h4m5s6ms"}) {
    EXPECT_EQ(DurationToString(*ParseDuration(text)), text);
  }
}

TEST(ParseByteSizeTest, Units) {
  EXPECT_EQ(*ParseByteSize("1000"), 1000u);
  EXPECT_EQ(*ParseByteSize("0"), 0u);
  EXPECT_EQ(*ParseByteSize("10B"), 10u);
  EXPECT_EQ(*ParseByteSize("64KB"), 64000u);
  EXPECT_EQ(*ParseByteSize("64KiB"), 65536u);
  EXPECT_EQ(*ParseByteSize("256MiB"), uint64_t{256} << 20);
  EXPECT_EQ(*ParseByteSize("3MB"), 3'000'000u);
  EXPECT_EQ(*ParseByteSize("1GiB"), uint64_t{1} << 30);
  EXPECT_EQ(*ParseByteSize("2GB"), 2'000'000'000u);
  EXPECT_EQ(*ParseByteSize("1TiB"), uint64_t{1} << 40);
  EXPECT_EQ(*ParseByteSize("1TB"), uint64_t{1'000'000'000'000});
}

TEST(ParseByteSizeTest, Errors) {
  for (const char* bad : {"", "lots", "MiB", "1.5GiB", "-1", "1 MiB", "1mib", "1MiBs",
                          "999999999999999999TiB", "9999999999999999999"}) {
    EXPECT_EQ(ParseByteSize(bad).status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
  EXPECT_EQ(ParseByteSize("lots").status().message(),
            "expected a byte size like 256MiB, got \"lots\"");
}

TEST(ByteSizeToStringTest, PicksLargestExactUnit) {
  EXPECT_EQ(ByteSizeToString(uint64_t{256} << 20), "256MiB");
  EXPECT_EQ(ByteSizeToString(uint64_t{1} << 30), "1GiB");
  EXPECT_EQ(ByteSizeToString(64000), "64KB");
  EXPECT_EQ(ByteSizeToString(1001), "1001");
  EXPECT_EQ(ByteSizeToString(0), "0");
  EXPECT_THAT(ByteSizeToString(3'000'000), HasSubstr("MB"));
}

}  // namespace
}  // namespace cybersyn
