// Cyberstride: the Harrison–Stevens (1971) class II multi-process dynamic linear model, the
// detector Project Cybersyn ran on every indicator (see docs/cyberstride.md).
//
// Four models share the state θ = (level, slope) with y = level + v, v ~ N(0, k_j V):
//   steady (k = 1, discounts δ), transient (k = transient_k), step (level discount
//   step_delta_level), slope (slope discount slope_delta_slope).
// Each observation runs the 16 (current j, previous i) Kalman updates, weighs them by prior
// probability × posterior of i × Student-t predictive density (log space), learns the unknown
// observation variance V (d, n, S, optionally discounted) and collapses back to 4 components by
// moment matching. The one-step-back probability of model i at the next observation confirms
// a step against a transient (`confirm`). A cumulative Bayes-factor monitor on the steady
// model's standardised forecast errors (West & Harrison §11.4) accumulates evidence of shifts
// and drifts too small to show in a single observation.
//
// Score (graded, scale-free): max of
//   instant:    P(not steady | y_t) × g(|z_t|, score_scale)
//   confirmed:  one observation later, with the one-step-back probabilities b(i):
//               step  = (b(step) + b(slope)) × g(|z_{t−1} + z'_t| / √2, score_scale)
//               (z'_t: this value against the forecast that treats y_{t−1} as an outlier)
//               transient = b(transient) × g(|z_{t−1}|, transient_scale)
//   cumulative: g(monitor log Bayes factor, monitor_level)
//   reference:  g(recent-vs-established level departure, ref_limit)   (off by default)
// with g(x, h) = (x/h)² / (1 + (x/h)²) and z the forecast error standardised by the steady
// predictive variance. The level and variance are initialised from the first two distinct
// observations, so nothing assumes a scale.
//
// Departures from the published method, each a parameter: V is learned from the clipped
// steady forecast error (`variance_clip`; 0 restores the mixture-weighted update), because on
// messy real series (Tennessee Eastman) the mixture explains frequent jumps away as events and
// keeps V too small; a value equal to the previous one is skipped as a held sample
// (`skip_repeats`), because sample-and-hold analyser columns otherwise signal at every update.
//
// State: 4 × (level, slope as double; covariance and probability as float) + d, n + monitor
// + gate, persisted in about 200 bytes. The state is held in the persisted precision, so a
// restored detector continues exactly as the original would have.
// Thread-safety: none (see Detector).
#ifndef CYBERSYN_ALERTER_CYBERSTRIDE_H_
#define CYBERSYN_ALERTER_CYBERSTRIDE_H_

#include <array>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "alerter/detector.h"
#include "alerter/internal/detector_util.h"

namespace cybersyn::alerter {

class CyberstrideDetector final : public Detector {
 public:
  static constexpr std::string_view kKind = "cyberstride";
  static std::vector<ParamSpec> Specs();
  static absl::StatusOr<std::unique_ptr<Detector>> Create(const DetectorParams& params);

  Verdict Update(const Observation& obs) override;
  std::string_view kind() const override { return kKind; }
  std::string Serialize() const override;
  absl::Status Restore(std::string_view blob) override;

 private:
  enum Model { kSteady = 0, kTransient = 1, kStep = 2, kSlope = 3, kNumModels = 4 };
  struct Component {
    double level = 0, slope = 0;
    float c00 = 0, c01 = 0, c11 = 0;  // posterior covariance of (level, slope)
    float prob = 0;
  };
  struct State {
    std::array<Component, kNumModels> comp;
    double d = 0, n = 0;                // variance learning: S = d / n
    double first = 0;                   // first observation (initialisation)
    double last = 0;                    // previous value (held-value detection)
    float mon_up = 0, mon_down = 0;     // monitor log Bayes factors (>= 0)
    float mon_step = 0, mon_slope = 0;  // posterior mass of step / slope over the run
    double pend_f2 = 0;  // forecast of this observation had the candidate been a transient
    double ref_mean = 0, ref_var = 0, ref_short = 0;  // reference monitor
    float pend_z = 0;                                 // standardised error of the pending candidate
    internal::GateState gate;
    uint8_t phase = 0;    // 0 empty, 1 first value seen, 2 running
    uint8_t pending = 0;  // a candidate awaits confirmation at this observation
    int8_t pend_dir = 0;
    int8_t ref_dir = 0;
  };

  explicit CyberstrideDetector(const internal::Params& p);
  void Init(double y, double s0);
  void Intervene(SignalKind kind);

  // Configuration.
  std::array<double, kNumModels> log_prior_;
  std::array<double, kNumModels> k_;
  std::array<double, kNumModels> wl_, ws_;  // 1/δ − 1 for level, slope
  double variance_discount_, score_scale_, monitor_h_, monitor_level_, monitor_clip_;
  double prob_floor_, interval_q_;
  double transient_scale_, candidate_z_;
  double variance_clip_, ref_short_, ref_long_, ref_limit_;
  bool confirm_, intervene_, skip_repeats_;
  internal::GateConfig gate_;

  State s_;
};

}  // namespace cybersyn::alerter

#endif  // CYBERSYN_ALERTER_CYBERSTRIDE_H_
