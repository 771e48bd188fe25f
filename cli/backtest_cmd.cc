// `cybersyn backtest`: run a detector over CSV series offline, write its verdicts and, with
// --labels, score them against labelled anomaly windows (NAB's rules).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "alerter/backtest.h"
#include "alerter/detectors/detector.h"
#include "alerter/evaluation/corpus.h"
#include "alerter/evaluation/evaluate.h"
#include "alerter/evaluation/labels.h"
#include "alerter/evaluation/report.h"
#include "cli/command.h"
#include "common/config.h"

namespace cybersyn::cli {
namespace {

struct BacktestOptions {
  std::string input;
  std::string output;
  std::string labels;
  bool json = false;
  std::string scores_column;
  std::string strip_prefix;
  int threads = 0;
  bool allow_unordered = false;
  std::string detector;
  std::vector<std::string> params;
  std::string config;
  std::string indicator;
};

std::string ParamHelp() {
  std::string out;
  for (std::string_view kind : alerter::DetectorKinds()) {
    absl::StrAppend(&out, "\n  ", std::string(kind), ":");
    for (const alerter::ParamSpec& s : alerter::DetectorParamSpecs(kind)) {
      absl::StrAppend(&out, "\n    ", std::string(s.name), " (default ", s.default_value,
                      "): ", std::string(s.help));
    }
  }
  return out;
}

// The detector kind and parameters from --config/--indicator, --detector and --param.
// Prints the problem and returns the exit code on error.
bool ResolveDetector(const BacktestOptions& o, std::string& kind, alerter::DetectorParams& params,
                     int& exit_code) {
  exit_code = 2;
  kind = "cyberstride";
  std::optional<double> budget;  // from --config: the indicator's alert budget or the default
  if (!o.config.empty()) {
    if (o.indicator.empty()) {
      std::fprintf(stderr, "backtest: --config needs --indicator NAME\n");
      return false;
    }
    auto config = LoadConfigFile(o.config);
    if (!config.ok()) {
      std::fprintf(stderr, "backtest: %s\n", std::string(config.status().message()).c_str());
      exit_code = 1;
      return false;
    }
    const IndicatorConfig* ind = config->FindIndicator(o.indicator);
    if (ind == nullptr) {
      std::fprintf(stderr, "backtest: indicator '%s' is not in %s\n", o.indicator.c_str(),
                   o.config.c_str());
      return false;
    }
    if (ind->detector.kind == DetectorKind::kNone) {
      std::fprintf(stderr, "backtest: indicator '%s' has detector none\n", o.indicator.c_str());
      return false;
    }
    kind = std::string(DetectorKindName(ind->detector.kind));
    for (const auto& [k, v] : ind->detector.params) params[k] = v;
    budget = ind->alert_budget.value_or(config->alerter.alert_budget);
    if (kind == "threshold") {
      if (ind->thresholds.min && !params.contains("min")) params["min"] = *ind->thresholds.min;
      if (ind->thresholds.max && !params.contains("max")) params["max"] = *ind->thresholds.max;
    }
  }
  if (!o.detector.empty()) kind = o.detector;
  for (const std::string& kv : o.params) {
    const size_t eq = kv.find('=');
    double value = 0;
    if (eq == std::string::npos || eq == 0 || !absl::SimpleAtod(kv.substr(eq + 1), &value)) {
      std::fprintf(stderr, "backtest: --param wants key=number, got '%s'\n", kv.c_str());
      return false;
    }
    params[kv.substr(0, eq)] = value;
  }
  if (budget) alerter::ApplyAlertBudget(kind, *budget, params);
  // Fail on a bad kind or parameter before reading any input.
  auto detector = alerter::MakeDetector(kind, params);
  if (!detector.ok()) {
    std::fprintf(stderr, "backtest: %s\n", std::string(detector.status().message()).c_str());
    return false;
  }
  return true;
}

// Checks the combination of options; prints the problem and returns false if it makes no sense.
bool CheckOptions(const BacktestOptions& o, bool input_is_dir) {
  const char* problem = nullptr;
  if (!o.scores_column.empty() && o.labels.empty()) {
    problem = "--scores-column scores existing results: it needs --labels";
  } else if (!o.scores_column.empty() &&
             (!o.detector.empty() || !o.params.empty() || !o.config.empty())) {
    problem = "no detector runs with --scores-column: drop --detector, --param and --config";
  } else if (!o.scores_column.empty() && !o.output.empty()) {
    problem = "--scores-column writes no verdicts: drop --output";
  } else if (!o.labels.empty() && o.output == "-") {
    problem = "with --labels the summary goes to stdout: give --output a file or directory";
  } else if (o.json && o.labels.empty()) {
    problem = "--json prints the --labels summary: it needs --labels";
  } else if (input_is_dir && o.labels.empty() && o.output.empty()) {
    problem = "a directory --input needs --output DIR for the verdicts and/or --labels FILE";
  }
  if (problem != nullptr) std::fprintf(stderr, "backtest: %s\n", problem);
  return problem == nullptr;
}

int RunBacktestCommand(const BacktestOptions& opts) {
  BacktestOptions o = opts;
  std::error_code ec;
  const bool input_is_dir = o.input != "-" && std::filesystem::is_directory(o.input, ec);
  if (!CheckOptions(o, input_is_dir)) return 2;
  std::string kind;
  alerter::DetectorParams params;
  int exit_code = 0;
  if (o.scores_column.empty() && !ResolveDetector(o, kind, params, exit_code)) return exit_code;
  std::optional<alerter::evaluation::Labels> labels;
  if (!o.labels.empty()) {
    auto loaded = alerter::evaluation::Labels::Load(o.labels);
    if (!loaded.ok()) {
      std::fprintf(stderr, "backtest: %s\n", std::string(loaded.status().message()).c_str());
      return 1;
    }
    labels = *std::move(loaded);
  } else if (o.output.empty()) {
    o.output = "-";
  }
  alerter::evaluation::CorpusOptions copts{o.input,        o.output,  o.scores_column,
                                           o.strip_prefix, o.threads, o.allow_unordered};
  const int threads = o.threads > 0 ? o.threads : std::max(1u, std::thread::hardware_concurrency());
  const auto start = std::chrono::steady_clock::now();
  auto corpus =
      alerter::evaluation::RunCorpus(copts, [&] { return alerter::MakeDetector(kind, params); });
  if (!corpus.ok()) {
    std::fprintf(stderr, "backtest: %s\n", std::string(corpus.status().message()).c_str());
    return 1;
  }
  if (!corpus->skipped.empty()) {
    std::fprintf(stderr, "backtest: skipped %zu files without a '%s' column (first: %s)\n",
                 corpus->skipped.size(), o.scores_column.c_str(), corpus->skipped.front().c_str());
  }
  const std::vector<alerter::evaluation::SeriesRun>* runs = &corpus->series;
  int64_t unordered = 0;
  for (const auto& r : *runs) unordered += r.stats.unordered;
  if (unordered > 0) {
    std::fprintf(stderr, "backtest: %lld rows repeat or go back in time; taken in file order\n",
                 static_cast<long long>(unordered));
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (!labels) {
    int64_t rows = 0, missing = 0, signals = 0, resets = 0;
    for (const auto& r : *runs) {
      rows += r.stats.rows;
      missing += r.stats.missing;
      signals += r.stats.signals;
      resets += r.stats.resets;
    }
    std::fprintf(stderr,
                 "backtest: %s: %zu series, %lld rows (%lld missing), %lld signals, %lld resets, "
                 "%.3f s, %.0f rows/s\n",
                 kind.c_str(), runs->size(), static_cast<long long>(rows),
                 static_cast<long long>(missing), static_cast<long long>(signals),
                 static_cast<long long>(resets), seconds, seconds > 0 ? rows / seconds : 0.0);
    return 0;
  }
  auto ev = alerter::evaluation::Evaluate(*runs, *labels);
  if (!ev.ok()) {
    std::fprintf(stderr, "backtest: %s: %s\n", o.labels.c_str(),
                 std::string(ev.status().message()).c_str());
    return 1;
  }
  const alerter::evaluation::RunInfo info{
      o.scores_column.empty() ? kind : absl::StrCat("column ", o.scores_column), o.labels, seconds,
      threads};
  if (o.json) {
    std::printf("%s\n", alerter::evaluation::JsonReport(*ev, *runs, info).dump(2).c_str());
  } else {
    std::fputs(alerter::evaluation::TextReport(*ev, *runs, info).c_str(), stdout);
  }
  return std::fflush(stdout) == 0 ? 0 : 1;
}

}  // namespace

void AddBacktestCommand(CLI::App& app, int& exit_code) {
  auto opts = std::make_shared<BacktestOptions>();
  CLI::App* sub = app.add_subcommand(
      "backtest",
      "Run a detector over CSV series offline, and score it against labelled anomalies");
  sub->add_option("--input", opts->input,
                  "CSV file ('-' for stdin) or a directory: every *.csv under it, on all cores. "
                  "Header 'timestamp,value' or 'timestamp,a,b,...' (each column a series)")
      ->required();
  sub->add_option("--output", opts->output,
                  "where to write verdicts: a file or '-' (stdout, the default without --labels) "
                  "for a file input; a directory mirroring the input tree for a directory input");
  sub->add_option("--labels", opts->labels,
                  "score against labelled anomaly windows: NAB's windows JSON or a CSV "
                  "'series,start,end'; prints the summary to stdout");
  sub->add_flag("--json", opts->json, "print the --labels summary as JSON, for scripts");
  sub->add_option("--scores-column", opts->scores_column,
                  "run no detector: score this column of each input file (e.g. anomaly_score "
                  "in NAB's results files) with NAB's threshold sweep");
  sub->add_option("--strip-prefix", opts->strip_prefix,
                  "drop this prefix from file names when naming series (NAB's results files are "
                  "<detector>_<file>.csv)");
  sub->add_option("--threads", opts->threads, "worker threads (default: one per core)");
  sub->add_flag("--allow-unordered", opts->allow_unordered,
                "accept repeated or decreasing timestamps, taking rows in file order (NAB's "
                "corpus has 38 such rows, local times across daylight-saving changes); "
                "without it they are an error naming the line");
  sub->add_option(
      "--detector", opts->detector,
      absl::StrCat("detector: ",
                   absl::StrJoin(alerter::DetectorKinds(), "|",
                                 [](std::string* out, std::string_view k) { out->append(k); }),
                   " (default cyberstride, or the indicator's in --config)"));
  sub->add_option("--param", opts->params,
                  "detector parameter key=value (repeatable; overrides --config); see below");
  sub->add_option("--config", opts->config, "config file to take the detector and parameters from");
  sub->add_option("--indicator", opts->indicator, "indicator of --config whose detector to use");
  sub->footer(absl::StrCat(
      "Writes, for every row, the detector's anomaly score, classification and whether it would\n"
      "have raised a signal: what the alerter would have said about past data.\n\n"
      "Output columns (one row per input row, in input order; for a file with several value\n"
      "columns each column c gets c, c_score, c_kind, c_signal):\n"
      "  timestamp  echoed as given\n"
      "  value      echoed as given (empty = missing)\n"
      "  score      graded anomaly score in [0,1]; 0.5 is the default signal threshold for\n"
      "             every detector. It stays graded on messy series, so one threshold can be\n"
      "             chosen across many series.\n"
      "  kind       none | step_up/down | slope_up/down | transient_up/down |\n"
      "             threshold_up/down | no_data: what the detector thinks is happening\n"
      "  signal     1 at the onset of an anomaly, where the alerter would raise an algedonic\n"
      "             signal; a persistent anomaly signals once, then the detector re-arms after\n"
      "             `rearm` normal rows. Step vs transient is confirmed one row later.\n"
      "Timestamps must increase strictly: a repeated or earlier one is an error naming its line.\n"
      "Without --labels a summary (rows, signals, rows/s) goes to stderr.\n\n"
      "Scoring (--labels). A series is named by its path relative to --input (a file input:\n"
      "the path as given), plus ':column' for a multi-column file; a label key matches it\n"
      "exactly or as its trailing path (so NAB's 'realKnownCause/nyc_taxi.csv' matches\n"
      "data/realKnownCause/nyc_taxi.csv), and a 'file:column' series falls back to the file's\n"
      "windows. Per series and overall it prints windows detected (recall), false signals per\n"
      "10,000 points outside windows, mean delay from a window's start to its first detection,\n"
      "and the NAB standard, reward_low_FP_rate and reward_low_FN_rate scores (100 = every\n"
      "window detected at its start and nothing else, 0 = nothing detected), two ways:\n"
      "  as raised  every signal = 1 row is a detection: what an operator would receive\n"
      "  swept      NAB's corpus-wide threshold over the signal rows' scores (other rows 0):\n"
      "             how NAB's published scoreboard was computed\n"
      "The first 15% of each series (at most 750 rows) is NAB's probation: nothing scores there.\n"
      "docs/detection.md explains the rules.\n\n"
      "Examples:\n"
      "  cybersyn backtest --input steel.csv --output - --detector cyberstride \\\n"
      "      --param threshold=0.6 --param warmup=30 | awk -F, '$5 == 1'\n"
      "  # a plant's labelled history, one CSV per line, verdicts mirrored under out/:\n"
      "  cybersyn backtest --input history/ --labels incidents.csv --output out/\n"
      "  # the NAB benchmark (58 series; ../shared/data/nab is NAB v1.1):\n"
      "  cybersyn backtest --input nab/data --labels nab/labels/combined_windows.json \\\n"
      "      --allow-unordered\n"
      "  # NAB's published Numenta HTM results, scored from their anomaly_score column:\n"
      "  # standard 70.1, reward_low_FP_rate 63.1, reward_low_FN_rate 74.3 as on NAB's scoreboard\n"
      "  cybersyn backtest --input nab/results/numenta --scores-column anomaly_score \\\n"
      "      --strip-prefix numenta_ --labels nab/labels/combined_windows.json "
      "--allow-unordered\n\n"
      "Detector parameters (--param key=value):",
      ParamHelp()));
  sub->callback([opts, &exit_code] { exit_code = RunBacktestCommand(*opts); });
}

}  // namespace cybersyn::cli
