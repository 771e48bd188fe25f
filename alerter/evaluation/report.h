// Report: an Evaluation as a text table (per series, then overall) or as JSON for scripts, as
// `cybersyn backtest --labels` prints it. docs/detection.md describes every field.
//
// Thread-safety: free functions over their arguments.
#ifndef CYBERSYN_ALERTER_EVALUATION_REPORT_H_
#define CYBERSYN_ALERTER_EVALUATION_REPORT_H_

#include <string>
#include <vector>

#include "alerter/evaluation/corpus.h"
#include "alerter/evaluation/evaluate.h"
#include "nlohmann/json.hpp"

namespace cybersyn::alerter::evaluation {

// What ran, for the report's heading.
struct RunInfo {
  std::string source;  // detector kind, or "column <name>" for a scores column
  std::string labels;  // path of the labels file
  double seconds = 0;  // wall time of the run
  int threads = 1;
};

std::string TextReport(const Evaluation& ev, const std::vector<SeriesRun>& runs,
                       const RunInfo& info);

nlohmann::json JsonReport(const Evaluation& ev, const std::vector<SeriesRun>& runs,
                          const RunInfo& info);

}  // namespace cybersyn::alerter::evaluation

#endif  // CYBERSYN_ALERTER_EVALUATION_REPORT_H_
