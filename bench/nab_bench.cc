// NAB benchmark: every detector, with its defaults, over the 58 series of the Numenta Anomaly
// Benchmark (NAB v1.1) in one run, scored by `cybersyn backtest --labels`'s scorer
// (alerter/evaluation/): NAB standard, reward_low_FP_rate and reward_low_FN_rate, swept
// (NAB's corpus-wide threshold over the signal rows' scores) and as raised (every signal a
// detection); recall and false signals per 10,000 points; Update cost in ns per point (thread
// CPU time, median of --runs) with its ratio to EWMA's measured in the same run. NAB's
// published scoreboard is printed beside, and Numenta HTM is re-scored from NAB's per-row
// results when the directory has them (a check of the scorer: 70.1 / 63.2 / 74.3).
//
//   nab_bench --nab DIR [--labels FILE] [--detectors cyberstride,ewma,...]
//             [--param kind:key=value ...] [--runs N] [--threads N] [--json]
//
// DIR is NAB's root (data/, labels/combined_windows.json, optionally results/numenta/).
// --labels overrides the labels file (the smoke test runs on alerter/evaluation/testdata/nab).
// docs/detection.md lists the figures.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "alerter/detectors/detector.h"
#include "alerter/evaluation/corpus.h"
#include "alerter/evaluation/evaluate.h"
#include "alerter/evaluation/labels.h"
#include "nlohmann/json.hpp"

namespace cybersyn::alerter::evaluation {
namespace {

struct Options {
  std::string nab;
  std::string labels;  // default: <nab>/labels/combined_windows.json
  std::vector<std::string> detectors;
  std::map<std::string, DetectorParams> params;  // by kind
  int runs = 3;
  int threads = 0;
  bool json = false;
};

// NAB's scoreboard (the README of github.com/numenta/NAB; Numenta HTM's row, a range there, from
// NAB's results/final_results.json, which its per-row results reproduce).
struct Reference {
  const char* name;
  double standard, low_fp, low_fn;
};
constexpr double kNone = std::numeric_limits<double>::quiet_NaN();
const Reference kReferences[] = {
    {"ARTime", 74.9, 65.1, 80.4},
    {"Numenta HTM", 70.1, 63.1, 74.3},
    {"CAD OSE", 69.9, 67.0, 73.2},
    {"KNN CAD", 58.0, 43.4, 64.8},
    {"Relative Entropy", 54.6, 47.6, 58.8},
    {"Windowed Gaussian", 39.6, 20.9, 47.4},
    {"Bayesian Changepoint", 17.7, 3.2, 32.2},
};

struct Result {
  std::string name;
  Evaluation ev;
  int64_t rows = 0;
  std::vector<double> ns_per_point;  // one per run
  double Ns() const {
    std::vector<double> v = ns_per_point;
    std::sort(v.begin(), v.end());
    return v.empty() ? kNone : v[v.size() / 2];
  }
};

[[noreturn]] void Usage(const char* problem) {
  std::fprintf(stderr,
               "nab_bench: %s\nusage: nab_bench --nab DIR [--labels FILE] [--detectors a,b,...] "
               "[--param kind:key=value ...] [--runs N] [--threads N] [--json]\n",
               problem);
  std::exit(2);
}

Options ParseArgs(int argc, char** argv) {
  Options o;
  for (std::string_view k : DetectorKinds()) {
    if (k != "threshold") o.detectors.emplace_back(k);  // threshold needs a plant's limits
  }
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) Usage(("missing value after " + a).c_str());
      return argv[++i];
    };
    if (a == "--nab") {
      o.nab = value();
    } else if (a == "--labels") {
      o.labels = value();
    } else if (a == "--detectors") {
      o.detectors = absl::StrSplit(value(), ',', absl::SkipEmpty());
    } else if (a == "--param") {
      const std::string kv = value();
      const size_t colon = kv.find(':'), eq = kv.find('=');
      double v;
      if (colon == std::string::npos || eq == std::string::npos || eq < colon ||
          !absl::SimpleAtod(kv.substr(eq + 1), &v)) {
        Usage(("--param wants kind:key=number, got " + kv).c_str());
      }
      o.params[kv.substr(0, colon)][kv.substr(colon + 1, eq - colon - 1)] = v;
    } else if (a == "--runs") {
      if (!absl::SimpleAtoi(value(), &o.runs) || o.runs < 1) Usage("--runs wants N >= 1");
    } else if (a == "--threads") {
      if (!absl::SimpleAtoi(value(), &o.threads) || o.threads < 0) Usage("--threads wants N");
    } else if (a == "--json") {
      o.json = true;
    } else {
      Usage(("unknown argument " + a).c_str());
    }
  }
  if (o.nab.empty()) Usage("--nab DIR is required (NAB v1.1's root: data/, labels/)");
  if (o.labels.empty()) o.labels = o.nab + "/labels/combined_windows.json";
  return o;
}

