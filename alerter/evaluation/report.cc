#include "alerter/evaluation/report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace cybersyn::alerter::evaluation {
namespace {

std::string Duration(double ms) {
  if (std::isnan(ms)) return "-";
  const double s = ms / 1000;
  if (s < 120) return absl::StrFormat("%.0f s", s);
  if (s < 7200) return absl::StrFormat("%.1f min", s / 60);
  if (s < 2 * 86400) return absl::StrFormat("%.1f h", s / 3600);
  return absl::StrFormat("%.1f d", s / 86400);
}

// `v` with `decimals` decimals, "-" for NaN.
std::string Num(double v, int decimals = 1) {
  return std::isnan(v) ? std::string("-") : absl::StrFormat("%.*f", decimals, v);
}

std::string Threshold(double t) {
  return std::isinf(t) ? std::string("none detected") : absl::StrFormat("threshold %.4f", t);
}

std::string Recall(const SeriesScore& s) {
  return absl::StrFormat("%d/%d (%s)", s.detected, s.scorable_windows, Num(s.Recall(), 2));
}

void SeriesTable(const Evaluation& ev, const std::vector<SeriesRun>& runs, std::string& out) {
  const bool raised = !ev.as_raised.empty();
  size_t width = 6;
  for (const std::string& n : ev.names) width = std::max(width, std::min<size_t>(n.size(), 64));
  const int w = static_cast<int>(width);
  // As raised when there are signals, else at the swept standard threshold.
  const std::vector<SeriesScore>& counts = raised ? ev.as_raised[0].series : ev.swept[0].series;
  absl::StrAppendFormat(&out, "%-*s %8s %4s %4s %6s %7s %9s %8s %8s\n", w, "series", "rows", "win",
                        "det", "false", "f/10k", "delay", raised ? "raised" : "", "swept");
  for (size_t i = 0; i < ev.names.size(); ++i) {
    const SeriesScore& c = counts[i];
    std::string name = ev.names[i];
    if (name.size() > width) name = "..." + name.substr(name.size() - width + 3);
    absl::StrAppendFormat(&out, "%-*s %8d %4d %4d %6d %7s %9s %8s %8.3f\n", w, name,
                          runs[i].stats.rows, c.windows, c.detected, c.false_detections,
                          Num(c.FalsePer10k()), Duration(c.MeanDelayMs()),
                          raised ? absl::StrFormat("%.3f", c.raw) : "", ev.swept[0].series[i].raw);
  }
  absl::StrAppend(
      &out, "(win: labelled windows; det, false, f/10k, delay: ",
      raised ? "as raised" : "at the swept standard threshold",
      "; delay from the window's start; raised/swept: the series' NAB standard raw score)\n\n");
}

}  // namespace

std::string TextReport(const Evaluation& ev, const std::vector<SeriesRun>& runs,
                       const RunInfo& info) {
  std::string out;
  int64_t rows = 0, missing = 0, signals = 0;
  for (const SeriesRun& r : runs) {
    rows += r.stats.rows;
    missing += r.stats.missing;
    signals += r.stats.signals;
  }
  const bool raised = !ev.as_raised.empty();
  absl::StrAppendFormat(&out, "backtest: %s, %d series, %d rows (%d missing)", info.source,
                        runs.size(), rows, missing);
  if (raised) absl::StrAppendFormat(&out, ", %d signals", signals);
  absl::StrAppendFormat(&out, ", %.1f s on %d threads\n", info.seconds, info.threads);
  const SeriesScore& t0 = ev.swept[0].total;
  absl::StrAppendFormat(&out, "labels: %s: %d windows", info.labels, t0.windows);
  if (t0.scorable_windows != t0.windows) {
    absl::StrAppendFormat(&out, " (%d wholly in probation)", t0.windows - t0.scorable_windows);
  }
  if (!ev.unlabelled.empty()) {
    absl::StrAppendFormat(&out, "; %d series not in the labels, scored as anomaly-free (first: %s)",
                          ev.unlabelled.size(), ev.unlabelled.front());
  }
  if (!ev.unused_keys.empty()) {
    absl::StrAppendFormat(&out, "; %d labelled series not in the input", ev.unused_keys.size());
  }
  if (ev.windows_without_rows > 0) {
    absl::StrAppendFormat(&out, "; %d windows hold no row (ignored)", ev.windows_without_rows);
  }
  out += "\n\n";
  SeriesTable(ev, runs, out);

  absl::StrAppendFormat(&out, "%-30s %16s   %s\n", "overall", raised ? "as raised" : "",
                        "swept (NAB's corpus-wide threshold)");
  for (size_t p = 0; p < ev.swept.size(); ++p) {
    absl::StrAppendFormat(&out, "%-30s %16s   %6.1f  (%s)\n",
                          "NAB " + std::string(ev.swept[p].profile.name),
                          raised ? Num(ev.as_raised[p].total.Normalized()) : "",
                          ev.swept[p].total.Normalized(), Threshold(ev.swept[p].threshold));
  }
  const SeriesScore empty;
  const SeriesScore& r = raised ? ev.as_raised[0].total : empty;
  const SeriesScore& s = ev.swept[0].total;
  auto line = [&](const char* what, const std::string& a, const std::string& b) {
    absl::StrAppendFormat(&out, "%-30s %16s   %s\n", what, raised ? a : "", b);
  };
  line("windows detected (recall)", Recall(r), absl::StrCat(Recall(s), " at standard threshold"));
  line("false signals per 10k points", Num(r.FalsePer10k()),
       absl::StrFormat("%6s", Num(s.FalsePer10k())));
  line("false signals", absl::StrCat(r.false_detections),
       absl::StrFormat("%6d", s.false_detections));
  line("mean detection delay", Duration(r.MeanDelayMs()),
       absl::StrFormat("%6s", Duration(s.MeanDelayMs())));
  out +=
      "(NAB scores: 100 = every window detected at its start and nothing else, 0 = nothing "
      "detected; rows in each series' probation, its first 15% up to 750 rows, do not count)\n";
  return out;
}

