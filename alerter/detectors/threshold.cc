#include "alerter/detectors/threshold.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"

namespace cybersyn::alerter {
namespace {
constexpr double kInf = std::numeric_limits<double>::infinity();
}  // namespace

std::vector<ParamSpec> ThresholdDetector::Specs() {
  std::vector<ParamSpec> specs = {
      {"min", -kInf, "lower limit (omit for none)"},
      {"max", kInf, "upper limit (omit for none)"},
      {"auto_sigma", 0, "if > 0 and no limit given: limits = warm-up median ± this many s.d."},
      {"scale", 0, "distance beyond a limit that scores 0.75 (0: a tenth of the band)"},
  };
  for (const ParamSpec& s : internal::CommonParamSpecs(0)) specs.push_back(s);
  for (ParamSpec& s : specs) {
    if (s.name == "warmup") s.default_value = 0;
  }
  return specs;
}

absl::StatusOr<std::unique_ptr<Detector>> ThresholdDetector::Create(const DetectorParams& params) {
  auto p = internal::ResolveParams(kKind, Specs(), params);
  if (!p.ok()) return p.status();
  const double min = p->Get("min"), max = p->Get("max");
  const bool given = std::isfinite(min) || std::isfinite(max);
  if (!given && !(p->Get("auto_sigma") > 0)) {
    return absl::InvalidArgumentError("detector threshold needs 'min', 'max' or 'auto_sigma' > 0");
  }
  if (given && !(min < max)) {
    return absl::InvalidArgumentError(
        absl::StrCat("detector threshold needs min < max, got min=", min, " max=", max));
  }
  if (!given && p->Get("warmup") < 2) {
    return absl::InvalidArgumentError(
        "detector threshold with auto_sigma needs 'warmup' >= 2 values to learn limits");
  }
  if (!(p->Get("scale") >= 0) || !std::isfinite(p->Get("scale"))) {
    return absl::InvalidArgumentError(absl::StrCat(
        "parameter 'scale' of detector threshold must be >= 0, got ", p->Get("scale")));
  }
  return std::unique_ptr<Detector>(new ThresholdDetector(*p));
}

ThresholdDetector::ThresholdDetector(const internal::Params& p)
    : auto_sigma_(p.Get("auto_sigma")),
      scale_param_(p.Get("scale")),
      warmup_size_(static_cast<size_t>(p.Get("warmup"))),
      gate_(internal::GateConfigFrom(p)) {
  learn_ = !std::isfinite(p.Get("min")) && !std::isfinite(p.Get("max"));
  SetLimits(p.Get("min"), p.Get("max"));
  if (!learn_) base_.ready = true;
}

void ThresholdDetector::SetLimits(double min, double max) {
  min_ = min;
  max_ = max;
  if (scale_param_ > 0) {
    scale_ = scale_param_;
  } else if (std::isfinite(min) && std::isfinite(max)) {
    scale_ = 0.1 * (max - min);
  } else {
    const double limit = std::isfinite(min) ? min : max;
    scale_ = std::isfinite(limit) && limit != 0 ? 0.1 * std::fabs(limit) : 1.0;
  }
}

Verdict ThresholdDetector::Update(const Observation& obs) {
  Verdict v;
  if (obs.missing || !std::isfinite(obs.value)) {
    internal::MissingVerdict(gate_, gs_, v);
    return v;
  }
  const bool past = internal::GateSeen(gate_, gs_);
  if (!base_.ready) {
    if (base_.Add(obs.value, warmup_size_)) {
      SetLimits(base_.mean - auto_sigma_ * base_.sigma, base_.mean + auto_sigma_ * base_.sigma);
    }
    return v;
  }
  const double y = obs.value;
  double dist = 0;
  if (y > max_) {
    dist = y - max_;
    v.direction = Direction::kUp;
  } else if (y < min_) {
    dist = min_ - y;
    v.direction = Direction::kDown;
  }
  const bool outside = v.direction != Direction::kNone;
  v.score = outside ? 0.5 + 0.5 * internal::Graded(dist, scale_) : 0.0;
  if (outside) v.kind = SignalKind::kThreshold;
  v.signal = internal::GateDecide(gate_, gs_, past, v.score >= gate_.threshold && outside);
  return v;
}

std::string ThresholdDetector::Serialize() const {
  v1::DetectorState state;
  v1::ThresholdState& t = *state.mutable_threshold();
  t.set_min(min_);
  t.set_max(max_);
  t.set_scale(scale_);
  internal::GateToProto(gs_, t.mutable_gate());
  base_.ToProto(t.mutable_baseline());
  return internal::SerializeState(state);
}

absl::Status ThresholdDetector::Restore(std::string_view blob) {
  auto state = internal::ParseState(blob, v1::DetectorState::kThreshold, kKind);
  if (!state.ok()) return state.status();
  const v1::ThresholdState& t = state->threshold();
  internal::WarmupBaseline base;
  if (!base.FromProto(t.baseline(), warmup_size_)) return internal::CorruptSnapshot(kKind);
  SetLimits(t.min(), t.max());
  gs_ = internal::GateFromProto(t.gate());
  base_ = std::move(base);
  return absl::OkStatus();
}

}  // namespace cybersyn::alerter