// Runs `kind` over NAB --runs times (the scores are deterministic; only the cost varies).
Result RunDetector(const Options& o, const Labels& labels, const std::string& kind) {
  Result r;
  r.name = kind;
  const DetectorParams params = o.params.contains(kind) ? o.params.at(kind) : DetectorParams{};
  const CorpusOptions copts{o.nab + "/data", "", "", "", o.threads, /*allow_unordered=*/true};
  for (int run = 0; run < o.runs; ++run) {
    auto corpus = RunCorpus(copts, [&] { return MakeDetector(kind, params); });
    if (!corpus.ok()) {
      std::fprintf(stderr, "nab_bench: %s: %s\n", kind.c_str(),
                   std::string(corpus.status().message()).c_str());
      std::exit(1);
    }
    double ns = 0;
    r.rows = 0;
    for (const SeriesRun& s : corpus->series) {
      ns += s.stats.update_ns;
      r.rows += s.stats.rows;
    }
    r.ns_per_point.push_back(ns / std::max<int64_t>(r.rows, 1));
    if (run == 0) {
      auto ev = Evaluate(corpus->series, labels);
      if (!ev.ok()) {
        std::fprintf(stderr, "nab_bench: %s\n", std::string(ev.status().message()).c_str());
        std::exit(1);
      }
      r.ev = *std::move(ev);
    }
  }
  return r;
}

// Numenta HTM's published per-row anomaly scores, re-scored; nullopt without results/numenta.
std::optional<Evaluation> RescoreHtm(const Options& o, const Labels& labels) {
  const std::string dir = o.nab + "/results/numenta";
  if (!std::filesystem::is_directory(dir)) return std::nullopt;
  const CorpusOptions copts{dir, "", "anomaly_score", "numenta_", o.threads, true};
  auto corpus = RunCorpus(copts, nullptr);
  if (!corpus.ok()) return std::nullopt;
  auto ev = Evaluate(corpus->series, labels);
  if (!ev.ok()) return std::nullopt;
  return *std::move(ev);
}

std::string Cell(double v, int width = 7) {
  char buf[32];
  if (std::isnan(v)) {
    std::snprintf(buf, sizeof(buf), "%*s", width, "-");
  } else {
    std::snprintf(buf, sizeof(buf), "%*.1f", width, v);
  }
  return buf;
}

void PrintTable(const std::vector<Result>& results, const std::optional<Evaluation>& htm,
                double ewma_ns) {
  std::printf("%-22s %-23s   %-23s   %-13s   %-11s   %s\n", "", "------- swept -------",
              "----- as raised -----", "false/10k", "recall", "ns/point");
  std::printf("%-22s %7s %7s %7s   %7s %7s %7s   %6s %6s   %5s %5s   %s\n", "detector", "std",
              "low-FP", "low-FN", "std", "low-FP", "low-FN", "raised", "swept", "raisd", "swept",
              "(vs ewma)");
  for (const Result& r : results) {
    const auto& s = r.ev.swept;
    const auto& a = r.ev.as_raised;
    std::printf("%-22s %s %s %s   %s %s %s   %6.1f %6.1f   %5.2f %5.2f   %.0f (%.2fx)\n",
                r.name.c_str(), Cell(s[0].total.Normalized()).c_str(),
                Cell(s[1].total.Normalized()).c_str(), Cell(s[2].total.Normalized()).c_str(),
                Cell(a[0].total.Normalized()).c_str(), Cell(a[1].total.Normalized()).c_str(),
                Cell(a[2].total.Normalized()).c_str(), a[0].total.FalsePer10k(),
                s[0].total.FalsePer10k(), a[0].total.Recall(), s[0].total.Recall(), r.Ns(),
                ewma_ns > 0 ? r.Ns() / ewma_ns : kNone);
  }
  std::printf("\npublished (NAB scoreboard, swept)\n");
  for (const Reference& ref : kReferences) {
    std::printf("%-22s %s %s %s\n", ref.name, Cell(ref.standard).c_str(), Cell(ref.low_fp).c_str(),
                Cell(ref.low_fn).c_str());
    if (htm && std::strcmp(ref.name, "Numenta HTM") == 0) {
      const auto& s = htm->swept;
      std::printf("%-22s %s %s %s   <- NAB's per-row results re-scored here\n", "  re-scored",
                  Cell(s[0].total.Normalized()).c_str(), Cell(s[1].total.Normalized()).c_str(),
                  Cell(s[2].total.Normalized()).c_str());
    }
  }
}

