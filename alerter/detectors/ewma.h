// EWMA control chart (Roberts 1959), a baseline for cyberstride.
//
// The in-control mean μ and standard deviation σ come from the first `warmup` values (median
// and 1.4826·MAD), so the chart is scale-free. After warm-up z_t = λ y_t + (1 − λ) z_{t−1} and
// the statistic is x = |z_t − μ| / (σ √(λ / (2 − λ))), a standard normal when in control. While
// the chart is in control (armed, below the threshold) μ and σ keep being refined robustly from
// the values (`track`, see WarmupBaseline::Track), so a noisy 30-value warm-up does not fix the
// false-signal rate for the life of the series.
//
// The score is calibrated (calibration.h): x as a normal surprise, judged against this series'
// own tail of it, 0.5 at its alert budget (`alert_budget` false signals a week), so a drifting
// channel and a steady one signal equally rarely. After a signal the chart restarts (a fresh
// warm-up on the values that follow, as after an out-of-control investigation): a level that
// has moved becomes the new baseline instead of holding the score up for the life of the
// series, and when the new baseline differs from the old by more than `limit` of the old
// σ the verdict carries new_level. Signals are classified as steps with a direction.
// Thread-safety: none (see Detector).
#ifndef CYBERSYN_ALERTER_DETECTORS_EWMA_H_
#define CYBERSYN_ALERTER_DETECTORS_EWMA_H_

#include <memory>
#include <vector>

#include "alerter/detectors/calibration.h"
#include "alerter/detectors/detector.h"
#include "alerter/detectors/internal/detector_util.h"

namespace cybersyn::alerter {

class EwmaDetector final : public Detector {
 public:
  static constexpr std::string_view kKind = "ewma";
  static std::vector<ParamSpec> Specs();
  static absl::StatusOr<std::unique_ptr<Detector>> Create(const DetectorParams& params);

  Verdict Update(const Observation& obs) override;
  std::string_view kind() const override { return kKind; }
  std::string Serialize() const override;
  absl::Status Restore(std::string_view blob) override;

 private:
  explicit EwmaDetector(const internal::Params& p);

  double lambda_, limit_, interval_z_, track_;
  size_t warmup_size_;
  internal::GateConfig gate_;
  internal::Calibrator calibrator_;

  internal::WarmupBaseline base_;
  double ewma_ = 0;
  internal::GateState gs_;
  internal::Calibrator::State cal_;
};

}  // namespace cybersyn::alerter

#endif  // CYBERSYN_ALERTER_DETECTORS_EWMA_H_
