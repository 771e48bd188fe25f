// Seasonal: the daily (or weekly) cycle of a series (shift patterns, day/night load, weekend
// shutdowns) as a few Fourier harmonics of the time of day (of week), learned online, so that a
// detector judges a value against what is usual at that hour rather than against the day's average.
//
// s(t) = Σ_k a_k cos(kωt) + b_k sin(kωt), k = 1..harmonics, ω = 2π / period, t the observation
// time (UTC). The coefficients are the seasonal component of a dynamic linear model (West &
// Harrison §8.6, in Fourier form) learned by least mean squares from the detector's forecast
// error e: a_k += μ · 2e · cos(kωt), b_k += μ · 2e · sin(kωt), with μ = gap / (memory · period),
// so the cycle is estimated over about `memory` periods whatever the sampling rate. A series
// without a cycle keeps coefficients near zero (their noise is about e·√(harmonics / (memory ·
// values per period)), a few percent of the error for the defaults). A few harmonics store a
// cycle in 2 × harmonics floats, where one factor per slot would need a float per value of the
// period. Sampled too coarsely for the harmonics (a gap above period / (4 · harmonics)), the
// component stays off.
//
// Thread-safety: plain values; one thread at a time (see Detector).
#ifndef CYBERSYN_ALERTER_DETECTORS_SEASONAL_H_
#define CYBERSYN_ALERTER_DETECTORS_SEASONAL_H_

#include <array>
#include <cstdint>

namespace cybersyn::alerter::internal {

struct SeasonalState {
  static constexpr int kMaxHarmonics = 4;
  std::array<float, 2 * kMaxHarmonics> coef{};  // a_1, b_1, a_2, b_2, ...
};

class Seasonal {
 public:
  static constexpr int64_t kDayMs = 86400000;

  // `harmonics` in [0, SeasonalState::kMaxHarmonics] (0: off); `memory` periods behind the
  // estimate.
  Seasonal(int harmonics, double memory, int64_t period_ms = kDayMs);

  // The basis at `time_ms`: cos(kωt), sin(kωt) for k = 1..harmonics.
  struct Basis {
    std::array<double, 2 * SeasonalState::kMaxHarmonics> v{};
  };
  Basis At(int64_t time_ms) const;

  // s(t) for the basis at t; 0 when off or sampled too coarsely for the harmonics.
  double Value(const SeasonalState& s, const Basis& b, double gap_ms) const;
  // One LMS step from the forecast error `error` at the basis' time.
  void Learn(SeasonalState& s, const Basis& b, double error, double gap_ms) const;

  int harmonics() const { return harmonics_; }
  bool Active(double gap_ms) const {
    return harmonics_ > 0 && gap_ms > 0 && gap_ms * 4 * harmonics_ <= period_ms_;
  }

 private:
  int harmonics_;
  double memory_;
  int64_t period_ms_;
};

}  // namespace cybersyn::alerter::internal

#endif  // CYBERSYN_ALERTER_DETECTORS_SEASONAL_H_
