// Seeded synthetic series with one labelled fault, for detector tests and the quality harness.
// Deterministic for a given spec (std::mt19937_64 and a Box–Muller transform of our own, so
// the values do not depend on the standard library's distributions).
// Thread-safety: free functions without shared state.
#ifndef CYBERSYN_ALERTER_DETECTORS_INTERNAL_SYNTHETIC_H_
#define CYBERSYN_ALERTER_DETECTORS_INTERNAL_SYNTHETIC_H_

#include <cstdint>
#include <string_view>
#include <vector>

#include "alerter/detectors/detector.h"

namespace cybersyn::alerter::internal {

enum class Fault { kNone, kStep, kSlope, kTransient };
std::string_view FaultName(Fault fault);

struct SyntheticSpec {
  Fault fault = Fault::kNone;
  int64_t length = 1000;
  int64_t onset = 500;
  // Fault size in marginal standard deviations of the noise: the step height, the slope per
  // observation, or the height of the single transient.
  double magnitude = 3.0;
  double scale = 1.0;   // noise standard deviation
  double offset = 0.0;  // series level
  double ar = 0.0;      // AR(1) coefficient of the noise (|ar| < 1)
  uint64_t seed = 1;
  // Degrees of freedom of Student-t innovations (an integer >= 3, scaled to unit variance);
  // 0: normal.
  int dof = 0;
};

std::vector<double> Generate(const SyntheticSpec& spec);

// Runs `detector` over `values` (one observation every `step_ms`, a minute by default, from
// t = 0).
std::vector<Verdict> RunSeries(Detector& detector, const std::vector<double>& values,
                               int64_t step_ms = 60000);

// Poisson counts with the given means, one per value (a count series near zero).
std::vector<double> PoissonCounts(const std::vector<double>& means, uint64_t seed);

// Index of the first signal at or after `from` (and before `to`), or -1.
int64_t FirstSignal(const std::vector<Verdict>& verdicts, int64_t from, int64_t to);
int64_t CountSignals(const std::vector<Verdict>& verdicts, int64_t from, int64_t to);

}  // namespace cybersyn::alerter::internal

#endif  // CYBERSYN_ALERTER_DETECTORS_INTERNAL_SYNTHETIC_H_
