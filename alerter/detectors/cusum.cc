#include "alerter/detectors/cusum.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"

namespace cybersyn::alerter {
namespace {
constexpr uint8_t kTag = 0xC0;
constexpr uint8_t kVersion = 2;  // 2: baseline carries its count
}  // namespace

std::vector<ParamSpec> CusumDetector::Specs() {
  std::vector<ParamSpec> specs = {
      {"k", 1.0, "allowance (reference value) in baseline standard deviations"},
      {"h", 5.0, "decision interval in baseline standard deviations (scores 0.5)"},
      {"interval_z", 1.96, "normal quantile of the reported interval"},
      {"track", 1000,
       "after warm-up, keep refining the in-control mean and scale from in-control values with "
       "a memory of this many values (robust, Huber-clipped); 0: fixed warm-up estimates"},
  };
  for (const ParamSpec& s : internal::CommonParamSpecs(30)) specs.push_back(s);
  return specs;
}

absl::StatusOr<std::unique_ptr<Detector>> CusumDetector::Create(const DetectorParams& params) {
  auto p = internal::ResolveParams(kKind, Specs(), params);
  if (!p.ok()) return p.status();
  if (!(p->Get("k") >= 0 && std::isfinite(p->Get("k")))) {
    return absl::InvalidArgumentError(
        absl::StrCat("parameter 'k' of detector cusum must be >= 0, got ", p->Get("k")));
  }
  if (!(p->Get("h") > 0 && std::isfinite(p->Get("h")))) {
    return absl::InvalidArgumentError(
        absl::StrCat("parameter 'h' of detector cusum must be > 0, got ", p->Get("h")));
  }
  return std::unique_ptr<Detector>(new CusumDetector(*p));
}

CusumDetector::CusumDetector(const internal::Params& p)
    : k_(p.Get("k")),
      h_(p.Get("h")),
      interval_z_(p.Get("interval_z")),
      track_(p.Get("track")),
      warmup_size_(std::max<size_t>(2, static_cast<size_t>(p.Get("warmup")))),
      gate_(internal::GateConfigFrom(p)) {}

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
    base_.Add(obs.value, warmup_size_);
    return v;
  }
  const double x = (obs.value - base_.mean) / base_.sigma;
  up_ = std::max(0.0, up_ + x - k_);
  down_ = std::max(0.0, down_ - x - k_);
  v.score = internal::Graded(std::max(up_, down_), h_);
  const bool above = v.score >= gate_.threshold;
  v.signal = internal::GateDecide(gate_, gs_, past, above);
  if (above) {
    v.kind = SignalKind::kStep;
    v.direction = up_ >= down_ ? Direction::kUp : Direction::kDown;
  } else if (gs_.armed && track_ > 0) {
    base_.Track(obs.value, track_);
  }
  return v;
}

std::string CusumDetector::Serialize() const {
  internal::BlobWriter w(kTag, kVersion);
  w.Put(up_);
  w.Put(down_);
  w.Put(gs_);
  base_.Put(w);
  return w.Take();
}

absl::Status CusumDetector::Restore(std::string_view blob) {
  internal::BlobReader r(blob);
  if (absl::Status st = r.Header(kTag, kVersion, kKind); !st.ok()) return st;
  double up = 0, down = 0;
  internal::GateState gs;
  internal::WarmupBaseline base;
  if (!r.Get(up) || !r.Get(down) || !r.Get(gs) || !base.Get(r) || !r.AtEnd()) {
    return internal::CorruptSnapshot(kKind);
  }
  up_ = up;
  down_ = down;
  gs_ = gs;
  base_ = std::move(base);
  return absl::OkStatus();
}

}  // namespace cybersyn::alerter
