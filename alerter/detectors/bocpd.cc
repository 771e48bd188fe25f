#include "alerter/detectors/bocpd.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"

namespace cybersyn::alerter {
namespace {

// log Γ(a + ½) − log Γ(a), asymptotic series (accurate to ~1e-7 for a >= 1).
double LogGammaHalfRatio(double a) {
  if (a < 4) return std::lgamma(a + 0.5) - std::lgamma(a);
  const double ia = 1.0 / a;
  return 0.5 * std::log(a) - ia / 8 + ia * ia * ia / 192;
}
}  // namespace

std::vector<ParamSpec> BocpdDetector::Specs() {
  std::vector<ParamSpec> specs = {
      {"hazard", 1.0 / 500, "constant prior probability of a changepoint at each observation"},
      {"max_run", 200, "run lengths kept (longer runs are merged): bounds memory and time"},
      {"window", 5, "score = P(run length <= window)"},
      {"kappa0", 1, "prior pseudo-observations for the mean"},
      {"alpha0", 1, "prior shape of the precision (Gamma)"},
      {"interval_z", 1.96, "normal quantile of the reported interval"},
  };
  for (const ParamSpec& s : internal::CommonParamSpecs(30)) specs.push_back(s);
  return specs;
}

absl::StatusOr<std::unique_ptr<Detector>> BocpdDetector::Create(const DetectorParams& params) {
  auto p = internal::ResolveParams(kKind, Specs(), params);
  if (!p.ok()) return p.status();
  if (!(p->Get("hazard") > 0 && p->Get("hazard") < 1)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "parameter 'hazard' of detector bocpd must be in (0, 1), got ", p->Get("hazard")));
  }
  if (!(p->Get("max_run") >= 2 && p->Get("max_run") <= 100000)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "parameter 'max_run' of detector bocpd must be in [2, 100000], got ", p->Get("max_run")));
  }
  if (!(p->Get("window") >= 0 && p->Get("window") < p->Get("max_run"))) {
    return absl::InvalidArgumentError(absl::StrCat(
        "parameter 'window' of detector bocpd must be in [0, max_run), got ", p->Get("window")));
  }
  for (const char* n : {"kappa0", "alpha0"}) {
    if (!(p->Get(n) > 0 && std::isfinite(p->Get(n)))) {
      return absl::InvalidArgumentError(
          absl::StrCat("parameter '", n, "' of detector bocpd must be > 0, got ", p->Get(n)));
    }
  }
  return std::unique_ptr<Detector>(new BocpdDetector(*p));
}

BocpdDetector::BocpdDetector(const internal::Params& p)
    : hazard_(p.Get("hazard")),
      kappa0_(p.Get("kappa0")),
      alpha0_(p.Get("alpha0")),
      interval_z_(p.Get("interval_z")),
      max_run_(static_cast<size_t>(p.Get("max_run"))),
      window_(static_cast<size_t>(p.Get("window"))),
      warmup_size_(std::max<size_t>(2, static_cast<size_t>(p.Get("warmup")))),
      gate_(internal::GateConfigFrom(p)) {}

BocpdDetector::Run BocpdDetector::PriorRun() const {
  // β0 chosen so the prior predictive scale is the warm-up σ.
  return Run{0.0, base_.mean, kappa0_, alpha0_,
             base_.sigma * base_.sigma * alpha0_ * kappa0_ / (kappa0_ + 1)};
}

