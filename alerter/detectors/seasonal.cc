#include "alerter/detectors/seasonal.h"

#include <algorithm>
#include <cmath>

namespace cybersyn::alerter::internal {

Seasonal::Seasonal(int harmonics, double memory, int64_t period_ms)
    : harmonics_(std::clamp(harmonics, 0, SeasonalState::kMaxHarmonics)),
      memory_(std::max(memory, 1.0)),
      period_ms_(period_ms) {}

Seasonal::Basis Seasonal::At(int64_t time_ms) const {
  Basis b;
  if (harmonics_ == 0) return b;
  int64_t phase = time_ms % period_ms_;
  if (phase < 0) phase += period_ms_;
  // sin and cos of the half angle y in [−π/2, π/2) by their Taylor series (error < 1e-7), then
  // the double angle: no libm call per value.
  const double y = M_PI * static_cast<double>(phase) / static_cast<double>(period_ms_) - M_PI_2;
  const double y2 = y * y;
  const double sy =
      y * (1 + y2 * (-1.0 / 6 +
                     y2 * (1.0 / 120 +
                           y2 * (-1.0 / 5040 + y2 * (1.0 / 362880 + y2 * (-1.0 / 39916800))))));
  const double cy =
      1 + y2 * (-0.5 + y2 * (1.0 / 24 + y2 * (-1.0 / 720 +
                                              y2 * (1.0 / 40320 + y2 * (-1.0 / 3628800 +
                                                                        y2 * (1.0 / 479001600))))));
  // x = 2y + π: cos x = −cos 2y, sin x = −sin 2y.
  const double c1 = -(cy * cy - sy * sy), s1 = -2 * sy * cy;
  double c = c1, s = s1;
  for (int k = 0; k < harmonics_; ++k) {
    b.v[2 * k] = c;
    b.v[2 * k + 1] = s;
    // cos((k+1)x), sin((k+1)x) by one complex multiplication.
    const double cn = c * c1 - s * s1;
    s = s * c1 + c * s1;
    c = cn;
  }
  return b;
}

double Seasonal::Value(const SeasonalState& s, const Basis& b, double gap_ms) const {
  if (!Active(gap_ms)) return 0.0;
  double v = 0;
  for (int i = 0; i < 2 * harmonics_; ++i) v += s.coef[i] * b.v[i];
  return v;
}

void Seasonal::Learn(SeasonalState& s, const Basis& b, double error, double gap_ms) const {
  if (!Active(gap_ms)) return;
  const double mu2 = 2 * gap_ms / (memory_ * static_cast<double>(period_ms_));
  for (int i = 0; i < 2 * harmonics_; ++i) {
    s.coef[i] = static_cast<float>(s.coef[i] + mu2 * error * b.v[i]);
  }
}

}  // namespace cybersyn::alerter::internal
