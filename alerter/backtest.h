// Backtest: runs a detector over a CSV series and writes one verdict row per input row.
//
// Input: a header `timestamp,<column>[,<column>...]`, then one row per window. Each value
// column is a series of its own. Timestamps are `YYYY-MM-DD HH:MM:SS` (UTC), RFC 3339
// (`2024-03-01T12:00:00Z`, `...+02:00`, fractional seconds allowed) or integer epoch
// milliseconds, strictly increasing; an empty value is a missing observation.
// Output: a header `timestamp,value,score,kind,signal` (for one column named `value`; else
// `timestamp,<c>,<c>_score,<c>_kind,<c>_signal` for each column c), then exactly one row per
// input row in input order, the timestamp and values echoed as given.
// Errors name `file:line: field: problem`. Thread-safety: free functions and plain values, no
// shared state.
#ifndef CYBERSYN_ALERTER_BACKTEST_H_
#define CYBERSYN_ALERTER_BACKTEST_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "alerter/detectors/detector.h"

namespace cybersyn::alerter {

struct BacktestStats {
  int64_t rows = 0;
  int64_t signals = 0;
  int64_t missing = 0;
  int64_t resets = 0;
  int64_t unordered = 0;  // rows with a repeated or decreasing timestamp (when allowed)
  double seconds = 0;     // wall time
  double update_ns = 0;   // thread CPU time spent in Detector::Update
};

// Parses a timestamp in one of the accepted forms into epoch milliseconds (UTC).
// InvalidArgument describing the problem otherwise.
absl::StatusOr<int64_t> ParseTimestamp(std::string_view text);

// A parsed series CSV. Views point into the text it was parsed from, which must outlive it.
struct SeriesTable {
  std::vector<std::string> columns;         // the value columns read, in header order
  std::vector<int64_t> time_ms;             // per row, strictly increasing unless allowed
  std::vector<std::string_view> lines;      // per row, the line as given (without CR/LF)
  std::vector<std::vector<double>> values;  // [column][row]; NaN for a missing value
  int64_t missing = 0;
  int64_t unordered = 0;  // rows whose timestamp is not after the previous row's
};

struct ParseOptions {
  // Empty: every column after `timestamp` is a value column and every row must have them all.
  // Else only this column is read (NotFound if the header lacks it; other columns are ignored,
  // not parsed).
  std::string only_column;
  // Accept a timestamp that repeats or goes back (local times across a daylight-saving change:
  // NAB's corpus has 38 such rows); rows are taken in file order and counted in `unordered`.
  bool allow_unordered = false;
};

// Parses `input` (named `input_name` in errors). InvalidArgument `name:line: field: problem`
// for a bad header, field, row length, or (unless allowed) a timestamp that is not after the
// previous row's.
absl::StatusOr<SeriesTable> ParseSeriesCsv(std::string_view input, std::string_view input_name,
                                           const ParseOptions& options = {});

// One column's verdicts, per row.
struct ColumnVerdicts {
  std::vector<double> score;
  std::vector<SignalKind> kind;
  std::vector<Direction> direction;
  std::vector<uint8_t> signal;
  BacktestStats stats;
};

// Runs `detector` (fresh) over column `column` of `table`.
ColumnVerdicts RunDetector(const SeriesTable& table, size_t column, Detector& detector);

// Appends the verdict CSV (header and one row per table row, see the file comment) for
// `verdicts`, one per column of `table`.
void AppendVerdictCsv(const SeriesTable& table, const std::vector<ColumnVerdicts>& verdicts,
                      std::string* output);

using DetectorFactory = std::function<absl::StatusOr<std::unique_ptr<Detector>>()>;

// Parses `input`, runs a detector from `make` over each value column and appends the verdict
// CSV to `*output` (untouched on error). Stats are summed over the columns.
absl::StatusOr<BacktestStats> RunBacktest(std::string_view input, std::string_view input_name,
                                          const DetectorFactory& make, std::string* output,
                                          const ParseOptions& options = {});

// Reads a whole file ("-" is stdin). NotFound / DataLoss naming the path.
absl::StatusOr<std::string> ReadInputFile(const std::string& path);
// Writes a whole file ("-" is stdout). PermissionDenied / DataLoss naming the path.
absl::Status WriteOutputFile(const std::string& path, std::string_view data);

}  // namespace cybersyn::alerter

#endif  // CYBERSYN_ALERTER_BACKTEST_H_
