// Bayesian online changepoint detection (Adams & MacKay 2007), a baseline for cyberstride.
//
// Constant hazard H; Gaussian observations with unknown mean and variance under a
// Normal-Gamma prior (μ0, κ0, α0, β0), so each run length r has a Student-t predictive. The
// prior location and scale come from the first `warmup` values (median, 1.4826·MAD): scale-free.
// The run-length distribution is truncated to `max_run` entries (the longest runs are merged),
// so memory and time per observation are bounded. The score is P(r_t <= window), the posterior
// probability that a change happened in the last `window` observations, scored once the
// run-length distribution reaches beyond the window (before that it is 1 by construction).
// Unlike the other detectors its score is not calibrated to an alert budget: it is a posterior
// probability already, and its evidence for a change saturates below what a rare budget needs
// (a 5σ step reaches P ≈ 0.97, a Bayes factor of e^8).
// Thread-safety: none (see Detector).
#ifndef CYBERSYN_ALERTER_DETECTORS_BOCPD_H_
#define CYBERSYN_ALERTER_DETECTORS_BOCPD_H_

#include <memory>
#include <vector>

#include "alerter/detectors/detector.h"
#include "alerter/detectors/internal/detector_util.h"

namespace cybersyn::alerter {

class BocpdDetector final : public Detector {
 public:
  static constexpr std::string_view kKind = "bocpd";
  static std::vector<ParamSpec> Specs();
  static absl::StatusOr<std::unique_ptr<Detector>> Create(const DetectorParams& params);

  Verdict Update(const Observation& obs) override;
  std::string_view kind() const override { return kKind; }
  std::string Serialize() const override;
  absl::Status Restore(std::string_view blob) override;

 private:
  struct Run {
    double prob, mu, kappa, alpha, beta;
  };
  explicit BocpdDetector(const internal::Params& p);
  Run PriorRun() const;

  double hazard_, kappa0_, alpha0_, interval_z_;
  size_t max_run_, window_, warmup_size_;
  internal::GateConfig gate_;

  internal::WarmupBaseline base_;
  std::vector<Run> runs_;  // runs_[r]: run length r (the last one may hold longer runs)
  std::vector<Run> next_;  // scratch
  std::vector<double> lpred_;
  internal::GateState gs_;
};

}  // namespace cybersyn::alerter

#endif  // CYBERSYN_ALERTER_DETECTORS_BOCPD_H_
