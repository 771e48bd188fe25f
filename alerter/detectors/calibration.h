// Calibration: one meaning for a score on every series, and a signal threshold set by an alert
// budget (docs/detection.md, "The alert budget").
//
// A detector's raw statistic x (larger = more anomalous) is first expressed as a surprise in nats
// under a nominal model, s = −ln P_nominal(X ≥ x) (e.g. s = −ln P(|N(0,1)| ≥ |z|) for a
// standardised error), and each series then learns the real tail of its own s online, by peaks
// over a threshold (Siffer et al., "Anomaly detection in streams with extreme value theory",
// KDD 2017): above the level u = 3 nats, which 5% of values exceed under the nominal model,
//   P(S > s) ≈ q · (1 + ξ (s − u) / σ)^(−1/ξ)            (a generalised Pareto tail)
// where q is the series' own rate of exceeding u, and σ, ξ come from the mean excess over u and
// over a second level u2 = u + 2.3 (the mean excess of a GPD grows linearly with the level, with
// slope ξ / (1 − ξ)). All are exponentially weighted over the last `horizon` values and start
// from the nominal (q = e^−u, ξ = 0, σ = 1) worth `prior` values, so a young series is judged
// by the nominal model and an old one by its own history. A series whose errors are heavier
// tailed, clustered or seasonal thus gets a higher threshold than a clean one, and both raise
// false signals at about the budgeted rate.
//
// The score of a tail probability p against the budgeted false-signal probability per value r
// is 1 − 2^−(ln p / ln r)²: 0.5 exactly at p = r, near 0 for ordinary values, → 1 for values far
// rarer than the budget. So the default threshold 0.5 means "as rare as the budget allows" on
// every series, and one threshold swept across many series selects comparable events.
//
// The budget is in false signals per week; it becomes a probability per value through the
// series' observed spacing (BudgetRate), so 1/week is about 1e-4 per value at one value per
// minute and 1.7e-6 at one per second.
//
// Thread-safety: plain values; one thread at a time (see Detector).
#ifndef CYBERSYN_ALERTER_DETECTORS_CALIBRATION_H_
#define CYBERSYN_ALERTER_DETECTORS_CALIBRATION_H_

#include <bit>
#include <cmath>
#include <cstdint>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "alerter/detectors/internal/detector_util.h"
#include "cybersyn/v1/state.pb.h"

namespace cybersyn::alerter::internal {

// The parameters of calibrated detectors (alert_budget, calibration_horizon, calibration_prior),
// appended to their own; CheckCalibrationParams validates them (InvalidArgument naming one).
std::vector<ParamSpec> CalibrationParamSpecs();
absl::Status CheckCalibrationParams(std::string_view kind, const Params& p);

// −ln P(|N(0,1)| ≥ |z|): the two-sided normal tail in nats (0 at z = 0, ≈ z²/2 for large z).
double NormalSurprise(double z);

// ln x for a positive normal x, to about 1e-9 relative: x = m 2^e with m in [√½, √2), and
// ln m = 2 atanh((m − 1)/(m + 1)) by its series to the 9th power. A calibrated update needs
// several logarithms, and libm's was a tenth of its cost.
inline double FastLog(double x) {
  uint64_t bits = std::bit_cast<uint64_t>(x);
  int e = static_cast<int>((bits >> 52) & 0x7ff) - 1023;
  double m = std::bit_cast<double>((bits & 0x000fffffffffffffULL) | 0x3ff0000000000000ULL);
  if (m > 1.4142135623730951) {
    m *= 0.5;
    ++e;
  }
  const double t = (m - 1) / (m + 1), t2 = t * t;
  const double p = t * (2 + t2 * (2.0 / 3 + t2 * (2.0 / 5 + t2 * (2.0 / 7 + t2 * (2.0 / 9)))));
  return p + e * 0.69314718055994531;
}

// The tail of one statistic's surprise on one series, as exponentially weighted sums.
struct TailState {
  float points = 0;  // values seen
  float n1 = 0;      // values above kLevel1, and the sum of their excesses over it
  float sum1 = 0;
  float n2 = 0;  // values above kLevel2, and the sum of their excesses over it
  float sum2 = 0;
};

class TailModel {
 public:
  // The fitted tail: P(S > s) = q (1 + ξ (s − kLevel1) / σ)^(−1/ξ) for s > kLevel1.
  struct Fit {
    double log_q, xi, sigma;
  };
  static constexpr double kLevel1 = 3.0;  // nats: e^-3 ≈ 5% of nominal values exceed it
  static constexpr double kLevel2 = 5.3;  // nats: about 0.5%

