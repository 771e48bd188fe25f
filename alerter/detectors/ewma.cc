#include "alerter/detectors/ewma.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"

namespace cybersyn::alerter {
namespace {
constexpr uint8_t kTag = 0xE1;
constexpr uint8_t kVersion = 2;  // 2: baseline carries its count
}  // namespace

std::vector<ParamSpec> EwmaDetector::Specs() {
  std::vector<ParamSpec> specs = {
      {"lambda", 0.2, "EWMA weight of the newest value (0..1]"},
      {"limit", 3.9, "control limit in EWMA standard deviations (scores 0.5)"},
      {"interval_z", 1.96, "normal quantile of the reported interval"},
      {"track", 1000,
       "after warm-up, keep refining the in-control mean and scale from in-control values with "
       "a memory of this many values (robust, Huber-clipped); 0: fixed warm-up estimates"},
  };
  for (const ParamSpec& s : internal::CommonParamSpecs(30)) specs.push_back(s);
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
  return std::unique_ptr<Detector>(new EwmaDetector(*p));
}

EwmaDetector::EwmaDetector(const internal::Params& p)
    : lambda_(p.Get("lambda")),
      limit_(p.Get("limit")),
      interval_z_(p.Get("interval_z")),
      track_(p.Get("track")),
      warmup_size_(std::max<size_t>(2, static_cast<size_t>(p.Get("warmup")))),
      gate_(internal::GateConfigFrom(p)) {}

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
    if (base_.Add(obs.value, warmup_size_)) ewma_ = base_.mean;
    return v;
  }
  ewma_ = lambda_ * obs.value + (1 - lambda_) * ewma_;
  const double sd = base_.sigma * std::sqrt(lambda_ / (2 - lambda_));
  const double stat = (ewma_ - base_.mean) / sd;
  v.score = internal::Graded(std::fabs(stat), limit_);
  const bool above = v.score >= gate_.threshold;
  v.signal = internal::GateDecide(gate_, gs_, past, above);
  if (above) {
    v.kind = SignalKind::kStep;
    v.direction = stat > 0 ? Direction::kUp : Direction::kDown;
  } else if (gs_.armed && track_ > 0) {
    base_.Track(obs.value, track_);
  }
  return v;
}

std::string EwmaDetector::Serialize() const {
  internal::BlobWriter w(kTag, kVersion);
  w.Put(ewma_);
  w.Put(gs_);
  base_.Put(w);
  return w.Take();
}

absl::Status EwmaDetector::Restore(std::string_view blob) {
  internal::BlobReader r(blob);
  if (absl::Status st = r.Header(kTag, kVersion, kKind); !st.ok()) return st;
  double ewma = 0;
  internal::GateState gs;
  internal::WarmupBaseline base;
  if (!r.Get(ewma) || !r.Get(gs) || !base.Get(r) || !r.AtEnd()) {
    return internal::CorruptSnapshot(kKind);
  }
  ewma_ = ewma;
  gs_ = gs;
  base_ = std::move(base);
  return absl::OkStatus();
}

}  // namespace cybersyn::alerter
