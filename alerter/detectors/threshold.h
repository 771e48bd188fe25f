// Static threshold detector: a value outside [min, max] is an anomaly.
//
// Limits are given (`min`, `max`; either may be omitted) or, with `auto_sigma` > 0 and no
// limit given, learned from the first `warmup` values as median ± auto_sigma · 1.4826·MAD
// (a Shewhart chart). Inside the limits the score is 0; outside it is
// 0.5 + 0.5·g(distance, scale) where scale is `scale` or a tenth of the band (or of the limit).
// Signals are of kind threshold with direction up (above max) or down (below min).
// Thread-safety: none (see Detector).
#ifndef CYBERSYN_ALERTER_DETECTORS_THRESHOLD_H_
#define CYBERSYN_ALERTER_DETECTORS_THRESHOLD_H_

#include <memory>
#include <vector>

#include "alerter/detectors/detector.h"
#include "alerter/detectors/internal/detector_util.h"

namespace cybersyn::alerter {

class ThresholdDetector final : public Detector {
 public:
  static constexpr std::string_view kKind = "threshold";
  static std::vector<ParamSpec> Specs();
  static absl::StatusOr<std::unique_ptr<Detector>> Create(const DetectorParams& params);

  Verdict Update(const Observation& obs) override;
  std::string_view kind() const override { return kKind; }
  std::string Serialize() const override;
  absl::Status Restore(std::string_view blob) override;

 private:
  explicit ThresholdDetector(const internal::Params& p);
  void SetLimits(double min, double max);

  double auto_sigma_, scale_param_;
  bool learn_;
  size_t warmup_size_;
  internal::GateConfig gate_;

  double min_, max_, scale_ = 1;
  internal::WarmupBaseline base_;
  internal::GateState gs_;
};

}  // namespace cybersyn::alerter

#endif  // CYBERSYN_ALERTER_DETECTORS_THRESHOLD_H_
