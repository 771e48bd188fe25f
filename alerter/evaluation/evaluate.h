// Evaluate: scores a corpus run against labels in NAB's two ways.
//   - as raised: every row with signal = 1 is a detection, no threshold (what an operator
//     receives);
//   - swept: NAB's corpus-wide threshold over a per-row score (how NAB's scoreboard figures
//     were obtained). With signals, a row's score is its detector score where signal = 1 and 0
//     elsewhere; with a scores column, the column as it is.
// Both for each of NAB's three profiles (NabProfiles() order).
//
// Thread-safety: a free function over its arguments.
#ifndef CYBERSYN_ALERTER_EVALUATION_EVALUATE_H_
#define CYBERSYN_ALERTER_EVALUATION_EVALUATE_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "alerter/evaluation/corpus.h"
#include "alerter/evaluation/labels.h"
#include "alerter/evaluation/nab_score.h"

namespace cybersyn::alerter::evaluation {

struct Evaluation {
  std::vector<std::string> names;        // series, in run order
  std::vector<CorpusScore> as_raised;    // per profile; empty when the runs have no signals
  std::vector<CorpusScore> swept;        // per profile
  std::vector<std::string> unlabelled;   // series no label key matched (scored anomaly-free)
  std::vector<std::string> unused_keys;  // label keys no series matched
  int windows_without_rows = 0;          // label windows holding no row of their series
};

// InvalidArgument naming the series if its windows are malformed for it (see NabScorer::Add).
absl::StatusOr<Evaluation> Evaluate(const std::vector<SeriesRun>& runs, const Labels& labels);

}  // namespace cybersyn::alerter::evaluation

#endif  // CYBERSYN_ALERTER_EVALUATION_EVALUATE_H_
