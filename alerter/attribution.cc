#include "alerter/attribution.h"

#include <algorithm>
#include <cmath>

namespace cybersyn::alerter {
namespace {

double Ratio(const BaseMove* m) {
  if (m == nullptr || m->forecast == 0 || !std::isfinite(m->forecast) ||
      !std::isfinite(m->observed)) {
    return 1;
  }
  const double r = m->observed / m->forecast;
  return r > 0 ? r : 1;  // a base that fell to zero or changed sign gives no usable ratio
}

}  // namespace

double ExpectedIndexMove(double index_forecast, const BaseMove* numerator,
                         const BaseMove* denominator) {
  if (!std::isfinite(index_forecast)) return 0;
  return index_forecast * (Ratio(numerator) / Ratio(denominator) - 1);
}

bool Explains(double observed, double forecast, double lower, double upper, double move) {
  const double e = observed - forecast;
  if (e == 0 || !std::isfinite(e) || !std::isfinite(move) || (e > 0) != (move > 0)) return false;
  const double part = e > 0 ? std::min(move, e) : std::max(move, e);
  if (part == 0) return false;
  const double rest = observed - part;
  if (lower == 0 && upper == 0) return std::abs(e - part) <= 1e-9 * std::abs(e);
  return rest >= std::min(lower, upper) && rest <= std::max(lower, upper);
}

double RolledUpDeparture(RollupShape shape, double departure, int64_t window_ms, int leaves,
                         int64_t at_window_ms, int at_leaves) {
  if (!std::isfinite(departure)) return 0;
  switch (shape) {
    case RollupShape::kSum:
      return window_ms > 0 ? departure * static_cast<double>(at_window_ms) / window_ms : 0;
    case RollupShape::kIntensive:
      return at_leaves > 0 ? departure * std::max(1, leaves) / at_leaves : 0;
    case RollupShape::kPass:
      return departure;
  }
  return 0;
}

}  // namespace cybersyn::alerter