namespace {

nlohmann::json Finite(double v) { return std::isfinite(v) ? nlohmann::json(v) : nullptr; }

nlohmann::json Counts(const SeriesScore& s) {
  return {{"windows", s.scorable_windows},
          {"detected", s.detected},
          {"recall", Finite(s.Recall())},
          {"detections", s.detections},
          {"false_signals", s.false_detections},
          {"points_outside_windows", s.points_outside},
          {"false_per_10k", s.FalsePer10k()},
          {"mean_delay_rows", Finite(s.MeanDelayRows())},
          {"mean_delay_seconds", Finite(s.MeanDelayMs() / 1000)}};
}

nlohmann::json Scores(const CorpusScore& c, const SeriesScore& s, bool threshold) {
  nlohmann::json j = Counts(s);
  j["score"] = Finite(s.Normalized());
  j["raw"] = s.raw;
  j["null"] = s.null_raw;
  j["perfect"] = s.perfect;
  if (threshold) j["threshold"] = Finite(c.threshold);
  return j;
}

nlohmann::json Modes(const Evaluation& ev, size_t series, bool total) {
  nlohmann::json j;
  auto add = [&](const char* mode, const std::vector<CorpusScore>& scores, bool threshold) {
    for (const CorpusScore& c : scores) {
      j[mode][std::string(c.profile.name)] =
          Scores(c, total ? c.total : c.series[series], threshold);
    }
  };
  if (!ev.as_raised.empty()) add("as_raised", ev.as_raised, false);
  add("swept", ev.swept, true);
  return j;
}

}  // namespace

nlohmann::json JsonReport(const Evaluation& ev, const std::vector<SeriesRun>& runs,
                          const RunInfo& info) {
  nlohmann::json j;
  int64_t rows = 0, signals = 0, missing = 0;
  nlohmann::json series = nlohmann::json::array();
  for (size_t i = 0; i < runs.size(); ++i) {
    rows += runs[i].stats.rows;
    signals += runs[i].stats.signals;
    missing += runs[i].stats.missing;
    nlohmann::json s = Modes(ev, i, false);
    s["name"] = ev.names[i];
    s["rows"] = runs[i].stats.rows;
    series.push_back(std::move(s));
  }
  j["source"] = info.source;
  j["labels"] = {{"file", info.labels},
                 {"windows", ev.swept.empty() ? 0 : ev.swept[0].total.windows},
                 {"unlabelled_series", ev.unlabelled},
                 {"unused_keys", ev.unused_keys},
                 {"windows_without_rows", ev.windows_without_rows}};
  j["rows"] = rows;
  j["missing"] = missing;
  if (!ev.as_raised.empty()) j["signals"] = signals;
  j["seconds"] = info.seconds;
  j["overall"] = Modes(ev, 0, true);
  j["series"] = std::move(series);
  return j;
}

}  // namespace cybersyn::alerter::evaluation