  // `horizon`: values behind the estimate; `prior`: values the nominal model is worth at start.
  TailModel(double horizon, double prior);

  // A fresh tail: the nominal model, worth `prior` values.
  TailState Fresh() const;
  // ln P(S ≥ s) (<= 0) by the fitted tail above kLevel1, interpolated linearly in s below it.
  double LogTail(const TailState& t, double s) const;
  // The surprise s with LogTail(t, s) = log_r: the series' threshold for that probability.
  double Threshold(const TailState& t, double log_r) const;
  // Folds one value's surprise into the tail (all sums decay by 1 − 1/horizon). The caller
  // passes values beyond the alert threshold as the threshold (winsorised): one anomaly, often
  // a run of extreme values, must not teach the series that anomalies are normal.
  void Add(TailState& t, double s) const;

 private:
  Fit FitOf(const TailState& t) const;

  float decay_;
  float prior_;
};

// The budgeted false-signal probability per value from an alert budget per week and the
// series' spacing of values, learned online (exponentially weighted mean of the gaps).
struct SpacingState {
  int64_t last_ms = INT64_MIN;  // INT64_MIN: no value yet
  float mean_gap_ms = 0;        // 0 until two values are seen
  // Signals the series may still raise at its plain threshold: earned at the budgeted rate up
  // to 1, spent by each signal (a token bucket).
  float tokens = 1;
};

class BudgetRate {
 public:
  static constexpr double kWeekMs = 7 * 86400e3;
  explicit BudgetRate(double per_week) : per_week_(per_week) {}

  void Observe(SpacingState& s, int64_t time_ms) const;
  // Budgeted probability per value; before the spacing is known, that of one value a minute.
  double Rate(const SpacingState& s) const;
  // ln of the factor (<= 0) by which a series that has spent its budget must be rarer: every
  // signal beyond the budget makes the next one need a value e^kTighten times rarer, until the
  // budget is earned back. A series with a recurring false alarm (a daily job's spike) thus
  // stays within its budget even before its tail model has learnt the recurrence. The debt is
  // bounded (kMinTokens: at most e^-9): a burst of signals, often one real incident or a young
  // calibration, left the series unable to signal anything for weeks.
  double LogTightening(const SpacingState& s) const;
  // Accounts one value (earns its share of the budget) and, if `signalled`, one signal.
  void Account(SpacingState& s, bool signalled) const;
  static constexpr double kTighten = 3.0;
  static constexpr float kMinTokens = -2;

 private:
  double per_week_;
};

// The calibration of a detector with `n` statistics as a CalibrationState, and back (false if
// `in` does not hold `n` tails).
void CalibrationToProto(const SpacingState& budget, const TailState* tails, int n,
                        v1::CalibrationState* out);
bool CalibrationFromProto(const v1::CalibrationState& in, SpacingState& budget, TailState* tails,
                          int n);

// The calibration of a detector with one statistic (the baselines): its surprise judged against
// the series' own tail, the budget, and the learning.
class Calibrator {
 public:
  struct State {
    SpacingState budget;
    TailState tail;
    float peak = 0;  // a cumulative statistic's current excursion peak
  };
  explicit Calibrator(const Params& p);
  State Fresh() const;
  // The calibrated score of surprise `s` (nats) of the value at `time_ms`, then learnt from:
  // value by value, or for a `cumulative` statistic (a CUSUM, 0 between excursions) by the peak
  // of each excursion when it ends. A value beyond the threshold is learnt as the threshold.
  double Score(State& st, double s, int64_t time_ms, bool cumulative) const;
  // Accounts the value's signal against the budget (call once per scored value).
  void Account(State& st, bool signalled) const { budget_.Account(st.budget, signalled); }
  void ToProto(const State& st, v1::CalibrationState* out) const;
  bool FromProto(const v1::CalibrationState& in, State& st) const;

 private:
  BudgetRate budget_;
  TailModel tail_;
};

// 1 − 2^−(ln p / ln r)²: 0.5 at p = r. `log_p` = ln p <= 0, `log_r` = ln r < 0.
inline double CalibratedScore(double log_p, double log_r) {
  const double x = log_p / log_r;
  return 1.0 - std::exp2(-x * x);
}

}  // namespace cybersyn::alerter::internal

#endif  // CYBERSYN_ALERTER_DETECTORS_CALIBRATION_H_
