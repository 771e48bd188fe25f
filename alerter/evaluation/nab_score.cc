#include "alerter/evaluation/nab_score.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "absl/strings/str_cat.h"
#include "common/status.h"

namespace cybersyn::alerter::evaluation {

const std::array<NabProfile, 3>& NabProfiles() {
  static constexpr std::array<NabProfile, 3> kProfiles = {{
      {"standard", 1.0, 0.11, 1.0},
      {"reward_low_FP_rate", 1.0, 0.22, 1.0},
      {"reward_low_FN_rate", 1.0, 0.11, 2.0},
  }};
  return kProfiles;
}

int64_t ProbationRows(int64_t rows) { return std::min<int64_t>(rows * 15 / 100, 750); }

double ScaledSigmoid(double relative_position) {
  if (relative_position > 3.0) return -1.0;
  return 2.0 / (1.0 + std::exp(5.0 * relative_position)) - 1.0;
}

absl::StatusOr<SeriesLayout> LayoutSeries(std::span<const int64_t> time_ms,
                                          std::span<const Window> windows) {
  const int64_t n = static_cast<int64_t>(time_ms.size());
  std::vector<Window> sorted(windows.begin(), windows.end());
  std::sort(sorted.begin(), sorted.end(),
            [](const Window& a, const Window& b) { return a.start_ms < b.start_ms; });
  SeriesLayout layout;
  layout.probation = ProbationRows(n);
  int64_t row = 0;
  for (size_t k = 0; k < sorted.size(); ++k) {
    const Window& w = sorted[k];
    if (w.end_ms < w.start_ms) {
      return absl::InvalidArgumentError(
          absl::StrCat("window [", w.start_ms, ", ", w.end_ms, "] ms ends before it starts"));
    }
    if (k > 0 && w.start_ms <= sorted[k - 1].end_ms) {
      return absl::InvalidArgumentError(absl::StrCat("windows [", sorted[k - 1].start_ms, ", ",
                                                     sorted[k - 1].end_ms, "] and [", w.start_ms,
                                                     ", ", w.end_ms, "] ms overlap"));
    }
    // A scan in row order, not a binary search: rows may repeat a time (see the header).
    while (row < n && time_ms[row] < w.start_ms) ++row;
    const int64_t first = row;
    while (row < n && time_ms[row] <= w.end_ms) ++row;
    const int64_t last = row - 1;
    if (first > last) {
      ++layout.windows_without_rows;
    } else {
      layout.window_rows.emplace_back(first, last);
    }
  }
  layout.window.assign(n, -1);
  layout.weight.assign(n, -1.0);
  const double max_tp = ScaledSigmoid(-1.0);
  int64_t prev_right = -1, prev_width = 0;
  size_t next = 0;  // the window at or after the current row
  for (int64_t i = 0; i < n; ++i) {
    if (next < layout.window_rows.size() && i >= layout.window_rows[next].first) {
      const auto [first, last] = layout.window_rows[next];
      const int64_t width = last - first + 1;
      layout.window[i] = static_cast<int32_t>(next);
      layout.weight[i] = ScaledSigmoid(-static_cast<double>(last - i + 1) / width) / max_tp;
      if (i == last) {
        prev_right = last;
        prev_width = width;
        ++next;
      }
    } else if (prev_right >= 0 && prev_width > 1) {
      // NAB divides by (width - 1); a one-row window (undefined there) counts as far away.
      layout.weight[i] = ScaledSigmoid(static_cast<double>(i - prev_right) / (prev_width - 1));
    }
  }
  return layout;
}

double SeriesScore::Normalized() const {
  if (perfect == null_raw) return std::numeric_limits<double>::quiet_NaN();
  return 100.0 * (raw - null_raw) / (perfect - null_raw);
}

double SeriesScore::Recall() const {
  if (scorable_windows == 0) return std::numeric_limits<double>::quiet_NaN();
  return static_cast<double>(detected) / scorable_windows;
}

double SeriesScore::FalsePer10k() const {
  return points_outside == 0 ? 0.0 : 1e4 * false_detections / points_outside;
}

double SeriesScore::MeanDelayRows() const {
  return detected == 0 ? std::numeric_limits<double>::quiet_NaN()
                       : static_cast<double>(delay_rows_sum) / detected;
}

double SeriesScore::MeanDelayMs() const {
  return detected == 0 ? std::numeric_limits<double>::quiet_NaN() : delay_ms_sum / detected;
}

void SeriesScore::Accumulate(const SeriesScore& o) {
  raw += o.raw;
  null_raw += o.null_raw;
  perfect += o.perfect;
  windows += o.windows;
  scorable_windows += o.scorable_windows;
  detected += o.detected;
  detections += o.detections;
  false_detections += o.false_detections;
  points_outside += o.points_outside;
  delay_rows_sum += o.delay_rows_sum;
  delay_ms_sum += o.delay_ms_sum;
}

absl::Status NabScorer::Add(std::string name, std::span<const int64_t> time_ms,
                            std::span<const double> score, std::span<const Window> windows) {
  if (time_ms.size() != score.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, ": ", time_ms.size(), " times but ", score.size(), " scores"));
  }
  for (size_t i = 0; i < score.size(); ++i) {
    if (std::isnan(score[i])) {
      return absl::InvalidArgumentError(absl::StrCat(name, ": row ", i, ": score is NaN"));
    }
  }
  auto layout = LayoutSeries(time_ms, windows);
  if (!layout.ok()) return Annotate(layout.status(), name);
  series_.push_back({std::move(name), std::vector<int64_t>(time_ms.begin(), time_ms.end()),
                     std::vector<double>(score.begin(), score.end()), *std::move(layout)});
  return absl::OkStatus();
}

