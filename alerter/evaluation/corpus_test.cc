#include "alerter/evaluation/corpus.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "alerter/evaluation/evaluate.h"
#include "alerter/evaluation/report.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace cybersyn::alerter::evaluation {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

void Write(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary) << text;
}

std::string Read(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// 300 minutes of a flat series with a jump to 50 at row 200 (in every value column).
std::string Series(const std::string& header, int columns) {
  std::string out = header + "\n";
  for (int i = 0; i < 300; ++i) {
    absl::StrAppend(&out, 1700000000000 + i * 60000);
    for (int c = 0; c < columns; ++c) absl::StrAppend(&out, ",", (i >= 200 ? 50 : 0) + i * 7 % 5);
    out += "\n";
  }
  return out;
}

DetectorFactory Cyberstride() {
  return [] { return MakeDetector("cyberstride", {}); };
}

class CorpusTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) /
           (std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    Write(dir_ / "in/b/line.csv", Series("timestamp,temp,flow", 2));
    Write(dir_ / "in/a.csv", Series("timestamp,value", 1));
    Write(dir_ / "in/notes.txt", "not a series");
  }
  fs::path dir_;
};

TEST_F(CorpusTest, RunsEveryCsvUnderTheDirectoryInAFixedOrder) {
  CorpusOptions o{(dir_ / "in").string(), (dir_ / "out").string(), "", "", 2};
  auto run = RunCorpus(o, Cyberstride());
  ASSERT_TRUE(run.ok()) << run.status();
  std::vector<std::string> names;
  for (const SeriesRun& s : run->series) names.push_back(s.name);
  EXPECT_THAT(names, ElementsAre("a.csv", "b/line.csv:temp", "b/line.csv:flow"));
  for (const SeriesRun& s : run->series) {
    EXPECT_EQ(s.time_ms.size(), 300u);
    EXPECT_EQ(s.signal.size(), 300u);
    EXPECT_GE(s.stats.signals, 1) << s.name;
  }
  // One thread gives the same results.
  o.threads = 1;
  o.output.clear();
  auto again = RunCorpus(o, Cyberstride());
  ASSERT_TRUE(again.ok());
  ASSERT_EQ(again->series.size(), 3u);
  EXPECT_EQ(again->series[2].score, run->series[2].score);
  // The verdicts mirror the input tree; a multi-column file gets c, c_score, c_kind, c_signal.
  EXPECT_THAT(Read(dir_ / "out/a.csv"),
              ::testing::StartsWith("timestamp,value,score,kind,signal\n"));
  EXPECT_THAT(Read(dir_ / "out/b/line.csv"),
              ::testing::StartsWith("timestamp,temp,temp_score,temp_kind,temp_signal,flow,"
                                    "flow_score,flow_kind,flow_signal\n1700000000000,0,"));
}

