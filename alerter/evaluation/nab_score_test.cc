#include "alerter/evaluation/nab_score.h"

#include <cmath>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "alerter/backtest.h"
#include "alerter/evaluation/labels.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace cybersyn::alerter::evaluation {
namespace {

using ::testing::HasSubstr;

constexpr int64_t kMinute = 60000;
const NabProfile& Standard() { return NabProfiles()[0]; }
const NabProfile& LowFp() { return NabProfiles()[1]; }
const NabProfile& LowFn() { return NabProfiles()[2]; }

std::vector<int64_t> Minutes(int n) {
  std::vector<int64_t> t(n);
  for (int i = 0; i < n; ++i) t[i] = i * kMinute;
  return t;
}

// Window over rows [first, last] of a Minutes() series.
Window Rows(int first, int last) { return {first * kMinute, last * kMinute}; }

// 100 rows (probation: the first 15), one window over rows 40..49; detections at `rows`.
SeriesScore ScoreOne(const std::vector<int>& rows, const NabProfile& profile,
                     std::vector<Window> windows = {Rows(40, 49)}) {
  std::vector<double> score(100, 0.0);
  for (int r : rows) score[r] = 1.0;
  NabScorer scorer;
  EXPECT_TRUE(scorer.Add("s", Minutes(100), score, windows).ok());
  return scorer.ScoreAt(profile, 0.5).total;
}

// S(x) = 2 / (1 + e^(5x)) - 1 = tanh(-5x / 2), so S(-1) = tanh(2.5).
const double kMaxTp = std::tanh(2.5);

TEST(NabScore, ProbationIsFifteenPercentAtMost750Rows) {
  EXPECT_EQ(ProbationRows(100), 15);
  EXPECT_EQ(ProbationRows(1643), 246);
  EXPECT_EQ(ProbationRows(5000), 750);
  EXPECT_EQ(ProbationRows(22695), 750);
}

TEST(NabScore, DetectionAtTheWindowsStartScoresTheFullTpWeight) {
  const SeriesScore s = ScoreOne({40}, Standard());
  EXPECT_DOUBLE_EQ(s.raw, 1.0);
  EXPECT_DOUBLE_EQ(s.null_raw, -1.0);
  EXPECT_DOUBLE_EQ(s.perfect, 1.0);
  EXPECT_DOUBLE_EQ(s.Normalized(), 100.0);
  EXPECT_EQ(s.detected, 1);
  EXPECT_EQ(s.delay_rows_sum, 0);
}

TEST(NabScore, DetectionAtTheWindowsEndScoresAlmostNothing) {
  // Position -(49 - 49 + 1) / 10 = -0.1: S(-0.1) / S(-1) = tanh(0.25) / tanh(2.5) = 0.2482.
  const SeriesScore s = ScoreOne({49}, Standard());
  EXPECT_NEAR(s.raw, std::tanh(0.25) / kMaxTp, 1e-12);
  EXPECT_NEAR(s.raw, 0.248241, 1e-6);
  EXPECT_NEAR(s.Normalized(), 100 * (0.248241 + 1) / 2, 1e-4);
  EXPECT_EQ(s.delay_rows_sum, 9);
  EXPECT_DOUBLE_EQ(s.delay_ms_sum, 9.0 * kMinute);
}

TEST(NabScore, OnlyTheFirstDetectionOfAWindowCounts) {
  // Half-way (position -0.5): tanh(1.25) / tanh(2.5) = 0.8598; the later one adds nothing.
  const SeriesScore s = ScoreOne({45, 48}, Standard());
  EXPECT_NEAR(s.raw, std::tanh(1.25) / kMaxTp, 1e-12);
  EXPECT_EQ(s.detections, 2);
  EXPECT_EQ(s.false_detections, 0);
}

TEST(NabScore, DetectionJustAfterAWindowIsAMissAndACheapFalsePositive) {
  // Row 50: (50 - 49) / (10 - 1) past the window, S(1/9) = -tanh(5/18) = -0.2709; x fp 0.11.
  const SeriesScore s = ScoreOne({50}, Standard());
  EXPECT_NEAR(s.raw, -1.0 - 0.11 * std::tanh(5.0 / 18), 1e-12);
  EXPECT_NEAR(s.raw, -1.029793, 1e-6);
  EXPECT_EQ(s.false_detections, 1);
  EXPECT_EQ(s.detected, 0);
  // Far after (more than 3 window widths): the full fp weight.
  EXPECT_NEAR(ScoreOne({90}, Standard()).raw, -1.11, 1e-12);
  // Before any window: the full fp weight too; low-FP doubles it.
  EXPECT_NEAR(ScoreOne({20}, Standard()).raw, -1.11, 1e-12);
  EXPECT_NEAR(ScoreOne({20}, LowFp()).raw, -1.22, 1e-12);
}

TEST(NabScore, AMissCostsTheFnWeight) {
  EXPECT_DOUBLE_EQ(ScoreOne({}, Standard()).raw, -1.0);
  EXPECT_DOUBLE_EQ(ScoreOne({}, Standard()).Normalized(), 0.0);
  const SeriesScore fn = ScoreOne({}, LowFn());
  EXPECT_DOUBLE_EQ(fn.raw, -2.0);
  EXPECT_DOUBLE_EQ(fn.null_raw, -2.0);
  // A hit at the start under low-FN: 100 * (1 + 2) / (1 + 2).
  EXPECT_DOUBLE_EQ(ScoreOne({40}, LowFn()).Normalized(), 100.0);
}

TEST(NabScore, NothingScoresInProbation) {
  // A detection at row 10 (< 15) is neither a false positive nor anything else.
  const SeriesScore s = ScoreOne({10}, Standard());
  EXPECT_DOUBLE_EQ(s.raw, -1.0);
  EXPECT_EQ(s.detections, 0);
  EXPECT_EQ(s.points_outside, 100 - 15 - 10);
}

TEST(NabScore, AWindowWhollyInProbationCountsOnlyInPerfect) {
  // Windows over rows 5..10 (in probation) and 40..49: null ignores the first (NAB leaves it
  // out of scoring), perfect counts it (NAB's runner counts every labelled window).
  const SeriesScore s = ScoreOne({40}, Standard(), {Rows(5, 10), Rows(40, 49)});
  EXPECT_EQ(s.windows, 2);
  EXPECT_EQ(s.scorable_windows, 1);
  EXPECT_DOUBLE_EQ(s.raw, 1.0);
  EXPECT_DOUBLE_EQ(s.null_raw, -1.0);
  EXPECT_DOUBLE_EQ(s.perfect, 2.0);
  EXPECT_NEAR(s.Normalized(), 100.0 * 2 / 3, 1e-12);
}

TEST(NabScore, AWindowStraddlingProbationIsWeighedOverItsWholeWidth) {
  // Window 10..19, probation ends at 15: the earliest scorable detection, row 15, is half-way.
  const SeriesScore s = ScoreOne({12, 15}, Standard(), {Rows(10, 19)});
  EXPECT_NEAR(s.raw, std::tanh(1.25) / kMaxTp, 1e-12);
  EXPECT_EQ(s.detected, 1);
  EXPECT_EQ(s.delay_rows_sum, 5);
}

TEST(NabScore, WindowsMatchRowsByTimeAndBadWindowsAreErrors) {
  // A window whose ends fall between rows covers the rows inside it.
  SeriesScore s = ScoreOne({40}, Standard(), {{40 * kMinute - 30000, 49 * kMinute + 30000}});
  EXPECT_DOUBLE_EQ(s.raw, 1.0);
  NabScorer scorer;
  const std::vector<double> score(100, 0.0);
  EXPECT_THAT(scorer.Add("a", Minutes(100), score, std::vector<Window>{{Rows(50, 40)}}).message(),
              HasSubstr("a: window [3000000, 2400000] ms ends before it starts"));
  EXPECT_THAT(scorer.Add("b", Minutes(100), score, std::vector<Window>{Rows(40, 50), Rows(50, 60)})
                  .message(),
              HasSubstr("b: windows [2400000, 3000000] and [3000000, 3600000] ms overlap"));
  // A window beyond the data holds no row and is not counted.
  ASSERT_TRUE(scorer.Add("d", Minutes(100), score, std::vector<Window>{Rows(200, 210)}).ok());
  EXPECT_EQ(scorer.layout(0).windows_without_rows, 1);
  EXPECT_EQ(scorer.ScoreAt(Standard(), 0.5).total.windows, 0);
}

TEST(NabScore, RowsThatRepeatATimeAreTakenInOrder) {
  // NAB's corpus repeats local times across a daylight-saving change: rows 45..47 share a time
  // here, and the window still spans rows 40..49 by position.
  std::vector<int64_t> t = Minutes(100);
  t[46] = t[45];
  t[47] = t[45];
  std::vector<double> score(100, 0.0);
  score[49] = 1.0;
  NabScorer scorer;
  ASSERT_TRUE(scorer.Add("dst", t, score, std::vector<Window>{Rows(40, 49)}).ok());
  EXPECT_EQ(scorer.layout(0).window_rows[0], std::make_pair(int64_t{40}, int64_t{49}));
  EXPECT_NEAR(scorer.ScoreAt(Standard(), 0.5).total.raw, std::tanh(0.25) / kMaxTp, 1e-12);
}

TEST(NabScore, SweepPicksTheCorpusThresholdThatMaximisesTheTotal) {
  // Two series, each with a hit at its window's start scored 0.9; lower thresholds (0.7, 0.3,
  // 0) only add false positives.
  NabScorer scorer;
  std::vector<double> a(100, 0.0), b(100, 0.0);
  a[40] = 0.9;
  a[20] = 0.7;
  b[40] = 0.9;
  b[25] = 0.3;
  b[30] = 0.3;
  ASSERT_TRUE(scorer.Add("a", Minutes(100), a, std::vector<Window>{Rows(40, 49)}).ok());
  ASSERT_TRUE(scorer.Add("b", Minutes(100), b, std::vector<Window>{Rows(40, 49)}).ok());
  const std::vector<CorpusScore> swept = scorer.Sweep(NabProfiles());
  ASSERT_EQ(swept.size(), 3u);
  EXPECT_DOUBLE_EQ(swept[0].threshold, 0.9);
  EXPECT_DOUBLE_EQ(swept[0].total.raw, 2.0);
  EXPECT_DOUBLE_EQ(swept[0].total.Normalized(), 100.0);
  EXPECT_EQ(swept[0].series.size(), 2u);
  // Where detecting nothing is best, the threshold is +infinity.
  NabScorer fp_only;
  ASSERT_TRUE(fp_only.Add("c", Minutes(100), a, std::vector<Window>{Rows(60, 69)}).ok());
  EXPECT_TRUE(std::isinf(fp_only.Sweep(NabProfiles())[0].threshold));
  // Ties between thresholds resolve to the highest (as NAB's stable sort does).
  NabScorer tie;
  std::vector<double> c(100, 0.0);
  c[40] = 0.8;
  c[45] = 0.6;  // later in the same window: adds nothing at 0.6
  ASSERT_TRUE(tie.Add("t", Minutes(100), c, std::vector<Window>{Rows(40, 49)}).ok());
  EXPECT_DOUBLE_EQ(tie.Sweep(NabProfiles())[0].threshold, 0.8);
}

// --- Oracle: one NAB file with Numenta HTM's published per-row results (testdata/nab). ----

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

const std::string kNab = CYBERSYN_SOURCE_DIR "/alerter/evaluation/testdata/nab/";

// NAB's corpus-wide thresholds for Numenta HTM (NAB's config/thresholds.json).
constexpr double kHtmThresholdStandard = 0.5421876907348634;
constexpr double kHtmThresholdLowFp = 0.5751955032348636;

TEST(NabScoreOracle, ReproducesNabsPerRowScoresAndFileTotalsForHtm) {
  const std::string text =
      ReadFile(kNab + "results/numenta/realAdExchange/numenta_exchange-4_cpc_results.csv");
  ASSERT_FALSE(text.empty());
  auto scores = ParseSeriesCsv(text, "htm", {.only_column = "anomaly_score"});
  ASSERT_TRUE(scores.ok()) << scores.status();
  auto labels = Labels::Load(kNab + "windows.json");
  ASSERT_TRUE(labels.ok()) << labels.status();
  const auto match = labels->Find("data/realAdExchange/exchange-4_cpc_results.csv");
  ASSERT_NE(match.windows, nullptr);
  ASSERT_EQ(match.windows->size(), 3u);
  NabScorer scorer;
  ASSERT_TRUE(scorer.Add("x", scores->time_ms, scores->values[0], *match.windows).ok());
  EXPECT_EQ(scorer.layout(0).probation, 246);

  // The S(t) columns, per profile, in the file's column order.
  struct Column {
    const NabProfile& profile;
    double threshold;
    size_t field;
    double nab_total;  // numenta_<profile>_scores.csv
  };
  const Column columns[] = {{LowFp(), kHtmThresholdLowFp, 5, 0.512262236929},
                            {LowFn(), kHtmThresholdStandard, 6, -0.487740033323},
                            {Standard(), kHtmThresholdStandard, 7, 0.512259966677}};
  std::vector<std::vector<double>> nab(3);
  std::vector<std::string> lines = absl::StrSplit(text, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 1644u);
  for (size_t i = 1; i < lines.size(); ++i) {
    std::vector<std::string> f = absl::StrSplit(lines[i], ',');
    ASSERT_EQ(f.size(), 8u);
    for (int c = 0; c < 3; ++c) {
      double v;
      ASSERT_TRUE(absl::SimpleAtod(f[columns[c].field], &v)) << lines[i];
      nab[c].push_back(v);
    }
  }
  for (int c = 0; c < 3; ++c) {
    const Column& col = columns[c];
    SCOPED_TRACE(std::string(col.profile.name));
    const std::vector<double> rows = scorer.RowScores(0, col.profile, col.threshold);
    int nonzero = 0;
    for (size_t i = 0; i < rows.size(); ++i) {
      EXPECT_NEAR(rows[i], nab[c][i], 1e-9) << "row " << i + 1 << " " << lines[i + 1];
      nonzero += rows[i] != 0;
    }
    EXPECT_GE(nonzero, 4);  // two hits, a miss, a false positive at least
    const SeriesScore s = scorer.ScoreAt(col.profile, col.threshold).total;
    EXPECT_NEAR(s.raw, col.nab_total, 1e-9);
    EXPECT_EQ(s.windows, 3);
    EXPECT_EQ(s.detected, 2);
  }
}

}  // namespace
}  // namespace cybersyn::alerter::evaluation
