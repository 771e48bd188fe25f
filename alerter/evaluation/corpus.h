// Corpus runs: a detector over one series CSV or every CSV under a directory (a plant's
// labelled history, or NAB's 58 files), on a pool of threads, keeping per series what scoring
// needs (row times, scores, signals). Results come back in a fixed order whatever the thread
// count: files sorted by relative path, columns in header order.
//
// A series is named by its file's path relative to the input directory (the path as given for
// a file input), with `:column` added for each column of a file with several value columns.
//
// Thread-safety: RunCorpus is reentrant; `make` is called from several threads at once.
#ifndef CYBERSYN_ALERTER_EVALUATION_CORPUS_H_
#define CYBERSYN_ALERTER_EVALUATION_CORPUS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "alerter/backtest.h"

namespace cybersyn::alerter::evaluation {

struct CorpusOptions {
  // A CSV file ("-" is stdin), or a directory searched recursively for *.csv.
  std::string input;
  // Where verdict CSVs go: empty for nowhere; for a file input a file or "-" (stdout); for a
  // directory input a directory, created if missing, that mirrors the input tree.
  std::string output;
  // Non-empty: no detector runs; this column of each file is the per-row anomaly score (e.g.
  // `anomaly_score` in NAB's results files) and there are no signals.
  std::string scores_column;
  // Removed from the start of each file's name when naming its series (NAB's results files
  // are called <detector>_<data file>).
  std::string strip_prefix;
  // Worker threads; 0 for one per core.
  int threads = 0;
  // Accept repeated or decreasing timestamps (ParseOptions::allow_unordered).
  bool allow_unordered = false;
};

struct SeriesRun {
  std::string name;
  std::vector<int64_t> time_ms;
  std::vector<double> score;
  std::vector<uint8_t> signal;  // per row; empty when scores come from a column
  bool from_detector = true;    // false: `score` is a scores column, there are no signals
  BacktestStats stats;
};

struct CorpusRun {
  std::vector<SeriesRun> series;
  // With scores_column: files of a directory input whose header lacks the column (NAB's
  // results directories hold per-file totals beside the per-row results).
  std::vector<std::string> skipped;
};

// Runs the corpus. `make` creates a fresh detector per series (unused with scores_column).
// NotFound if the input does not exist or a directory holds no CSV; otherwise the errors of the
// files that failed (InvalidArgument `file:line: field: problem`, first five, in file order).
absl::StatusOr<CorpusRun> RunCorpus(const CorpusOptions& options, const DetectorFactory& make);

}  // namespace cybersyn::alerter::evaluation

#endif  // CYBERSYN_ALERTER_EVALUATION_CORPUS_H_
