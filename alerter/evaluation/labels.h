// Labels: the labelled anomaly windows of a set of series, read from either
//   - NAB's windows JSON: {"dir/file.csv": [["2014-04-10 07:15:00.000000", "..."], ...], ...}
//     (a file listed with [] is labelled anomaly-free), or
//   - a CSV with header `series,start,end`, one window per row (a series named by no row is
//     anomaly-free).
// Timestamps take the forms `cybersyn backtest` reads (YYYY-MM-DD HH:MM:SS[.ffffff], RFC 3339,
// epoch milliseconds); windows include both ends.
//
// Series are named by their path relative to the backtest's --input, with `:column` for one
// column of a multi-column file. Find() matches a label key to a series name exactly, else the
// longest key that is the name's trailing path (`realKnownCause/nyc_taxi.csv` matches
// `/data/nab/realKnownCause/nyc_taxi.csv`); a `file:column` series falls back to the file's
// windows.
//
// Thread-safety: immutable after loading; safe to share.
#ifndef CYBERSYN_ALERTER_EVALUATION_LABELS_H_
#define CYBERSYN_ALERTER_EVALUATION_LABELS_H_

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "alerter/evaluation/nab_score.h"

namespace cybersyn::alerter::evaluation {

class Labels {
 public:
  // Parses `text` (JSON if it starts with '{', else CSV); `source` names it in errors, which
  // give the line (CSV) or key and window (JSON) and the field.
  static absl::StatusOr<Labels> Parse(std::string_view text, std::string_view source);
  // Reads and parses a file. NotFound if it cannot be read.
  static absl::StatusOr<Labels> Load(const std::string& path);

  struct Match {
    const std::string* key = nullptr;  // the label key used; null when nothing matched
    const std::vector<Window>* windows = nullptr;
  };
  // The windows of `series` (see the file comment for how names match).
  Match Find(std::string_view series) const;

  using WindowMap = std::map<std::string, std::vector<Window>, std::less<>>;
  const WindowMap& all() const { return windows_; }
  size_t window_count() const;

 private:
  const std::vector<Window>* Lookup(std::string_view name, const std::string** key) const;

  WindowMap windows_;
};

}  // namespace cybersyn::alerter::evaluation

#endif  // CYBERSYN_ALERTER_EVALUATION_LABELS_H_