nlohmann::json Json(const std::vector<Result>& results, const std::optional<Evaluation>& htm,
                    double ewma_ns) {
  auto scores = [](const std::vector<CorpusScore>& v) {
    nlohmann::json j;
    for (const CorpusScore& c : v) j[std::string(c.profile.name)] = c.total.Normalized();
    return j;
  };
  nlohmann::json j;
  for (const Result& r : results) {
    const SeriesScore& a = r.ev.as_raised[0].total;
    const SeriesScore& s = r.ev.swept[0].total;
    j["detectors"][r.name] = {
        {"swept", scores(r.ev.swept)},
        {"as_raised", scores(r.ev.as_raised)},
        {"false_per_10k", {{"as_raised", a.FalsePer10k()}, {"swept", s.FalsePer10k()}}},
        {"recall", {{"as_raised", a.Recall()}, {"swept", s.Recall()}}},
        {"ns_per_point", r.Ns()},
        {"ns_per_point_runs", r.ns_per_point},
        {"vs_ewma", ewma_ns > 0 ? r.Ns() / ewma_ns : 0.0}};
  }
  if (htm) j["numenta_htm_rescored"] = scores(htm->swept);
  for (const Reference& ref : kReferences) {
    auto v = [](double x) { return std::isnan(x) ? nlohmann::json(nullptr) : nlohmann::json(x); };
    j["published"][ref.name] = {{"standard", v(ref.standard)},
                                {"reward_low_FP_rate", v(ref.low_fp)},
                                {"reward_low_FN_rate", v(ref.low_fn)}};
  }
  return j;
}

int Main(int argc, char** argv) {
  const Options o = ParseArgs(argc, argv);
  auto labels = Labels::Load(o.labels);
  if (!labels.ok()) {
    std::fprintf(stderr, "nab_bench: %s\n", std::string(labels.status().message()).c_str());
    return 1;
  }
  std::vector<Result> results;
  double ewma_ns = 0;
  for (const std::string& kind : o.detectors) {
    results.push_back(RunDetector(o, *labels, kind));
    if (kind == "ewma") ewma_ns = results.back().Ns();
  }
  if (ewma_ns == 0) ewma_ns = RunDetector(o, *labels, "ewma").Ns();  // the cost baseline
  const std::optional<Evaluation> htm = RescoreHtm(o, *labels);
  if (o.json) {
    std::printf("%s\n", Json(results, htm, ewma_ns).dump(2).c_str());
    return 0;
  }
  const int threads = o.threads > 0 ? o.threads : std::thread::hardware_concurrency();
  std::printf(
      "NAB v1.1 (%s): %lld points, %d windows; defaults%s; %d threads; ns/point: median "
      "of %d runs, thread CPU time\n\n",
      o.nab.c_str(), static_cast<long long>(results.empty() ? 0 : results[0].rows),
      results.empty() ? 0 : results[0].ev.swept[0].total.windows,
      o.params.empty() ? "" : " but --param", threads, o.runs);
  PrintTable(results, htm, ewma_ns);
  return 0;
}

}  // namespace
}  // namespace cybersyn::alerter::evaluation

int main(int argc, char** argv) { return cybersyn::alerter::evaluation::Main(argc, argv); }