Verdict BocpdDetector::Update(const Observation& obs) {
  Verdict v;
  if (!runs_.empty()) {
    double f = 0, m2 = 0;
    for (const Run& r : runs_) {
      const double s2 = r.beta * (r.kappa + 1) / (r.alpha * r.kappa);
      f += r.prob * r.mu;
      m2 += r.prob * (s2 + r.mu * r.mu);
    }
    const double sd = std::sqrt(std::max(0.0, m2 - f * f));
    v.forecast = f;
    v.lower = f - interval_z_ * sd;
    v.upper = f + interval_z_ * sd;
  }
  if (obs.missing || !std::isfinite(obs.value)) {
    internal::MissingVerdict(gate_, gs_, v);
    return v;
  }
  const bool past = internal::GateSeen(gate_, gs_);
  const double x = obs.value;
  if (!base_.ready) {
    if (base_.Add(x, warmup_size_)) {
      // The warm-up is the first run: its posterior is summarised by the robust estimates.
      const double w = static_cast<double>(warmup_size_);
      Run r{1.0, base_.mean, kappa0_ + w, alpha0_ + w / 2, 0};
      r.beta = base_.sigma * base_.sigma * r.alpha * r.kappa / (r.kappa + 1);
      runs_.assign(1, r);
    }
    return v;
  }
  const size_t n = runs_.size();
  lpred_.resize(n);
  double best = -INFINITY;
  for (size_t i = 0; i < n; ++i) {
    const Run& r = runs_[i];
    const double s2 = r.beta * (r.kappa + 1) / (r.alpha * r.kappa);
    const double d = x - r.mu;
    lpred_[i] = LogGammaHalfRatio(r.alpha) - 0.5 * std::log(2 * M_PI * r.alpha * s2) -
                (r.alpha + 0.5) * std::log1p(d * d / (2 * r.alpha * s2));
    best = std::max(best, lpred_[i]);
  }
  next_.resize(std::min(n + 1, max_run_));
  Run prior = PriorRun();
  double cp = 0, total = 0;
  for (size_t i = 0; i < n; ++i) {
    const Run& r = runs_[i];
    const double w = r.prob * std::exp(lpred_[i] - best);
    cp += w * hazard_;
    Run g{w * (1 - hazard_), (r.kappa * r.mu + x) / (r.kappa + 1), r.kappa + 1, r.alpha + 0.5,
          r.beta + r.kappa * (x - r.mu) * (x - r.mu) / (2 * (r.kappa + 1))};
    const size_t slot = std::min(i + 1, max_run_ - 1);
    if (slot == i + 1) {
      next_[slot] = g;
    } else {
      next_[slot].prob += g.prob;  // merge into the longest run kept (keeps its statistics)
    }
    total += w;
  }
  prior.prob = cp;
  next_[0] = prior;
  double score = 0;
  bool finite = total > 0 && std::isfinite(total);
  for (size_t i = 0; i < next_.size(); ++i) {
    next_[i].prob /= total;
    if (i <= window_) score += next_[i].prob;
  }
  if (!finite) {
    v.reset = true;
    Run r = prior;
    r.prob = 1;
    runs_.assign(1, r);
    return v;
  }
  runs_.swap(next_);
  const double change = std::clamp(score, 0.0, 1.0);
  // While every run is within the window (the first values after warm-up) P is 1 by
  // construction, not evidence: not scored.
  const bool scored = past && runs_.size() > window_ + 1;
  v.score = scored ? change : 0.0;
  const bool above = v.score >= gate_.threshold;
  v.signal = internal::GateDecide(gate_, gs_, past, above);
  if (above) {
    v.kind = SignalKind::kStep;
    v.direction = std::isfinite(v.forecast) && x < v.forecast ? Direction::kDown : Direction::kUp;
  }
  return v;
}

std::string BocpdDetector::Serialize() const {
  v1::DetectorState state;
  v1::BocpdState& b = *state.mutable_bocpd();
  internal::GateToProto(gs_, b.mutable_gate());
  base_.ToProto(b.mutable_baseline());
  for (const Run& r : runs_) {
    v1::BocpdRun* out = b.add_runs();
    out->set_probability(r.prob);
    out->set_mu(r.mu);
    out->set_kappa(r.kappa);
    out->set_alpha(r.alpha);
    out->set_beta(r.beta);
  }
  return internal::SerializeState(state);
}

absl::Status BocpdDetector::Restore(std::string_view blob) {
  auto state = internal::ParseState(blob, v1::DetectorState::kBocpd, kKind);
  if (!state.ok()) return state.status();
  const v1::BocpdState& b = state->bocpd();
  internal::WarmupBaseline base;
  if (!base.FromProto(b.baseline(), warmup_size_) ||
      static_cast<size_t>(b.runs_size()) > max_run_) {
    return internal::CorruptSnapshot(kKind);
  }
  std::vector<Run> runs;
  for (const v1::BocpdRun& r : b.runs()) {
    runs.push_back({r.probability(), r.mu(), r.kappa(), r.alpha(), r.beta()});
  }
  gs_ = internal::GateFromProto(b.gate());
  base_ = std::move(base);
  runs_ = std::move(runs);
  return absl::OkStatus();
}

}  // namespace cybersyn::alerter
