// Backtest: runs a detector over a CSV series and writes one verdict row per input row.
//
// Input: a header `timestamp,value`, then one row per window. Timestamps are
// `YYYY-MM-DD HH:MM:SS` (UTC), RFC 3339 (`2024-03-01T12:00:00Z`, `...+02:00`, fractional
// seconds allowed) or integer epoch milliseconds; an empty value is a missing observation.
// Output: a header `timestamp,value,score,kind,signal`, then exactly one row per input row in
// input order, the timestamp and value echoed as given.
// Errors name `file:line: field: problem`. Thread-safety: free functions, no shared state.
#ifndef CYBERSYN_ALERTER_BACKTEST_H_
#define CYBERSYN_ALERTER_BACKTEST_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "alerter/detectors/detector.h"

namespace cybersyn::alerter {

struct BacktestStats {
  int64_t rows = 0;
  int64_t signals = 0;
  int64_t missing = 0;
  int64_t resets = 0;
  double seconds = 0;
};

// Parses a timestamp in one of the accepted forms into epoch milliseconds (UTC).
// InvalidArgument describing the problem otherwise.
absl::StatusOr<int64_t> ParseTimestamp(std::string_view text);

// Runs `detector` over the CSV `input` (named `input_name` in errors) and appends the verdict
// rows to `*output`. On error `*output` holds the rows before the bad one.
absl::StatusOr<BacktestStats> RunBacktest(std::string_view input, std::string_view input_name,
                                          Detector& detector, std::string* output);

// As RunBacktest, reading `input_path` and writing `output_path` ("-" is stdin / stdout).
absl::StatusOr<BacktestStats> RunBacktestFiles(const std::string& input_path,
                                               const std::string& output_path, Detector& detector);

}  // namespace cybersyn::alerter

#endif  // CYBERSYN_ALERTER_BACKTEST_H_
