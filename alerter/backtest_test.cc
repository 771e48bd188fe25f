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

DetectorFactory Cyberstride() {
  return [] { return MakeDetector("cyberstride", {}); };
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
  auto stats = RunBacktest(input, "in.csv", Cyberstride(), &out);
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
  const DetectorFactory det = Cyberstride();
  EXPECT_THAT(RunBacktest("time,val\n", "a.csv", det, &out).status().message(),
              HasSubstr("a.csv:1: header"));
  EXPECT_THAT(
      RunBacktest("timestamp,value\n2024-01-01 00:00:00,1\nnot-a-time,2\n", "b.csv", det, &out)
          .status()
          .message(),
      HasSubstr("b.csv:3: timestamp: expected YYYY-MM-DD"));
  EXPECT_THAT(RunBacktest("timestamp,value\n1000,abc\n", "c.csv", det, &out).status().message(),
              HasSubstr("c.csv:2: value: not a finite number: 'abc'"));
  EXPECT_THAT(RunBacktest("timestamp,value\n1000,1,2\n", "d.csv", det, &out).status().message(),
              HasSubstr("d.csv:2: row: want 2 fields like the header, got 3"));
  EXPECT_EQ(RunBacktest("timestamp,value\n1000\n", "e.csv", det, &out).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(RunBacktest, DecreasingOrRepeatedTimestampsNameTheirLines) {
  std::string out;
  const DetectorFactory det = Cyberstride();
  EXPECT_EQ(RunBacktest("timestamp,value\n1000,1\n2000,2\n2000,3\n", "r.csv", det, &out)
                .status()
                .message(),
            "r.csv:4: timestamp: '2000' repeats the timestamp on line 3; rows must be in "
            "strictly increasing time order (local times across a daylight-saving change? "
            "export UTC, or allow it with --allow-unordered)");
  EXPECT_EQ(RunBacktest("timestamp,value\n2024-01-01T00:00:01Z,1\n2024-01-01T00:00:00Z,2\n",
                        "d.csv", det, &out)
                .status()
                .message(),
            "d.csv:3: timestamp: '2024-01-01T00:00:00Z' is before the timestamp on line 2; rows "
            "must be in strictly increasing time order (local times across a daylight-saving "
            "change? export UTC, or allow it with --allow-unordered)");
  EXPECT_TRUE(out.empty());
  // Allowed: taken in file order and counted.
  auto stats = RunBacktest("timestamp,value\n1000,1\n2000,2\n2000,3\n1500,4\n", "r.csv", det, &out,
                           {.allow_unordered = true});
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->rows, 4);
  EXPECT_EQ(stats->unordered, 2);
}

TEST(RunBacktest, EachValueColumnIsASeriesOfItsOwn) {
  std::string input = "timestamp,temp,flow\n";
  for (int i = 0; i < 200; ++i) {
    absl::StrAppend(&input, 1000 * i, ",", i % 3, ",", (i >= 150 ? 500 : 0) + i % 5, "\n");
  }
  std::string out;
  auto stats = RunBacktest(input, "m.csv", Cyberstride(), &out);
  ASSERT_TRUE(stats.ok()) << stats.status();
  std::vector<std::string> lines = absl::StrSplit(out, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 201u);
  EXPECT_EQ(lines[0],
            "timestamp,temp,temp_score,temp_kind,temp_signal,flow,flow_score,flow_kind,"
            "flow_signal");
  int temp_signals = 0, flow_signals = 0;
  for (size_t i = 1; i < lines.size(); ++i) {
    std::vector<std::string> f = absl::StrSplit(lines[i], ',');
    ASSERT_EQ(f.size(), 9u);
    temp_signals += f[4] == "1";
    flow_signals += f[8] == "1";
  }
  EXPECT_EQ(temp_signals, 0);  // the flat column stays quiet: the columns are independent
  EXPECT_GE(flow_signals, 1);
  EXPECT_THAT(RunBacktest("timestamp,a,a\n", "x.csv", Cyberstride(), &out).status().message(),
              HasSubstr("x.csv:1: header: column 'a' appears twice"));
  EXPECT_THAT(
      RunBacktest("timestamp,a,b\n1000,1\n", "y.csv", Cyberstride(), &out).status().message(),
      HasSubstr("y.csv:2: row: want 3 fields like the header, got 2"));
}

TEST(ParseSeriesCsv, OnlyColumnReadsOneColumnAndIgnoresTheRest) {
  auto t = ParseSeriesCsv("timestamp,value,anomaly_score,label\n1000,x,0.25,ok\n2000,y,1,ok\n",
                          "r.csv", {.only_column = "anomaly_score"});
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_THAT(t->columns, ::testing::ElementsAre("anomaly_score"));
  EXPECT_THAT(t->values[0], ::testing::ElementsAre(0.25, 1.0));
  EXPECT_EQ(ParseSeriesCsv("timestamp,value\n", "r.csv", {.only_column = "anomaly_score"})
                .status()
                .code(),
            absl::StatusCode::kNotFound);
}

TEST(ReadInputFile, MissingInputIsNotFound) {
  auto text = ReadInputFile("/nonexistent/x.csv");
  EXPECT_EQ(text.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(text.status().message(), HasSubstr("/nonexistent/x.csv"));
}

TEST(RunBacktest, MillionRowsInAFewSeconds) {
  std::string input = "timestamp,value\n";
  input.reserve(40 << 20);
  for (int64_t i = 0; i < 1000000; ++i) {
    absl::StrAppend(&input, 1700000000000 + i * 60000, ",", (i * 7919) % 1000 * 0.01, "\n");
  }
  std::string out;
  // CPU time, not wall time: the test machines are shared.
  const std::clock_t start = std::clock();
  auto stats = RunBacktest(input, "big.csv", Cyberstride(), &out);
  const double secs = static_cast<double>(std::clock() - start) / CLOCKS_PER_SEC;
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->rows, 1000000);
  EXPECT_LT(secs, 10.0);  // generous for shared CI machines and sanitizer builds
  std::printf("1M rows: %.2f s\n", secs);
}

}  // namespace
}  // namespace cybersyn::alerter
