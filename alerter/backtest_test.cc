#include "alerter/backtest.h"

#include <cstdio>
#include <ctime>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace cybersyn::alerter {
namespace {

using ::testing::HasSubstr;

std::unique_ptr<Detector> Cyberstride() {
  return std::move(MakeDetector("cyberstride", {})).value();
}

TEST(ParseTimestamp, AcceptsTheThreeForms) {
  EXPECT_EQ(*ParseTimestamp("1970-01-01 00:00:00"), 0);
  EXPECT_EQ(*ParseTimestamp("2024-03-01 12:00:00"), 1709294400000);
  EXPECT_EQ(*ParseTimestamp("2024-03-01T12:00:00Z"), 1709294400000);
  EXPECT_EQ(*ParseTimestamp("2024-03-01T14:00:00.250+02:00"), 1709294400250);
  EXPECT_EQ(*ParseTimestamp("1709294400000"), 1709294400000);
}

TEST(ParseTimestamp, ExplainsWhatIsWrong) {
  EXPECT_THAT(ParseTimestamp("yesterday").status().message(), HasSubstr("expected YYYY-MM-DD"));
  EXPECT_THAT(ParseTimestamp("2024-13-01 00:00:00").status().message(), HasSubstr("out of range"));
  EXPECT_THAT(ParseTimestamp("2024-03-01T12:00:00 CET").status().message(), HasSubstr("time zone"));
}

TEST(RunBacktest, OneRowPerInputRowInOrderEchoingTimestamps) {
  std::string input = "timestamp,value\n";
  for (int i = 0; i < 100; ++i) {
    absl::StrAppend(&input, "2024-01-01T00:", i / 10 + 10, ":0", i % 10, "Z,",
                    i == 50 ? "" : absl::StrCat(i >= 80 ? 100 + i % 2 : i % 3), "\r\n");
  }
  std::string out;
  auto det = Cyberstride();
  auto stats = RunBacktest(input, "in.csv", *det, &out);
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->rows, 100);
  EXPECT_EQ(stats->missing, 1);
  EXPECT_GE(stats->signals, 1);
  std::vector<std::string> lines = absl::StrSplit(out, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 101u);
  EXPECT_EQ(lines[0], "timestamp,value,score,kind,signal");
  EXPECT_THAT(lines[1], ::testing::StartsWith("2024-01-01T00:10:00Z,0,"));
  EXPECT_THAT(lines[51], ::testing::StartsWith("2024-01-01T00:15:00Z,,"));
  int signals = 0;
  for (size_t i = 1; i < lines.size(); ++i) {
    std::vector<std::string> f = absl::StrSplit(lines[i], ',');
    ASSERT_EQ(f.size(), 5u) << lines[i];
    signals += f[4] == "1";
  }
  EXPECT_EQ(signals, stats->signals);
}

TEST(RunBacktest, ErrorsNameFileLineAndField) {
  std::string out;
  auto det = Cyberstride();
  EXPECT_THAT(RunBacktest("time,val\n", "a.csv", *det, &out).status().message(),
              HasSubstr("a.csv:1: header"));
  EXPECT_THAT(
      RunBacktest("timestamp,value\n2024-01-01 00:00:00,1\nnot-a-time,2\n", "b.csv", *det, &out)
          .status()
          .message(),
      HasSubstr("b.csv:3: timestamp: expected YYYY-MM-DD"));
  EXPECT_THAT(RunBacktest("timestamp,value\n1000,abc\n", "c.csv", *det, &out).status().message(),
              HasSubstr("c.csv:2: value: not a finite number: 'abc'"));
  EXPECT_THAT(RunBacktest("timestamp,value\n1000,1,2\n", "d.csv", *det, &out).status().message(),
              HasSubstr("d.csv:2: row: more than 2 fields"));
  EXPECT_EQ(RunBacktest("timestamp,value\n1000\n", "e.csv", *det, &out).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(RunBacktestFiles, MissingInputIsNotFound) {
  auto det = Cyberstride();
  auto stats = RunBacktestFiles("/nonexistent/x.csv", "-", *det);
  EXPECT_EQ(stats.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(stats.status().message(), HasSubstr("/nonexistent/x.csv"));
}

TEST(RunBacktest, MillionRowsInAFewSeconds) {
  std::string input = "timestamp,value\n";
  input.reserve(40 << 20);
  for (int64_t i = 0; i < 1000000; ++i) {
    absl::StrAppend(&input, 1700000000000 + i * 60000, ",", (i * 7919) % 1000 * 0.01, "\n");
  }
  std::string out;
  auto det = Cyberstride();
  // CPU time, not wall time: the test machines are shared.
  const std::clock_t start = std::clock();
  auto stats = RunBacktest(input, "big.csv", *det, &out);
  const double secs = static_cast<double>(std::clock() - start) / CLOCKS_PER_SEC;
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->rows, 1000000);
  EXPECT_LT(secs, 10.0);  // generous for shared CI machines and sanitizer builds
  std::printf("1M rows: %.2f s\n", secs);
}

}  // namespace
}  // namespace cybersyn::alerter
