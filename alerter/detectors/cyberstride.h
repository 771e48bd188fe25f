// Cyberstride: the Harrison–Stevens (1971) class II multi-process dynamic linear model, the
// detector Project Cybersyn ran on every indicator (see docs/detection.md, "cyberstride").
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
// The model runs on the value less its daily and weekly cycles (seasonal.h). Evidence is taken
// against a *reference* forecast: the steady model run alone (outliers winsorised at `clip` s.d. in
// its update), so that an event does not drag the yardstick it is measured with; its level variance
// adapts to the errors' autocorrelation beyond 0.5 (`level_adapt`). Four statistics: the
// standardised error prewhitened for that autocorrelation (spikes), the last three errors together
// (steps), a two-sided CUSUM log Bayes factor for a shift of monitor_h s.d. (slow shifts, drifts)
// and a variance monitor (bursts). Each is calibrated against the series' own tail to the alert
// budget (calibration.h); the score is the most extreme; the monitors are capped a little beyond
// their threshold, so they drain soon after an event. A step or slope signal is an intervention:
// the reference restarts from the multi-process posterior, and when the gate re-arms after it the
// verdict says new_level.
//
// Departures from the published method, each a parameter: V is learned from the clipped
// reference forecast error (`variance_clip`; 0 restores the mixture-weighted update); a value
// equal to the previous one is skipped as a held sample (`skip_repeats`), because
// sample-and-hold analyser columns otherwise signal at every update; after a signalled change
// (or the variance monitor past its threshold) V is re-learnt from the next `relearn` values.
//
// State: 4 × (level, slope as double; covariance and probability as float) + reference + d, n
// + monitors + autocorrelation + daily and weekly cycles + calibration + gate, 380-450 bytes as a
// CyberstrideState. The state is held in the persisted precision, so a restored detector
// continues exactly as the original would have.
// Thread-safety: none (see Detector).
#ifndef CYBERSYN_ALERTER_DETECTORS_CYBERSTRIDE_H_
#define CYBERSYN_ALERTER_DETECTORS_CYBERSTRIDE_H_

#include <array>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "alerter/detectors/calibration.h"
#include "alerter/detectors/detector.h"
#include "alerter/detectors/internal/detector_util.h"
#include "alerter/detectors/seasonal.h"

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
  static constexpr int kStats = 4;  // spike, 3-value window, level and variance monitors
  static constexpr double kDeflateZ = 3.5;
  static constexpr double kMonitorCap = 3;  // nats a monitor may run beyond its threshold
  static constexpr double kMaxW = 1e5;      // the level variance grows at most this many times
  // Error autocorrelation up to which the noise, not the level, is taken to be correlated (the
  // monitor and the spike statistic correct for it); beyond it the level variance grows.
  static constexpr double kAdaptRho = 0.5;  // normal
                                            // quantile where the t deflation is taken
  struct State {
    std::array<Component, kNumModels> comp;
    Component ref;                      // the reference: steady model alone (prob unused)
    double d = 0, n = 0;                // variance learning: S = d / n
    double last = 0;                    // previous (or first) value
    float mon_up = 0, mon_down = 0;     // CUSUM of clipped reference errors (>= 0)
    float mon_var = 0;                  // CUSUM of their squares (variance monitor)
    float w_factor = 1;                 // the level variance's adaptation factor
    float peak[2] = {0, 0};             // the monitors' current excursion peaks
    float acc_step = 0, acc_slope = 0;  // recent posterior mass of step / slope
    float z1 = 0, z2 = 0;               // previous two clipped reference errors
    float ac0 = 0, ac1 = 0;             // EWMA of z_t², z_t·z_{t−1}: lag-1 autocorrelation
    internal::GateState gate;
    internal::SpacingState spacing;
    std::array<internal::TailState, kStats> tail;  // the series' calibration, per statistic
    internal::SeasonalState seasonal;              // its daily cycle
    internal::SeasonalState weekly;                // and its weekly one
    uint8_t phase = 0;                             // 0 empty, 1 first value seen, 2 running
    uint8_t pending = 0;  // a candidate awaits confirmation at this observation
    int8_t pend_dir = 0;
    uint8_t new_level_pending = 0;  // a step was signalled: its level is confirmed on re-arming
  };

  // Intermediate results of one Update, passed from step to step (defined in the .cc).
  struct Prediction;
  struct Pairs;
  struct Evidence;
  struct Scores;

  explicit CyberstrideDetector(const internal::Params& p);
  void Init(double y, double s0);
  Verdict Initialise(double y, double level, bool missing);  // the first two values
  void Intervene(SignalKind kind);
  void Relearn();                // after a signalled change: V re-learnt from the next values
  void ConfirmHeld(Verdict& v);  // a candidate's value repeated: a step held there
  ModelProbs Probs() const;

  // The steps of Update, in order:
  //   predict   the mixture's one-step forecast (and Coast: a missing value)
  //   update    the reference's error and the 12 (model, previous model) Kalman updates
  //             with their weights, and the observation variance learned
  //   collapse  each model's pairs back into one component (moment matching), the reference
  //   score     the raw evidence: standardised error, 3-value window, cumulative monitor
  //   calibrate the evidence as graded scores in [0, 1]
  //   gate      classification and the onset gate (one signal per anomaly); intervention
  Prediction Predict() const;
  void Coast(const Prediction& pr);
  void UpdateModels(const Prediction& pr, double y, Pairs& u) const;
  void LearnVariance(const Prediction& pr, Pairs& u) const;
  double Collapse(const Prediction& pr, const Pairs& u);  // returns b(transient)
  void UpdateReference(const Pairs& u, double a_floor, double c_floor);
  bool StateIsFinite(const Pairs& u) const;
  Evidence Score(double z, double inv_n, double back_transient, bool past_warmup);
  Scores Calibrate(const Evidence& ev, bool past_warmup);
  void CapMonitors(const Scores& sc, double log_r);
  void Gate(const Evidence& ev, const Scores& sc, bool past_warmup, Verdict& v);

  // Configuration, with the per-observation constants derived once here.
  std::array<double, kNumModels> prior_;
  double transient_k_;                  // observation variance multiplier of the transient model
  double level_var_, slope_var_;        // evolution variances (× S) of steady, transient, slope
  double step_var_, slope_change_var_;  // level (step) and slope (slope model) evolution (× S)
  double slope_ratio_;                  // prior_slope / prior_steady
  double steady_share_;                 // 1 + slope_ratio_: steady pairs also stand for slope's
  double variance_discount_, relearn_, monitor_h_, clip_;
  double prob_floor_, interval_q_;
  internal::StudentQuantileCoef interval_t_, score_t_;  // of interval_q_, kDeflateZ
  double variance_clip_;
  double ar_rate_;
  double adapt_;  // rate at which the level variance adapts (0: fixed)  // 1 / ar_horizon: weight
                  // of a new error in the autocorrelation estimate
  bool confirm_, intervene_, skip_repeats_;
  internal::GateConfig gate_;
  internal::BudgetRate budget_;
  internal::TailModel tail_;
  internal::Seasonal seasonal_, weekly_;

  State s_;
};

}  // namespace cybersyn::alerter

#endif  // CYBERSYN_ALERTER_DETECTORS_CYBERSTRIDE_H_
