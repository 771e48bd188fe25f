// Update() cost per point of every detector, with the plain EWMA chart as the baseline measured
// in the same run: each benchmark reports ns_per_point and vs_ewma (ratio to the EWMA's cost).
// Target: cyberstride <= 500 ns/point.
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "alerter/detectors/detector.h"
#include "alerter/detectors/internal/synthetic.h"
#include "benchmark/benchmark.h"

namespace cybersyn::alerter {
namespace {

const std::vector<double>& Series() {
  static const std::vector<double> values = [] {
    internal::SyntheticSpec spec{
        internal::Fault::kStep, 1 << 16, 1 << 15, 3.0, 250.0, 1e4, 0.3, 17};
    std::vector<double> v = internal::Generate(spec);
    for (size_t t = 1000; t < v.size(); t += 997) v[t] += 2500;  // occasional transients
    return v;
  }();
  return values;
}

DetectorParams ParamsFor(const std::string& kind) {
  if (kind == "threshold") return {{"min", 9000}, {"max", 11000}};
  return {};
}

// ns per Update over the whole series for `kind` (fresh detector each pass).
double MeasureNs(const std::string& kind, int passes) {
  const auto& values = Series();
  double best = 1e30;
  for (int p = 0; p < passes; ++p) {
    auto det = std::move(MakeDetector(kind, ParamsFor(kind))).value();
    const auto start = std::chrono::steady_clock::now();
    for (size_t t = 0; t < values.size(); ++t) {
      benchmark::DoNotOptimize(det->Update({int64_t(t), values[t], false}));
    }
    const double ns =
        std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - start).count() /
        values.size();
    best = std::min(best, ns);
  }
  return best;
}

double EwmaBaselineNs() {
  static const double ns = MeasureNs("ewma", 5);
  return ns;
}

void BM_Update(benchmark::State& state, std::string kind) {
  const auto& values = Series();
  auto det = std::move(MakeDetector(kind, ParamsFor(kind))).value();
  size_t t = 0;
  int64_t points = 0;
  const auto start = std::chrono::steady_clock::now();
  for (auto _ : state) {
    benchmark::DoNotOptimize(det->Update({int64_t(t), values[t], false}));
    if (++t == values.size()) {
      t = 0;
      det = std::move(MakeDetector(kind, ParamsFor(kind))).value();
    }
    ++points;
  }
  const double ns =
      std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - start).count() /
      std::max<int64_t>(points, 1);
  state.SetItemsProcessed(points);
  state.counters["ns_per_point"] = ns;
  state.counters["vs_ewma"] = ns / EwmaBaselineNs();
}

BENCHMARK_CAPTURE(BM_Update, ewma, std::string("ewma"));
BENCHMARK_CAPTURE(BM_Update, cyberstride, std::string("cyberstride"));
BENCHMARK_CAPTURE(BM_Update, cusum, std::string("cusum"));
BENCHMARK_CAPTURE(BM_Update, bocpd, std::string("bocpd"));
BENCHMARK_CAPTURE(BM_Update, threshold, std::string("threshold"));

void BM_SerializeRestore(benchmark::State& state) {
  auto det = std::move(MakeDetector("cyberstride", {})).value();
  const auto& values = Series();
  for (size_t t = 0; t < 1000; ++t) det->Update({int64_t(t), values[t], false});
  for (auto _ : state) {
    const std::string blob = det->Serialize();
    benchmark::DoNotOptimize(det->Restore(blob));
  }
  state.counters["bytes"] = det->Serialize().size();
}
BENCHMARK(BM_SerializeRestore);

}  // namespace
}  // namespace cybersyn::alerter

BENCHMARK_MAIN();