TEST_F(CorpusTest, BadFilesAreNamedWithTheirLine) {
  Write(dir_ / "in/c.csv", "timestamp,value\n2024-01-01 00:00:00,1\n2024-01-01 00:00:00,2\n");
  Write(dir_ / "in/d.csv", "timestamp,value\n2024-01-01 00:01:00,1\n2024-01-01 00:00:00,2\n");
  auto run = RunCorpus({(dir_ / "in").string(), "", "", "", 2}, Cyberstride());
  ASSERT_FALSE(run.ok());
  EXPECT_THAT(run.status().message(), HasSubstr("2 of 4 files failed"));
  EXPECT_THAT(run.status().message(),
              HasSubstr("c.csv:3: timestamp: '2024-01-01 00:00:00' repeats the timestamp on "
                        "line 2"));
  EXPECT_THAT(run.status().message(),
              HasSubstr("d.csv:3: timestamp: '2024-01-01 00:00:00' is before the timestamp on "
                        "line 2"));
  EXPECT_EQ(RunCorpus({(dir_ / "nope").string(), "", "", "", 0}, Cyberstride()).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(CorpusTest, ScoresColumnReadsResultsAndSkipsFilesWithoutIt) {
  Write(dir_ / "res/det_x.csv", "timestamp,value,anomaly_score\n1000,1,0.1\n2000,1,0.9\n");
  Write(dir_ / "res/det_totals.csv", "Detector,Score\ndet,1.0\n");
  auto run = RunCorpus({(dir_ / "res").string(), "", "anomaly_score", "det_", 0}, Cyberstride());
  ASSERT_TRUE(run.ok()) << run.status();
  ASSERT_EQ(run->series.size(), 1u);
  EXPECT_EQ(run->series[0].name, "x.csv");
  EXPECT_THAT(run->series[0].score, ElementsAre(0.1, 0.9));
  EXPECT_TRUE(run->series[0].signal.empty());
  EXPECT_THAT(run->skipped, ElementsAre("det_totals.csv"));
}

TEST_F(CorpusTest, EvaluateScoresAsRaisedAndSweptAndReports) {
  // Windows around the jump at row 200 (minute 200) of each series; flow has none of its own
  // but falls back to the file's.
  auto labels = Labels::Parse(
      absl::StrCat("series,start,end\n", "a.csv,", 1700000000000 + 195 * 60000, ",",
                   1700000000000 + 215 * 60000, "\n", "b/line.csv,", 1700000000000 + 195 * 60000,
                   ",", 1700000000000 + 215 * 60000, "\n", "elsewhere.csv,1000,2000\n"),
      "l.csv");
  ASSERT_TRUE(labels.ok()) << labels.status();
  // A file with no rows, first in order, must not change how the others are scored.
  Write(dir_ / "in/0_empty.csv", "timestamp,value\n");
  auto run = RunCorpus({(dir_ / "in").string(), "", "", "", 0}, Cyberstride());
  ASSERT_TRUE(run.ok()) << run.status();
  ASSERT_EQ(run->series.size(), 4u);
  EXPECT_EQ(run->series[0].name, "0_empty.csv");
  auto ev = Evaluate(run->series, *labels);
  ASSERT_TRUE(ev.ok()) << ev.status();
  ASSERT_EQ(ev->as_raised.size(), 3u);
  ASSERT_EQ(ev->swept.size(), 3u);
  EXPECT_THAT(ev->unused_keys, ElementsAre("elsewhere.csv"));
  EXPECT_THAT(ev->unlabelled, ElementsAre("0_empty.csv"));
  const SeriesScore& raised = ev->as_raised[0].total;
  EXPECT_EQ(raised.windows, 3);
  EXPECT_EQ(raised.detected, 3);  // the jump is caught in every series
  // Swept can only do as well or better than as raised (it may drop false signals).
  EXPECT_GE(ev->swept[0].total.Normalized(), raised.Normalized() - 1e-9);

  const RunInfo info{"cyberstride", "l.csv", 0.1, 2};
  const nlohmann::json j = JsonReport(*ev, run->series, info);
  EXPECT_EQ(j["rows"], 900);
  EXPECT_EQ(j["series"].size(), 4u);
  EXPECT_EQ(j["series"][2]["name"], "b/line.csv:temp");
  EXPECT_EQ(j["overall"]["as_raised"]["standard"]["detected"], 3);
  EXPECT_DOUBLE_EQ(j["overall"]["as_raised"]["standard"]["score"].get<double>(),
                   raised.Normalized());
  EXPECT_TRUE(j["overall"]["swept"]["reward_low_FN_rate"].contains("threshold"));
  EXPECT_THAT(j["labels"]["unused_keys"], ElementsAre("elsewhere.csv"));
  const std::string text = TextReport(*ev, run->series, info);
  EXPECT_THAT(text, HasSubstr("b/line.csv:flow"));
  EXPECT_THAT(text, HasSubstr("NAB reward_low_FP_rate"));
  EXPECT_THAT(text, HasSubstr("windows detected (recall)"));
}

}  // namespace
}  // namespace cybersyn::alerter::evaluation
