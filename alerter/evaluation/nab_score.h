// NabScorer: scores detections against labelled anomaly windows the way the Numenta Anomaly
// Benchmark (NAB v1.1) does, re-derived from NAB's documentation (docs/detection.md has the
// rules and a worked example).
//
// Per series, rows are weighed by where they fall:
//   - the first ProbationRows(n) rows (15% of the series, at most 750) never score;
//   - a detection inside a window scores tp * S(-(right - i + 1) / width) / S(-1), where S is
//     ScaledSigmoid, `right` the window's last row and `width` its row count: +tp at the
//     window's first row, close to 0 at its last. Only the best (= earliest) detection of a
//     window counts; a window without one costs -fn;
//   - a detection outside every window costs fp * S((i - right) / (width - 1)) measured from the
//     preceding window (a detection just after a window costs little), or -fp with no window
//     before it.
// Corpus totals are normalised as NAB's runner does: 100 * (raw - null) / (perfect - null),
// where null detects nothing (-fn per window that has a scorable row) and perfect is tp per
// labelled window (every window, even one wholly in probation, which nothing can detect).
//
// A row is a detection at threshold t when its score is >= t. Sweep() finds NAB's corpus-wide
// threshold: the one (over every distinct score) that maximises the corpus raw total.
//
// Thread-safety: Add() must not run concurrently with anything else; the const methods may run
// concurrently.
#ifndef CYBERSYN_ALERTER_EVALUATION_NAB_SCORE_H_
#define CYBERSYN_ALERTER_EVALUATION_NAB_SCORE_H_

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace cybersyn::alerter::evaluation {

// NAB's cost weights (config/profiles.json).
struct NabProfile {
  std::string_view name;
  double tp_weight;
  double fp_weight;
  double fn_weight;
};

// standard (1, 0.11, 1), reward_low_FP_rate (1, 0.22, 1), reward_low_FN_rate (1, 0.11, 2).
const std::array<NabProfile, 3>& NabProfiles();

// A labelled anomaly window, both ends inclusive, in epoch milliseconds.
struct Window {
  int64_t start_ms = 0;
  int64_t end_ms = 0;
};

// min(floor(0.15 * rows), 750): the rows at the start of a series where nothing scores.
int64_t ProbationRows(int64_t rows);

// NAB's scaled sigmoid: 2 / (1 + e^(5x)) - 1, and -1 beyond x = 3.
double ScaledSigmoid(double relative_position);

// How one series' rows are weighed, before the profile's weights apply.
struct SeriesLayout {
  int64_t probation = 0;
  // Per row: the window it is in (index into `window_rows`), or -1 outside every window.
  std::vector<int32_t> window;
  // Per row: in a window, S(position) / S(-1) in (0, 1]; outside, S(distance past the previous
  // window) or -1, in [-1, 0).
  std::vector<double> weight;
  // First and last row of each window that holds at least one row, in time order.
  std::vector<std::pair<int64_t, int64_t>> window_rows;
  // Windows given that hold no row of the series (outside its time range or in a gap).
  int windows_without_rows = 0;
};

// Rows are taken in the order given. A window holds the rows from the first one at or after its
// start (and after the previous window) up to the last before a row past its end; with
// increasing times that is every row inside it. InvalidArgument if a window ends before it
// starts or overlaps another.
absl::StatusOr<SeriesLayout> LayoutSeries(std::span<const int64_t> time_ms,
                                          std::span<const Window> windows);

// Detection counts and NAB raw score of one series (or the corpus) at one threshold.
struct SeriesScore {
  double raw = 0;                // NAB raw score under the profile
  double null_raw = 0;           // raw score of detecting nothing
  double perfect = 0;            // tp weight x labelled windows
  int windows = 0;               // labelled windows (with rows)
  int scorable_windows = 0;      // of which some row is after probation
  int detected = 0;              // windows with a detection after probation
  int64_t detections = 0;        // detections after probation
  int64_t false_detections = 0;  // of which outside every window
  int64_t points_outside = 0;    // rows after probation outside every window
  int64_t delay_rows_sum = 0;    // over detected windows: first detection - window's first row
  double delay_ms_sum = 0;       // the same in time

  // 100 * (raw - null) / (perfect - null); NaN without windows.
  double Normalized() const;
  // detected / windows; NaN without windows.
  double Recall() const;
  // false detections per 10,000 rows outside windows (after probation).
  double FalsePer10k() const;
  double MeanDelayRows() const;
  double MeanDelayMs() const;
  void Accumulate(const SeriesScore& other);
};

struct CorpusScore {
  NabProfile profile;
  // Detections are rows with score >= threshold (+infinity: none).
  double threshold = 0;
  SeriesScore total;
  std::vector<SeriesScore> series;  // in the order added
};

class NabScorer {
 public:
  // Adds a series: its row times, per-row scores and labelled windows. InvalidArgument (naming
  // the series) as LayoutSeries, or if the spans' lengths differ or a score is NaN.
  absl::Status Add(std::string name, std::span<const int64_t> time_ms,
                   std::span<const double> score, std::span<const Window> windows);

  size_t size() const { return series_.size(); }
  const std::string& name(size_t i) const { return series_[i].name; }
  const SeriesLayout& layout(size_t i) const { return series_[i].layout; }

  // Series `i`'s score broken down by row, as NAB's results files list it in their
  // S(t)_<profile> columns: each detection outside every window (after probation) carries its
  // cost, each scorable window's first row carries the window's score (its first detection's
  // value, or -fn if missed), every other row 0. The sum is the series' raw score.
  std::vector<double> RowScores(size_t i, const NabProfile& profile, double threshold) const;

  // Every series scored with detections = rows with score >= threshold.
  CorpusScore ScoreAt(const NabProfile& profile, double threshold) const;

  // NAB's corpus-wide sweep for each profile: the threshold that maximises the corpus raw
  // total (the highest such threshold on ties), and every series scored at it.
  std::vector<CorpusScore> Sweep(std::span<const NabProfile> profiles) const;

 private:
  struct Series {
    std::string name;
    std::vector<int64_t> time_ms;
    std::vector<double> score;
    SeriesLayout layout;
  };
  SeriesScore ScoreSeries(const Series& s, const NabProfile& profile, double threshold) const;

  std::vector<Series> series_;
};

}  // namespace cybersyn::alerter::evaluation

#endif  // CYBERSYN_ALERTER_EVALUATION_NAB_SCORE_H_
