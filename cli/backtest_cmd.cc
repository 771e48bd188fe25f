// `cybersyn backtest`: run a detector over a CSV series offline and write its verdicts.
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "alerter/backtest.h"
#include "alerter/detectors/detector.h"
#include "cli/command.h"
#include "common/config.h"

namespace cybersyn::cli {
namespace {

struct BacktestOptions {
  std::string input;
  std::string output = "-";
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

int RunBacktestCommand(const BacktestOptions& o) {
  std::string kind = "cyberstride";
  alerter::DetectorParams params;
  if (!o.config.empty()) {
    if (o.indicator.empty()) {
      std::fprintf(stderr, "backtest: --config needs --indicator NAME\n");
      return 2;
    }
    auto config = LoadConfigFile(o.config);
    if (!config.ok()) {
      std::fprintf(stderr, "backtest: %s\n", std::string(config.status().message()).c_str());
      return 1;
    }
    const IndicatorConfig* ind = config->FindIndicator(o.indicator);
    if (ind == nullptr) {
      std::fprintf(stderr, "backtest: indicator '%s' is not in %s\n", o.indicator.c_str(),
                   o.config.c_str());
      return 2;
    }
    if (ind->detector.kind == DetectorKind::kNone) {
      std::fprintf(stderr, "backtest: indicator '%s' has detector none\n", o.indicator.c_str());
      return 2;
    }
    kind = std::string(DetectorKindName(ind->detector.kind));
    for (const auto& [k, v] : ind->detector.params) params[k] = v;
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
      return 2;
    }
    params[kv.substr(0, eq)] = value;
  }
  auto detector = alerter::MakeDetector(kind, params);
  if (!detector.ok()) {
    std::fprintf(stderr, "backtest: %s\n", std::string(detector.status().message()).c_str());
    return 2;
  }
  auto stats = alerter::RunBacktestFiles(o.input, o.output, **detector);
  if (!stats.ok()) {
    std::fprintf(stderr, "backtest: %s\n", std::string(stats.status().message()).c_str());
    return 1;
  }
  std::fprintf(stderr,
               "backtest: %s: %lld rows (%lld missing), %lld signals, %lld resets, %.3f s, "
               "%.0f rows/s\n",
               kind.c_str(), static_cast<long long>(stats->rows),
               static_cast<long long>(stats->missing), static_cast<long long>(stats->signals),
               static_cast<long long>(stats->resets), stats->seconds,
               stats->seconds > 0 ? stats->rows / stats->seconds : 0.0);
  return 0;
}

}  // namespace

void AddBacktestCommand(CLI::App& app, int& exit_code) {
  auto opts = std::make_shared<BacktestOptions>();
  CLI::App* sub = app.add_subcommand(
      "backtest", "Run a detector over a CSV series offline, to tune it before deploying");
  sub->add_option("--input", opts->input,
                  "CSV with header 'timestamp,value' ('-' for stdin). Timestamps: "
                  "'YYYY-MM-DD HH:MM:SS' (UTC), RFC 3339 or epoch milliseconds; an empty value "
                  "is a missing observation")
      ->required();
  sub->add_option("--output", opts->output, "where to write verdicts ('-' for stdout)")
      ->capture_default_str();
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
      "Output columns (one row per input row, in input order):\n"
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
      "A summary (rows, signals, rows/s) goes to stderr.\n\n"
      "Example:\n"
      "  cybersyn backtest --input steel.csv --output - --detector cyberstride \\\n"
      "      --param threshold=0.6 --param warmup=30 | awk -F, '$5 == 1'\n\n"
      "Detector parameters (--param key=value):",
      ParamHelp()));
  sub->callback([opts, &exit_code] { exit_code = RunBacktestCommand(*opts); });
}

}  // namespace cybersyn::cli
