// Two-sided tabular CUSUM (Page 1954), a baseline for cyberstride.
//
// The in-control mean μ and standard deviation σ come from the first `warmup` values (median
// and 1.4826·MAD), so the chart is scale-free. With x = (y − μ)/σ:
//   C+ = max(0, C+ + x − k),  C− = max(0, C− − x − k).
// While the chart is in control (armed, below the threshold) μ and σ keep being refined robustly
// from the values (`track`, see WarmupBaseline::Track), so a noisy 30-value warm-up does not
// fix the false-signal rate for the life of the series.
//
// The score is calibrated (calibration.h): 2k·max(C+, C−), which for in-control normal values
// has a tail of about e^−s, judged against the peaks of this series' own CUSUM excursions, 0.5
// at its alert budget (`alert_budget` false signals a week). After a signal the chart restarts
// on the values that follow (a fresh warm-up), so a level that has moved becomes the new
// baseline instead of holding the score up; when the new baseline differs from the old by more
// than the 2k σ the chart is designed to find, the verdict carries new_level.
// Thread-safety: none (see Detector).
#ifndef CYBERSYN_ALERTER_DETECTORS_CUSUM_H_
#define CYBERSYN_ALERTER_DETECTORS_CUSUM_H_

#include <memory>
#include <vector>

#include "alerter/detectors/calibration.h"
#include "alerter/detectors/detector.h"
#include "alerter/detectors/internal/detector_util.h"

namespace cybersyn::alerter {

class CusumDetector final : public Detector {
 public:
  static constexpr std::string_view kKind = "cusum";
  static std::vector<ParamSpec> Specs();
  static absl::StatusOr<std::unique_ptr<Detector>> Create(const DetectorParams& params);

  Verdict Update(const Observation& obs) override;
  std::string_view kind() const override { return kKind; }
  std::string Serialize() const override;
  absl::Status Restore(std::string_view blob) override;

 private:
  explicit CusumDetector(const internal::Params& p);

  double k_, interval_z_, track_;
  size_t warmup_size_;
  internal::GateConfig gate_;
  internal::Calibrator calibrator_;

  internal::WarmupBaseline base_;
  double up_ = 0, down_ = 0;
  internal::GateState gs_;
  internal::Calibrator::State cal_;
};

}  // namespace cybersyn::alerter

#endif  // CYBERSYN_ALERTER_DETECTORS_CUSUM_H_
