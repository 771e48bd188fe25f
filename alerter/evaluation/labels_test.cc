#include "alerter/evaluation/labels.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace cybersyn::alerter::evaluation {
namespace {

using ::testing::HasSubstr;

TEST(Labels, ReadsNabWindowsJson) {
  auto labels = Labels::Parse(R"({
      "realKnownCause/nyc_taxi.csv": [["2014-11-01 19:00:00.000000", "2014-11-02 11:30:00.000000"]],
      "artificialNoAnomaly/art_flatline.csv": []})",
                              "w.json");
  ASSERT_TRUE(labels.ok()) << labels.status();
  EXPECT_EQ(labels->window_count(), 1u);
  const auto m = labels->Find("realKnownCause/nyc_taxi.csv");
  ASSERT_NE(m.windows, nullptr);
  EXPECT_EQ((*m.windows)[0].start_ms, 1414868400000);
  EXPECT_EQ((*m.windows)[0].end_ms, 1414927800000);
  // Listed with no windows: labelled, anomaly-free.
  const auto flat = labels->Find("artificialNoAnomaly/art_flatline.csv");
  ASSERT_NE(flat.key, nullptr);
  EXPECT_TRUE(flat.windows->empty());
}

TEST(Labels, ReadsSeriesStartEndCsv) {
  auto labels = Labels::Parse(
      "series,start,end\r\n"
      "line1/press.csv,2024-03-01T12:00:00Z,2024-03-01T13:00:00Z\n"
      "line1/press.csv,1709300000000,1709300600000\n"
      "\n"
      "line2/oven.csv:zone,a,b,2024-03-02 00:00:00,2024-03-02 01:00:00\n",
      "incidents.csv");
  ASSERT_TRUE(labels.ok()) << labels.status();
  EXPECT_EQ(labels->window_count(), 3u);
  EXPECT_EQ(labels->Find("line1/press.csv").windows->size(), 2u);
  // The series name may hold commas: the timestamps are the last two fields.
  EXPECT_NE(labels->Find("line2/oven.csv:zone,a,b").windows, nullptr);
}

TEST(Labels, MatchesTrailingPathsAndFallsBackFromColumnToFile) {
  auto labels = Labels::Parse(
      "series,start,end\n"
      "realKnownCause/nyc_taxi.csv,1000,2000\n"
      "nyc_taxi.csv,3000,4000\n"
      "plant/line.csv,5000,6000\n"
      "plant/line.csv:temp,7000,8000\n",
      "l.csv");
  ASSERT_TRUE(labels.ok()) << labels.status();
  // The longest matching key wins.
  auto m = labels->Find("/data/nab/realKnownCause/nyc_taxi.csv");
  ASSERT_NE(m.key, nullptr);
  EXPECT_EQ(*m.key, "realKnownCause/nyc_taxi.csv");
  EXPECT_EQ(*labels->Find("other/nyc_taxi.csv").key, "nyc_taxi.csv");
  // Matching is by whole path components.
  EXPECT_EQ(labels->Find("big_nyc_taxi.csv").key, nullptr);
  EXPECT_EQ(*labels->Find("plant/line.csv:temp").key, "plant/line.csv:temp");
  EXPECT_EQ(*labels->Find("plant/line.csv:pressure").key, "plant/line.csv");
  EXPECT_EQ(labels->Find("plant/other.csv").windows, nullptr);
}

TEST(Labels, ErrorsNameTheSourceLineAndField) {
  EXPECT_THAT(Labels::Parse("name,from,to\n", "l.csv").status().message(),
              HasSubstr("l.csv:1: header: want 'series,start,end'"));
  EXPECT_THAT(Labels::Parse("series,start,end\na,1000\n", "l.csv").status().message(),
              HasSubstr("l.csv:2: row: want 'series,start,end'"));
  EXPECT_THAT(Labels::Parse("series,start,end\na,yesterday,1000\n", "l.csv").status().message(),
              HasSubstr("l.csv:2: start: expected YYYY-MM-DD"));
  EXPECT_THAT(Labels::Parse("series,start,end\na,2000,1000\n", "l.csv").status().message(),
              HasSubstr("l.csv:2: end: '1000' is before start '2000'"));
  EXPECT_THAT(
      Labels::Parse("{\"a.csv\": [[\"2014-01-01 00:00:00\"]]}", "w.json").status().message(),
      HasSubstr("w.json: 'a.csv': window 1: want [\"start\", \"end\"]"));
  EXPECT_THAT(Labels::Parse("{\"a.csv\": [[\"2014-01-01 00:00:00\", \"soon\"]]}", "w.json")
                  .status()
                  .message(),
              HasSubstr("w.json: 'a.csv': window 1: end: expected YYYY-MM-DD"));
  EXPECT_THAT(Labels::Parse("{\"a.csv\": [", "w.json").status().message(),
              HasSubstr("w.json: not valid JSON"));
  EXPECT_EQ(Labels::Load("/nonexistent/labels.json").status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace cybersyn::alerter::evaluation
