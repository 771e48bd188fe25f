// Cyberstride: the Harrison–Stevens (1971) class II multi-process dynamic linear model, the
// detector Project Cybersyn ran on every indicator (see docs/cyberstride.md).
//
// Four models share the state θ = (level, slope) with y = level + v, v ~ N(0, k_j V):
//   steady (k = 1, evolution variances level_var·V, slope_var·V), transient (k = transient_k),
//   step (level variance step_var·V), slope (slope variance slope_change_var·V).
// Evolution variances are multiples of the learned observation variance V, as in the 1971
// paper, not discounts of the collapsed covariance: with discounts the change models' inflated
// covariance fed back through the collapse into the steady model every observation and kept
// its forecast chasing the data. Each observation runs the 16 (current j, previous i) Kalman
// updates, weighs them by prior × posterior of i × predictive density, and collapses back to
// 4 components by moment matching. The one-step-back probability b(i) of model i, available at
// the next observation, tells a transient from a step (`confirm`).
//
// Scores are taken against a *reference* forecast: the steady model run alone (no collapse, no
// mixing with the change models; outliers winsorised at `clip` s.d. in its update), so that
// an event does not drag the yardstick it is measured with. With z the standardised error
// against it (clipped at `clip`) and g(x, h) = (x/h)² / (1 + (x/h)²), the score is the max of
//   step:       g(|z_t + z_{t−1} + z_{t−2}| / √3, score_scale)
//   transient:  one observation after a candidate (|z| >= candidate_z):
//               b(transient) × g(|z_{t−1}|, transient_scale)
//   cumulative: g(two-sided CUSUM of z with allowance monitor_h/2, monitor_level)
//               (a log Bayes-factor monitor for a shift of monitor_h s.d., West & Harrison
//               §11.4; catches drifts too slow for the window; off by default: on the
//               Tennessee Eastman data it added more false signals than detections)
//   instant:    (1 − P(steady)) × g(|z_t|, transient_scale)   (signals only with confirm = 0)
// A step or slope signal is an intervention: the reference restarts from the multi-process
// posterior, so it follows the new regime. z is deflated by the Student-t/normal quantile
// ratio while V rests on few values. Step vs slope is the larger of the recent
// posterior masses of the two change models.
//
// Departures from the published method, each a parameter: V is learned from the clipped
// reference forecast error (`variance_clip`; 0 restores the mixture-weighted update); a value
// equal to the previous one is skipped as a held sample (`skip_repeats`), because
// sample-and-hold analyser columns otherwise signal at every update.
//
// State: 4 × (level, slope as double; covariance and probability as float) + reference + d, n
// + monitors + gate, persisted in under 256 bytes. The state is held in the persisted
// precision, so a restored detector continues exactly as the original would have.
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
    Component ref;                      // the reference: steady model alone (prob unused)
    double d = 0, n = 0;                // variance learning: S = d / n
    double last = 0;                    // previous (or first) value
    float mon_up = 0, mon_down = 0;     // CUSUM of clipped reference errors (>= 0)
    float acc_step = 0, acc_slope = 0;  // recent posterior mass of step / slope
    float z1 = 0, z2 = 0;               // previous two clipped reference errors
    float pend_z = 0;                   // standardised error of the pending candidate
    internal::GateState gate;
    uint8_t phase = 0;    // 0 empty, 1 first value seen, 2 running
    uint8_t pending = 0;  // a candidate awaits confirmation at this observation
    int8_t pend_dir = 0;
    uint8_t pad = 0;
  };

  explicit CyberstrideDetector(const internal::Params& p);
  void Init(double y, double s0);
  void Intervene(SignalKind kind);

  // Configuration.
  std::array<double, kNumModels> prior_;
  std::array<double, kNumModels> k_;
  std::array<double, kNumModels> wl_, ws_;  // evolution variances of level, slope (× S)
  double variance_discount_, score_scale_, monitor_h_, monitor_level_, clip_;
  double prob_floor_, interval_q_;
  double transient_scale_, candidate_z_, variance_clip_;
  bool confirm_, intervene_, skip_repeats_;
  internal::GateConfig gate_;

  State s_;
};

}  // namespace cybersyn::alerter

#endif  // CYBERSYN_ALERTER_CYBERSTRIDE_H_
