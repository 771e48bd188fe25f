#include "alerter/detectors/internal/synthetic.h"

#include <cmath>
#include <random>

namespace cybersyn::alerter::internal {

std::string_view FaultName(Fault fault) {
  switch (fault) {
    case Fault::kNone:
      return "none";
    case Fault::kStep:
      return "step";
    case Fault::kSlope:
      return "slope";
    case Fault::kTransient:
      return "transient";
  }
  return "none";
}

std::vector<double> Generate(const SyntheticSpec& spec) {
  std::mt19937_64 rng(spec.seed);
  auto uniform = [&rng] { return (static_cast<double>(rng() >> 11) + 0.5) * 0x1.0p-53; };
  double spare = 0;
  bool has_spare = false;
  auto normal = [&] {
    if (has_spare) {
      has_spare = false;
      return spare;
    }
    const double u = uniform(), v = uniform();
    const double r = std::sqrt(-2 * std::log(u));
    spare = r * std::sin(2 * M_PI * v);
    has_spare = true;
    return r * std::cos(2 * M_PI * v);
  };
  // Student-t: a normal over the root of a chi-square's mean of `dof` squared normals, scaled
  // to unit variance (the t's is dof / (dof − 2)).
  auto draw = [&] {
    if (spec.dof < 3) return normal();
    double chi2 = 0;
    for (int i = 0; i < spec.dof; ++i) {
      const double x = normal();
      chi2 += x * x;
    }
    return normal() / std::sqrt(chi2 / spec.dof) * std::sqrt((spec.dof - 2.0) / spec.dof);
  };
  const double innovation = std::sqrt(1 - spec.ar * spec.ar);
  std::vector<double> out(spec.length);
  double noise = draw();
  for (int64_t t = 0; t < spec.length; ++t) {
    if (t > 0) noise = spec.ar * noise + innovation * draw();
    double fault = 0;
    if (t >= spec.onset) {
      switch (spec.fault) {
        case Fault::kNone:
          break;
        case Fault::kStep:
          fault = spec.magnitude;
          break;
        case Fault::kSlope:
          fault = spec.magnitude * static_cast<double>(t - spec.onset + 1);
          break;
        case Fault::kTransient:
          fault = t == spec.onset ? spec.magnitude : 0.0;
          break;
      }
    }
    out[t] = spec.offset + spec.scale * (noise + fault);
  }
  return out;
}

std::vector<Verdict> RunSeries(Detector& detector, const std::vector<double>& values,
                               int64_t step_ms) {
  std::vector<Verdict> out;
  out.reserve(values.size());
  for (size_t t = 0; t < values.size(); ++t) {
    out.push_back(detector.Update({static_cast<int64_t>(t) * step_ms, values[t], false}));
  }
  return out;
}

std::vector<double> PoissonCounts(const std::vector<double>& means, uint64_t seed) {
  std::mt19937_64 rng(seed);
  auto uniform = [&rng] { return (static_cast<double>(rng() >> 11) + 0.5) * 0x1.0p-53; };
  std::vector<double> out;
  out.reserve(means.size());
  for (double mean : means) {
    // Knuth: multiply uniforms until the product falls below e^−mean (means here are small).
    const double limit = std::exp(-mean);
    int k = 0;
    for (double p = uniform(); p > limit; p *= uniform()) ++k;
    out.push_back(k);
  }
  return out;
}

int64_t FirstSignal(const std::vector<Verdict>& verdicts, int64_t from, int64_t to) {
  to = std::min<int64_t>(to, verdicts.size());
  for (int64_t t = std::max<int64_t>(from, 0); t < to; ++t) {
    if (verdicts[t].signal) return t;
  }
  return -1;
}

int64_t CountSignals(const std::vector<Verdict>& verdicts, int64_t from, int64_t to) {
  to = std::min<int64_t>(to, verdicts.size());
  int64_t n = 0;
  for (int64_t t = std::max<int64_t>(from, 0); t < to; ++t) n += verdicts[t].signal;
  return n;
}

}  // namespace cybersyn::alerter::internal
