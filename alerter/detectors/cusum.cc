#include "alerter/detectors/cusum.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"

namespace cybersyn::alerter {
std::vector<ParamSpec> CusumDetector::Specs() {
  std::vector<ParamSpec> specs = {
      {"k", 1.0, "allowance (reference value) in baseline standard deviations"},
      {"interval_z", 1.96, "normal quantile of the reported interval"},
      {"track", 1000,
       "after warm-up, keep refining the in-control mean and scale from in-control values with "
       "a memory of this many values (robust, Huber-clipped); 0: fixed warm-up estimates"},
  };
  for (const ParamSpec& s : internal::CommonParamSpecs(30)) specs.push_back(s);
  for (const ParamSpec& s : internal::CalibrationParamSpecs()) specs.push_back(s);
  return specs;
}

absl::StatusOr<std::unique_ptr<Detector>> CusumDetector::Create(const DetectorParams& params) {
  auto p = internal::ResolveParams(kKind, Specs(), params);
  if (!p.ok()) return p.status();
  if (!(p->Get("k") >= 0 && std::isfinite(p->Get("k")))) {
    return absl::InvalidArgumentError(
        absl::StrCat("parameter 'k' of detector cusum must be >= 0, got ", p->Get("k")));
  }
  if (absl::Status st = internal::CheckCalibrationParams(kKind, *p); !st.ok()) return st;
  return std::unique_ptr<Detector>(new CusumDetector(*p));
}

CusumDetector::CusumDetector(const internal::Params& p)
    : k_(p.Get("k")),
      interval_z_(p.Get("interval_z")),
      track_(p.Get("track")),
      warmup_size_(std::max<size_t>(2, static_cast<size_t>(p.Get("warmup")))),
      gate_(internal::GateConfigFrom(p)),
      calibrator_(p),
      cal_(calibrator_.Fresh()) {}

Verdict CusumDetector::Update(const Observation& obs) {
  Verdict v;
  if (base_.ready) {
    v.forecast = base_.mean;
    v.lower = base_.mean - interval_z_ * base_.sigma;
    v.upper = base_.mean + interval_z_ * base_.sigma;
  }
  if (obs.missing || !std::isfinite(obs.value)) {
    internal::MissingVerdict(gate_, gs_, v);
    return v;
  }
  const bool past = internal::GateSeen(gate_, gs_);
  if (!base_.ready) {
    if (base_.Add(obs.value, warmup_size_)) {
      up_ = down_ = 0;
      // A restarted baseline 2k σ (the shift the chart looks for) from the old one: a new level.
      v.new_level = base_.TakeNewLevel(2 * k_);
    }
    return v;
  }
  const double x = (obs.value - base_.mean) / base_.sigma;
  up_ = std::max(0.0, up_ + x - k_);
  down_ = std::max(0.0, down_ - x - k_);
  // For in-control normal values P(C > c) ≈ e^(−2kc) (Siegmund): 2k·C is a surprise in nats.
  const double s = 2 * std::max(k_, 0.25) * std::max(up_, down_);
  v.score = past ? calibrator_.Score(cal_, s, obs.time_ms, true) : 0;
  const bool above = v.score >= gate_.threshold;
  v.signal = internal::GateDecide(gate_, gs_, past, above);
  if (past) calibrator_.Account(cal_, v.signal);
  if (above) {
    v.kind = SignalKind::kStep;
    v.direction = up_ >= down_ ? Direction::kUp : Direction::kDown;
  } else if (gs_.armed && track_ > 0) {
    base_.Track(obs.value, track_);
  }
  if (v.signal) base_.Restart();  // the values after the signal make the new baseline
  return v;
}

std::string CusumDetector::Serialize() const {
  v1::DetectorState state;
  v1::CusumState& c = *state.mutable_cusum();
  c.set_up(up_);
  c.set_down(down_);
  internal::GateToProto(gs_, c.mutable_gate());
  base_.ToProto(c.mutable_baseline());
  calibrator_.ToProto(cal_, c.mutable_calibration());
  return internal::SerializeState(state);
}

absl::Status CusumDetector::Restore(std::string_view blob) {
  auto state = internal::ParseState(blob, v1::DetectorState::kCusum, kKind);
  if (!state.ok()) return state.status();
  const v1::CusumState& c = state->cusum();
  internal::WarmupBaseline base;
  internal::Calibrator::State cal;
  if (!base.FromProto(c.baseline(), warmup_size_) || !calibrator_.FromProto(c.calibration(), cal)) {
    return internal::CorruptSnapshot(kKind);
  }
  up_ = c.up();
  down_ = c.down();
  gs_ = internal::GateFromProto(c.gate());
  base_ = std::move(base);
  cal_ = cal;
  return absl::OkStatus();
}

}  // namespace cybersyn::alerter
