#include "common/time_grammar.h"

#include <limits>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace cybersyn {
namespace {

constexpr int64_t kNow = 1'714'564'800'000;  // 2024-05-01T12:00:00Z

int64_t Ms(absl::string_view text) {
  absl::StatusOr<EventTime> t = ParseEventTime(text);
  EXPECT_TRUE(t.ok()) << text << ": " << t.status();
  return t.ok() ? t->ms : -1;
}

std::string Error(absl::string_view text) {
  absl::StatusOr<EventTime> t = ParseEventTime(text);
  EXPECT_FALSE(t.ok()) << text << " parsed as " << (t.ok() ? t->ms : 0);
  EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(t.status().message());
}

TEST(TimeGrammarTest, Rfc3339) {
  EXPECT_EQ(Ms("2024-05-01T12:00:00Z"), kNow);
  EXPECT_EQ(Ms("2024-05-01t12:00:00z"), kNow);
  EXPECT_EQ(Ms("2024-05-01 12:00:00Z"), kNow);
  EXPECT_EQ(Ms("2024-05-01T09:00:00.250-03:00"), kNow + 250);
  EXPECT_EQ(Ms("2024-05-01T12:00:00.1Z"), kNow + 100);
  EXPECT_EQ(Ms("2024-05-01T12:00:00.123999Z"), kNow + 123);  // cut, not rounded
  EXPECT_EQ(Ms("2024-05-01T17:30:00+05:30"), kNow);
  EXPECT_EQ(Ms("2024-02-29T00:00:00Z"), 1'709'164'800'000);
  EXPECT_EQ(Ms("1969-12-31T23:59:59.999Z"), -1);
  EXPECT_EQ(Ms("0001-01-01T00:00:00Z"), -62'135'596'800'000);
  auto t = ParseEventTime("2024-05-01T12:00:00Z");
  EXPECT_EQ(t->form, TimeForm::kRfc3339);
}

TEST(TimeGrammarTest, EpochMilliseconds) {
  EXPECT_EQ(Ms("1714564800000"), kNow);
  EXPECT_EQ(Ms("0"), 0);
  EXPECT_EQ(Ms("-5"), -5);
  EXPECT_EQ(Ms("9223372036854775807"), std::numeric_limits<int64_t>::max());
  EXPECT_EQ(ParseEventTime("1714564800000")->form, TimeForm::kEpochMillis);
  EXPECT_EQ(*EpochMillisFromUnsigned(5), 5);
}

TEST(TimeGrammarTest, OverflowIsAnErrorNotAWrapAround) {
  EXPECT_EQ(Error("18446744073709551615"),
            "18446744073709551615 is out of range for epoch milliseconds (a signed 64-bit "
            "integer)");
  EXPECT_EQ(Error("9223372036854775808"),
            "9223372036854775808 is out of range for epoch milliseconds (a signed 64-bit "
            "integer)");
  EXPECT_EQ(EpochMillisFromUnsigned(uint64_t{1} << 63).status().message(),
            "9223372036854775808 is out of range for epoch milliseconds (a signed 64-bit "
            "integer)");
}

TEST(TimeGrammarTest, StrictRfc3339ErrorsSayWhatIsWrong) {
  const std::string p = "expected RFC 3339 or epoch milliseconds, got ";
  EXPECT_EQ(Error("yesterday"), p + "\"yesterday\"");
  EXPECT_EQ(Error(""), p + "\"\"");
  EXPECT_EQ(Error("2024-05-01T12:00:00+0300"),
            p + "\"2024-05-01T12:00:00+0300\" (the zone offset needs a colon: +03:00)");
  EXPECT_EQ(Error("2024-05-01T12:00:00"), p + "\"2024-05-01T12:00:00\" (add a zone: Z or +hh:mm)");
  EXPECT_EQ(Error("2024-05-01"), p + "\"2024-05-01\" (add the time of day and a zone: T00:00:00Z)");
  EXPECT_EQ(Error("2024-02-30T00:00:00Z"),
            p + "\"2024-02-30T00:00:00Z\" (day 30 is out of range for 2024-02)");
  EXPECT_EQ(Error("2023-02-29T00:00:00Z"),
            p + "\"2023-02-29T00:00:00Z\" (day 29 is out of range for 2023-02)");
  EXPECT_EQ(Error("2024-13-01T00:00:00Z"),
            p + "\"2024-13-01T00:00:00Z\" (month 13 is out of range)");
  EXPECT_EQ(Error("2024-05-01T24:00:00Z"),
            p + "\"2024-05-01T24:00:00Z\" (hour 24 is out of range)");
  EXPECT_EQ(Error("2024-05-01T12:00:60Z"),
            p + "\"2024-05-01T12:00:60Z\" (second 60 is out of range)");
  EXPECT_EQ(Error("2024-05-01T12:00:00.Z"),
            p + "\"2024-05-01T12:00:00.Z\" (a fraction of a second needs digits after the point)");
  EXPECT_EQ(Error("2024-05-01T12:00:00Z junk"),
            p + "\"2024-05-01T12:00:00Z junk\" (unexpected text after the zone)");
  EXPECT_EQ(Error("2024-5-1T12:00:00Z"),
            p + "\"2024-5-1T12:00:00Z\" (a date is written YYYY-MM-DD)");
  EXPECT_EQ(Error("2024-05-01T12:00Z"),
            p + "\"2024-05-01T12:00Z\" (a time of day is written hh:mm:ss)");
  EXPECT_EQ(Error("2024-05-01T12:00:00+3"),
            p + "\"2024-05-01T12:00:00+3\" (a zone offset is written +hh:mm)");
  EXPECT_EQ(Error("1714564800000.5"),
            p + "\"1714564800000.5\" (epoch milliseconds are a whole number)");
  EXPECT_EQ(Error("0x10"), p + "\"0x10\"");
  EXPECT_EQ(Error("+1714564800000"), p + "\"+1714564800000\"");
  // Input is escaped in the message.
  EXPECT_EQ(Error("\x1b[2J"), p + "\"\\x1b[2J\"");
}

TEST(TimeGrammarTest, FormatEventTime) {
  EXPECT_EQ(FormatEventTime(kNow + 250), "2024-05-01T12:00:00.250Z");
  EXPECT_EQ(FormatEventTime(-62'135'596'800'000), "0001-01-01T00:00:00.000Z");
  EXPECT_EQ(FormatEventTime(std::numeric_limits<int64_t>::max()),
            "9223372036854775807 ms since 1970");
}

TEST(TimeGrammarTest, RangeChecks) {
  const TimeBounds b;  // min 2000-01-01, no max_age, max_future 5m
  EXPECT_EQ(CheckEventTime(kNow, TimeForm::kEpochMillis, b, kNow), std::nullopt);
  EXPECT_EQ(CheckEventTime(kDefaultMinEventTimeMs, TimeForm::kRfc3339, b, kNow), std::nullopt);
  EXPECT_EQ(CheckEventTime(kNow + 300'000, TimeForm::kRfc3339, b, kNow), std::nullopt);

  auto p = CheckEventTime(kNow + 3'600'000, TimeForm::kRfc3339, b, kNow);
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->kind, TimeProblem::Kind::kTooFarAhead);
  EXPECT_EQ(p->message,
            "2024-05-01T13:00:00.000Z is 1h ahead of the gateway clock (max_future 5m)");

  p = CheckEventTime(0, TimeForm::kEpochMillis, b, kNow);
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->kind, TimeProblem::Kind::kTooEarly);
  EXPECT_EQ(p->message,
            "0 (1970-01-01T00:00:00.000Z) is before gateway.min_time 2000-01-01T00:00:00.000Z "
            "(a time that early is almost always a unit mistake)");
  EXPECT_EQ(CheckEventTime(-62'135'596'800'000, TimeForm::kRfc3339, b, kNow)->message,
            "0001-01-01T00:00:00.000Z is before gateway.min_time 2000-01-01T00:00:00.000Z (a "
            "time that early is almost always a unit mistake)");
  EXPECT_EQ(
      CheckEventTime(std::numeric_limits<int64_t>::min(), TimeForm::kEpochMillis, b, kNow)->message,
      "-9223372036854775808 (-9223372036854775808 ms since 1970) is before "
      "gateway.min_time 2000-01-01T00:00:00.000Z (a time that early is almost always a unit "
      "mistake)");
}

TEST(TimeGrammarTest, EpochSecondsAndMicrosecondsAreNamed) {
  const TimeBounds b;
  auto p = CheckEventTime(1'714'564'800, TimeForm::kEpochMillis, b, kNow);
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->kind, TimeProblem::Kind::kTooEarly);
  EXPECT_EQ(p->message,
            "1714564800 looks like epoch seconds (2024-05-01T12:00:00.000Z); epoch milliseconds "
            "are expected, e.g. 1714564800000");
  p = CheckEventTime(1'714'564'800'000'000, TimeForm::kEpochMillis, b, kNow);
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->kind, TimeProblem::Kind::kTooFarAhead);
  EXPECT_EQ(p->message,
            "1714564800000000 looks like epoch microseconds (2024-05-01T12:00:00.000Z); epoch "
            "milliseconds are expected, e.g. 1714564800000");
  p = CheckEventTime(1'714'564'800'000'000'000, TimeForm::kEpochMillis, b, kNow);
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->message,
            "1714564800000000000 looks like epoch nanoseconds (2024-05-01T12:00:00.000Z); epoch "
            "milliseconds are expected, e.g. 1714564800000");
  // Written as RFC 3339, a 1970 date is not a unit mistake of that kind.
  EXPECT_THAT(CheckEventTime(1'714'564'800, TimeForm::kRfc3339, b, kNow)->message,
              ::testing::HasSubstr("is before gateway.min_time"));
}

TEST(TimeGrammarTest, MaxAgeAndMinTimeFollowTheBounds) {
  TimeBounds b;
  b.max_age = absl::Hours(24 * 7);
  EXPECT_EQ(CheckEventTime(kNow - 86'400'000, TimeForm::kRfc3339, b, kNow), std::nullopt);
  auto p = CheckEventTime(kNow - 30 * 86'400'000LL, TimeForm::kRfc3339, b, kNow);
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->kind, TimeProblem::Kind::kTooOld);
  EXPECT_EQ(p->message,
            "2024-04-01T12:00:00.000Z is 30d older than the gateway clock (max_age 7d)");
  b = TimeBounds();
  b.min_ms = 0;
  EXPECT_EQ(CheckEventTime(86'400'000, TimeForm::kRfc3339, b, kNow), std::nullopt);
}

}  // namespace
}  // namespace cybersyn
