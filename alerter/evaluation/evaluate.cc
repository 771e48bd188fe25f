#include "alerter/evaluation/evaluate.h"

#include <set>

#include "common/status.h"

namespace cybersyn::alerter::evaluation {

absl::StatusOr<Evaluation> Evaluate(const std::vector<SeriesRun>& runs, const Labels& labels) {
  Evaluation ev;
  const bool signals = !runs.empty() && runs.front().from_detector;
  NabScorer raised, swept;
  std::set<std::string_view> used;
  const std::vector<Window> none;
  std::vector<double> score;
  for (const SeriesRun& run : runs) {
    ev.names.push_back(run.name);
    const Labels::Match m = labels.Find(run.name);
    if (m.key == nullptr) {
      ev.unlabelled.push_back(run.name);
    } else {
      used.insert(*m.key);
    }
    const std::vector<Window>& windows = m.windows == nullptr ? none : *m.windows;
    if (signals) {
      score.assign(run.signal.begin(), run.signal.end());
      RETURN_IF_ERROR(raised.Add(run.name, run.time_ms, score, windows));
      for (size_t i = 0; i < score.size(); ++i) score[i] = run.signal[i] ? run.score[i] : 0.0;
      RETURN_IF_ERROR(swept.Add(run.name, run.time_ms, score, windows));
    } else {
      RETURN_IF_ERROR(swept.Add(run.name, run.time_ms, run.score, windows));
    }
    ev.windows_without_rows += swept.layout(swept.size() - 1).windows_without_rows;
  }
  for (const auto& [key, w] : labels.all()) {
    if (!used.contains(key)) ev.unused_keys.push_back(key);
  }
  for (const NabProfile& p : NabProfiles()) {
    if (signals) ev.as_raised.push_back(raised.ScoreAt(p, 1.0));
  }
  ev.swept = swept.Sweep(NabProfiles());
  return ev;
}

}  // namespace cybersyn::alerter::evaluation