SeriesScore NabScorer::ScoreSeries(const Series& s, const NabProfile& profile,
                                   double threshold) const {
  const SeriesLayout& layout = s.layout;
  SeriesScore out;
  const size_t nw = layout.window_rows.size();
  std::vector<int64_t> first_detection(nw, -1);
  const int64_t n = static_cast<int64_t>(s.score.size());
  for (int64_t i = layout.probation; i < n; ++i) {
    const bool detected = s.score[i] >= threshold;
    const int32_t w = layout.window[i];
    out.detections += detected;
    if (w < 0) {
      ++out.points_outside;
      if (detected) {
        ++out.false_detections;
        out.raw += profile.fp_weight * layout.weight[i];
      }
    } else if (detected && first_detection[w] < 0) {
      first_detection[w] = i;
    }
  }
  for (size_t w = 0; w < nw; ++w) {
    const auto [first, last] = layout.window_rows[w];
    ++out.windows;
    out.perfect += profile.tp_weight;
    if (last < layout.probation) continue;  // wholly in probation: NAB leaves it out
    ++out.scorable_windows;
    out.null_raw -= profile.fn_weight;
    const int64_t d = first_detection[w];
    if (d < 0) {
      out.raw -= profile.fn_weight;
      continue;
    }
    ++out.detected;
    out.raw += profile.tp_weight * layout.weight[d];
    out.delay_rows_sum += d - first;
    out.delay_ms_sum += static_cast<double>(s.time_ms[d] - s.time_ms[first]);
  }
  return out;
}

std::vector<double> NabScorer::RowScores(size_t i, const NabProfile& profile,
                                         double threshold) const {
  const Series& s = series_[i];
  const SeriesLayout& layout = s.layout;
  std::vector<double> out(s.score.size(), 0.0);
  std::vector<double> window_score(layout.window_rows.size(), -profile.fn_weight);
  for (size_t r = layout.probation; r < s.score.size(); ++r) {
    if (s.score[r] < threshold) continue;
    const int32_t w = layout.window[r];
    if (w < 0) {
      out[r] = profile.fp_weight * layout.weight[r];
    } else {
      window_score[w] = std::max(window_score[w], profile.tp_weight * layout.weight[r]);
    }
  }
  for (size_t w = 0; w < layout.window_rows.size(); ++w) {
    const auto [first, last] = layout.window_rows[w];
    if (last >= layout.probation) out[first] = window_score[w];
  }
  return out;
}

CorpusScore NabScorer::ScoreAt(const NabProfile& profile, double threshold) const {
  CorpusScore out{profile, threshold, {}, {}};
  out.series.reserve(series_.size());
  for (const Series& s : series_) {
    out.series.push_back(ScoreSeries(s, profile, threshold));
    out.total.Accumulate(out.series.back());
  }
  return out;
}

std::vector<CorpusScore> NabScorer::Sweep(std::span<const NabProfile> profiles) const {
  // Every scorable row of the corpus, highest score first; windows numbered corpus-wide.
  struct Row {
    double score;
    double weight;
    int32_t window;  // corpus-wide window index, -1 outside
  };
  std::vector<Row> rows;
  std::vector<char> scorable;  // per corpus-wide window: has a row after probation
  for (const Series& s : series_) {
    const SeriesLayout& l = s.layout;
    const int32_t base = static_cast<int32_t>(scorable.size());
    for (const auto& [first, last] : l.window_rows) scorable.push_back(last >= l.probation);
    for (size_t i = l.probation; i < s.score.size(); ++i) {
      rows.push_back({s.score[i], l.weight[i], l.window[i] < 0 ? -1 : base + l.window[i]});
    }
  }
  std::stable_sort(rows.begin(), rows.end(),
                   [](const Row& a, const Row& b) { return a.score > b.score; });
  std::vector<CorpusScore> out;
  for (const NabProfile& p : profiles) {
    std::vector<double> part(scorable.size(), -p.fn_weight);
    double total = -p.fn_weight * std::count(scorable.begin(), scorable.end(), 1);
    double best = total;
    double best_threshold = std::numeric_limits<double>::infinity();
    for (size_t i = 0; i < rows.size();) {
      const double t = rows[i].score;
      for (; i < rows.size() && rows[i].score == t; ++i) {
        const Row& r = rows[i];
        if (r.window < 0) {
          total += p.fp_weight * r.weight;
        } else if (const double v = p.tp_weight * r.weight; v > part[r.window]) {
          total += v - part[r.window];
          part[r.window] = v;
        }
      }
      if (total > best) {
        best = total;
        best_threshold = t;
      }
    }
    out.push_back(ScoreAt(p, best_threshold));
  }
  return out;
}

}  // namespace cybersyn::alerter::evaluation
