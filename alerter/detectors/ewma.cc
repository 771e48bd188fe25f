#include "alerter/detectors/ewma.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"

namespace cybersyn::alerter {
std::vector<ParamSpec> EwmaDetector::Specs() {
  std::vector<ParamSpec> specs = {
      {"lambda", 0.2, "EWMA weight of the newest value (0..1]"},
      {"limit", 3.0,
       "a restarted baseline this many old s.d. away from the old one is a new level"},
      {"interval_z", 1.96, "normal quantile of the reported interval"},
      {"track", 1000,
       "after warm-up, keep refining the in-control mean and scale from in-control values with "
       "a memory of this many values (robust, Huber-clipped); 0: fixed warm-up estimates"},
  };
  for (const ParamSpec& s : internal::CommonParamSpecs(30)) specs.push_back(s);
  for (const ParamSpec& s : internal::CalibrationParamSpecs()) specs.push_back(s);
  return specs;
}

absl::StatusOr<std::unique_ptr<Detector>> EwmaDetector::Create(const DetectorParams& params) {
  auto p = internal::ResolveParams(kKind, Specs(), params);
  if (!p.ok()) return p.status();
  if (!(p->Get("lambda") > 0 && p->Get("lambda") <= 1)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "parameter 'lambda' of detector ewma must be in (0, 1], got ", p->Get("lambda")));
  }
  if (!(p->Get("limit") > 0 && std::isfinite(p->Get("limit")))) {
    return absl::InvalidArgumentError(
        absl::StrCat("parameter 'limit' of detector ewma must be > 0, got ", p->Get("limit")));
  }
  if (absl::Status st = internal::CheckCalibrationParams(kKind, *p); !st.ok()) return st;
  return std::unique_ptr<Detector>(new EwmaDetector(*p));
}

EwmaDetector::EwmaDetector(const internal::Params& p)
    : lambda_(p.Get("lambda")),
      limit_(p.Get("limit")),
      interval_z_(p.Get("interval_z")),
      track_(p.Get("track")),
      warmup_size_(std::max<size_t>(2, static_cast<size_t>(p.Get("warmup")))),
      gate_(internal::GateConfigFrom(p)),
      calibrator_(p),
      cal_(calibrator_.Fresh()) {}

Verdict EwmaDetector::Update(const Observation& obs) {
  Verdict v;
  if (base_.ready) {
    v.forecast = ewma_;
    v.lower = ewma_ - interval_z_ * base_.sigma;
    v.upper = ewma_ + interval_z_ * base_.sigma;
  }
  if (obs.missing || !std::isfinite(obs.value)) {
    internal::MissingVerdict(gate_, gs_, v);
    return v;
  }
  const bool past = internal::GateSeen(gate_, gs_);
  if (!base_.ready) {
    if (base_.Add(obs.value, warmup_size_)) {
      ewma_ = base_.mean;
      // A restarted baseline far from the old one: the level the signal announced holds.
      v.new_level = base_.TakeNewLevel(limit_);
    }
    return v;
  }
  ewma_ = lambda_ * obs.value + (1 - lambda_) * ewma_;
  const double sd = base_.sigma * std::sqrt(lambda_ / (2 - lambda_));
  const double stat = (ewma_ - base_.mean) / sd;
  v.score = past ? calibrator_.Score(cal_, internal::NormalSurprise(stat), obs.time_ms, false) : 0;
  const bool above = v.score >= gate_.threshold;
  v.signal = internal::GateDecide(gate_, gs_, past, above);
  if (past) calibrator_.Account(cal_, v.signal);
  if (above) {
    v.kind = SignalKind::kStep;
    v.direction = stat > 0 ? Direction::kUp : Direction::kDown;
  } else if (gs_.armed && track_ > 0) {
    base_.Track(obs.value, track_);
  }
  if (v.signal) base_.Restart();  // the values after the signal make the new baseline
  return v;
}

std::string EwmaDetector::Serialize() const {
  v1::DetectorState state;
  v1::EwmaState& e = *state.mutable_ewma();
  e.set_ewma(ewma_);
  internal::GateToProto(gs_, e.mutable_gate());
  base_.ToProto(e.mutable_baseline());
  calibrator_.ToProto(cal_, e.mutable_calibration());
  return internal::SerializeState(state);
}

absl::Status EwmaDetector::Restore(std::string_view blob) {
  auto state = internal::ParseState(blob, v1::DetectorState::kEwma, kKind);
  if (!state.ok()) return state.status();
  const v1::EwmaState& e = state->ewma();
  internal::WarmupBaseline base;
  internal::Calibrator::State cal;
  if (!base.FromProto(e.baseline(), warmup_size_) || !calibrator_.FromProto(e.calibration(), cal)) {
    return internal::CorruptSnapshot(kKind);
  }
  ewma_ = e.ewma();
  gs_ = internal::GateFromProto(e.gate());
  base_ = std::move(base);
  cal_ = cal;
  return absl::OkStatus();
}

}  // namespace cybersyn::alerter
