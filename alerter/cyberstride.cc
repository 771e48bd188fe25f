#include "alerter/cyberstride.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"

namespace cybersyn::alerter {
namespace {

constexpr uint8_t kTag = 0xC5;
constexpr uint8_t kVersion = 1;

bool Finite(double x) { return std::isfinite(x); }

}  // namespace

std::vector<ParamSpec> CyberstrideDetector::Specs() {
  std::vector<ParamSpec> specs = {
      {"prior_steady", 0.85, "prior probability of the steady model"},
      {"prior_transient", 0.07, "prior probability of a transient (outlier)"},
      {"prior_step", 0.05, "prior probability of a step change in level"},
      {"prior_slope", 0.03, "prior probability of a change in slope"},
      {"delta_level", 0.9, "level discount factor of the steady/transient models (0..1]"},
      {"delta_slope", 0.9, "slope discount factor of the steady/transient/step models (0..1]"},
      {"step_delta_level", 0.01,
       "level discount of the step model (small: level variance inflated)"},
      {"slope_delta_slope", 0.01,
       "slope discount of the slope model (small: slope variance inflated)"},
      {"transient_k", 100, "observation variance multiplier of the transient model"},
      {"variance_discount", 1.0, "discount of the learned observation variance (1: n' = n + 1)"},
      {"score_scale", 3,
       "standardised error (of a confirmed step: both observations "
       "combined) that scores half the posterior"},
      {"transient_scale", 4, "standardised error of a single transient that scores half"},
      {"candidate_z", 2.0, "standardised error that makes an observation a candidate to confirm"},
      {"confirm", 1, "1: confirm step vs transient one observation later; 0: signal at once"},
      {"monitor_h", 1.0, "shift (in predictive s.d.) the cumulative monitor looks for; 0: off"},
      {"monitor_level", 5.0, "log Bayes factor at which the monitor scores 0.5"},
      {"monitor_clip", 3.0, "clip of standardised errors fed to the monitor (outlier-robust)"},
      {"ref_short", 0.2, "EWMA weight of the recent level compared with the reference"},
      {"ref_long", 0.01, "EWMA weight of the slow reference level (the established norm)"},
      {"ref_limit", 0.0,
       "standardised departure of the recent level from the reference that scores 0.5 (0: off)"},
      {"intervene", 1, "1: after a step/slope signal, inflate the state variance to re-adapt"},
      {"variance_clip", 3.0,
       "learn V from the steady forecast error clipped at this many s.d. (0: mixture-weighted "
       "as published)"},
      {"skip_repeats", 1, "1: a value equal to the previous one (held/sample-and-hold) is skipped"},
      {"prob_floor", 1e-6, "model probabilities are clamped to [floor, 1 - floor]"},
      {"interval_z", 1.96, "normal quantile of the forecast interval (Student-t corrected)"},
  };
  for (const ParamSpec& s : internal::CommonParamSpecs(20)) specs.push_back(s);
  return specs;
}

absl::StatusOr<std::unique_ptr<Detector>> CyberstrideDetector::Create(
    const DetectorParams& params) {
  auto p = internal::ResolveParams(kKind, Specs(), params);
  if (!p.ok()) return p.status();
  auto bad = [](std::string_view name, double v, std::string_view want) {
    return absl::InvalidArgumentError(absl::StrCat("parameter '", std::string(name),
                                                   "' of detector cyberstride must be ",
                                                   std::string(want), ", got ", v));
  };
  for (const char* n : {"prior_steady", "prior_transient", "prior_step", "prior_slope"}) {
    if (!(p->Get(n) > 0 && p->Get(n) < 1)) return bad(n, p->Get(n), "in (0, 1)");
  }
  for (const char* n : {"delta_level", "delta_slope", "step_delta_level", "slope_delta_slope",
                        "variance_discount"}) {
    if (!(p->Get(n) > 0 && p->Get(n) <= 1)) return bad(n, p->Get(n), "in (0, 1]");
  }
  if (!(p->Get("transient_k") >= 1 && Finite(p->Get("transient_k")))) {
    return bad("transient_k", p->Get("transient_k"), ">= 1");
  }
  for (const char* n : {"ref_short", "ref_long"}) {
    if (!(p->Get(n) > 0 && p->Get(n) <= 1)) return bad(n, p->Get(n), "in (0, 1]");
  }
  if (!(p->Get("ref_limit") >= 0 && Finite(p->Get("ref_limit")))) {
    return bad("ref_limit", p->Get("ref_limit"), ">= 0");
  }
  for (const char* n : {"score_scale", "transient_scale", "candidate_z", "monitor_level",
                        "monitor_clip", "interval_z"}) {
    if (!(p->Get(n) > 0 && Finite(p->Get(n)))) return bad(n, p->Get(n), "> 0");
  }
  if (!(p->Get("monitor_h") >= 0 && Finite(p->Get("monitor_h")))) {
    return bad("monitor_h", p->Get("monitor_h"), ">= 0");
  }
  if (!(p->Get("prob_floor") > 0 && p->Get("prob_floor") < 0.01)) {
    return bad("prob_floor", p->Get("prob_floor"), "in (0, 0.01)");
  }
  if (!(p->Get("variance_clip") >= 0 && Finite(p->Get("variance_clip")))) {
    return bad("variance_clip", p->Get("variance_clip"), ">= 0");
  }
  for (const char* n : {"confirm", "intervene", "skip_repeats"}) {
    if (p->Get(n) != 0 && p->Get(n) != 1) return bad(n, p->Get(n), "0 or 1");
  }
  return std::unique_ptr<Detector>(new CyberstrideDetector(*p));
}

CyberstrideDetector::CyberstrideDetector(const internal::Params& p) {
  const double prior[kNumModels] = {p.Get("prior_steady"), p.Get("prior_transient"),
                                    p.Get("prior_step"), p.Get("prior_slope")};
  const double total = prior[0] + prior[1] + prior[2] + prior[3];
  for (int j = 0; j < kNumModels; ++j) log_prior_[j] = std::log(prior[j] / total);
  const double dl = p.Get("delta_level"), ds = p.Get("delta_slope");
  const double step_dl = p.Get("step_delta_level"), slope_ds = p.Get("slope_delta_slope");
  k_ = {1.0, p.Get("transient_k"), 1.0, 1.0};
  wl_ = {1 / dl - 1, 1 / dl - 1, 1 / step_dl - 1, 1 / dl - 1};
  ws_ = {1 / ds - 1, 1 / ds - 1, 1 / ds - 1, 1 / slope_ds - 1};
  variance_discount_ = p.Get("variance_discount");
  score_scale_ = p.Get("score_scale");
  transient_scale_ = p.Get("transient_scale");
  candidate_z_ = p.Get("candidate_z");
  monitor_h_ = p.Get("monitor_h");
  monitor_level_ = p.Get("monitor_level");
  monitor_clip_ = p.Get("monitor_clip");
  prob_floor_ = p.Get("prob_floor");
  interval_q_ = p.Get("interval_z");
  confirm_ = p.Get("confirm") != 0;
  intervene_ = p.Get("intervene") != 0;
  skip_repeats_ = p.Get("skip_repeats") != 0;
  variance_clip_ = p.Get("variance_clip");
  ref_short_ = p.Get("ref_short");
  ref_long_ = p.Get("ref_long");
  ref_limit_ = p.Get("ref_limit");
  gate_ = internal::GateConfigFrom(p);
}

void CyberstrideDetector::Init(double y, double s0) {
  const internal::GateState gate = s_.gate;
  s_ = State();
  s_.gate = gate;
  for (int j = 0; j < kNumModels; ++j) {
    Component& c = s_.comp[j];
    c.level = y;
    c.slope = 0;
    c.c00 = static_cast<float>(s0);
    c.c01 = 0;
    c.c11 = static_cast<float>(s0 * 0.1);
    c.prob = static_cast<float>(std::exp(log_prior_[j]));
  }
  s_.n = 1;
  s_.d = s0;
  s_.ref_mean = s_.ref_short = y;
  s_.ref_var = s0;
  s_.phase = 2;
}

void CyberstrideDetector::Intervene(SignalKind kind) {
  s_.mon_up = s_.mon_down = s_.mon_step = s_.mon_slope = 0;
  if (!intervene_) return;
  // An acknowledged change: widen the state so every component re-adapts to the new regime
  // (West & Harrison §11.5, automatic intervention).
  for (Component& c : s_.comp) {
    if (kind == SignalKind::kSlope) {
      c.c11 = static_cast<float>(c.c11 * (1 + ws_[kSlope]));
    } else {
      c.c00 = static_cast<float>(c.c00 * (1 + wl_[kStep]));
    }
  }
}

Verdict CyberstrideDetector::Update(const Observation& obs) {
  Verdict v;
  const bool missing = obs.missing || !Finite(obs.value);
  const double y = obs.value;
  if (s_.phase == 2) {
    // Forecast before seeing y: steady model, mixed over the previous components.
    double f = 0, q = 0;
    const double S = s_.d / s_.n;
    std::array<double, kNumModels> fi, qi;
    for (int i = 0; i < kNumModels; ++i) {
      const Component& c = s_.comp[i];
      fi[i] = c.level + c.slope;
      const double p00 = double{c.c00} + 2.0 * c.c01 + c.c11;
      qi[i] = p00 + wl_[kSteady] * c.c00 + ws_[kSteady] * c.c11 + S;
      f += c.prob * fi[i];
    }
    for (int i = 0; i < kNumModels; ++i) {
      q += s_.comp[i].prob * (qi[i] + (fi[i] - f) * (fi[i] - f));
    }
    const double half = internal::StudentQuantile(interval_q_, s_.n) * std::sqrt(q);
    v.forecast = f;
    v.lower = f - half;
    v.upper = f + half;
    if (missing) {
      // Forecast without update: the state moves on and its variance grows.
      for (Component& c : s_.comp) {
        const double p00 = double{c.c00} + 2.0 * c.c01 + c.c11;
        const double p01 = double{c.c01} + c.c11;
        const double wl = wl_[kSteady] * c.c00, ws = ws_[kSteady] * c.c11;
        c.level += c.slope;
        c.c00 = static_cast<float>(p00 + wl + ws);
        c.c01 = static_cast<float>(p01 + ws);
        c.c11 = static_cast<float>(c.c11 + ws);
      }
      s_.pending = 0;
      internal::MissingVerdict(gate_, s_.gate, v);
      v.probs = {s_.comp[0].prob, s_.comp[1].prob, s_.comp[2].prob, s_.comp[3].prob};
      return v;
    }
    if (skip_repeats_ && y == s_.last) {
      // A held value carries no new measurement: no update, counts as normal for re-arming.
      // Not counted towards warm-up, which is measured in real measurements.
      const bool past = s_.gate.seen > static_cast<uint64_t>(gate_.warmup);
      s_.gate.missing_run = 0;
      if (!s_.gate.armed) internal::GateDecide(gate_, s_.gate, past, false);
      v.probs = {s_.comp[0].prob, s_.comp[1].prob, s_.comp[2].prob, s_.comp[3].prob};
      return v;
    }
    const bool past_warmup = internal::GateSeen(gate_, s_.gate);
    const double z = (y - f) / std::sqrt(std::max(q, 1e-300));

    // The 16 (j, i) updates, log-likelihoods first.
    const double n = s_.n;
    const double half_n1 = 0.5 * (n + 1);
    double ll[kNumModels][kNumModels];
    double qq[kNumModels][kNumModels];
    double rr[kNumModels][kNumModels][3];
    double log_p[kNumModels];
    const double q_floor = std::max(S * 1e-12, 1e-300);
    for (int i = 0; i < kNumModels; ++i) log_p[i] = std::log(double{s_.comp[i].prob});
    double best = -INFINITY;
    for (int i = 0; i < kNumModels; ++i) {
      const Component& c = s_.comp[i];
      const double p00 = double{c.c00} + 2.0 * c.c01 + c.c11;
      const double p01 = double{c.c01} + c.c11;
      const double p11 = c.c11;
      const double e = y - fi[i];
      for (int j = 0; j < kNumModels; ++j) {
        const double wl = wl_[j] * c.c00, ws = ws_[j] * c.c11;
        const double r00 = p00 + wl + ws, r01 = p01 + ws, r11 = p11 + ws;
        const double Q = std::max(r00 + k_[j] * S, q_floor);
        rr[j][i][0] = r00;
        rr[j][i][1] = r01;
        rr[j][i][2] = r11;
        qq[j][i] = Q;
        ll[j][i] =
            log_prior_[j] + log_p[i] - half_n1 * std::log1p(e * e / (n * Q)) - 0.5 * std::log(Q);
        best = std::max(best, ll[j][i]);
      }
    }
    double total = 0, dsum = 0;
    for (int j = 0; j < kNumModels; ++j) {
      for (int i = 0; i < kNumModels; ++i) {
        const double w = std::exp(ll[j][i] - best);
        ll[j][i] = w;  // now unnormalised weight
        total += w;
        const double e = y - fi[i];
        dsum += w * S * e * e / qq[j][i];
      }
    }
    const double inv_total = 1.0 / total;
    dsum *= inv_total;
    if (variance_clip_ > 0) {
      // Robust learning: the steady forecast error, clipped, so that frequent jumps in a messy
      // series widen V instead of being explained away as a stream of events.
      dsum = S * std::min(z * z, variance_clip_ * variance_clip_);
    }
    const double beta = variance_discount_;
    const double d_new = beta * s_.d + dsum, n_new = beta * s_.n + 1;
    const double S_new = std::max(d_new / n_new, 1e-300);
    const double ratio = S_new / std::max(S, 1e-300);

    std::array<double, kNumModels> back{}, post{};
    State next = s_;
    for (int j = 0; j < kNumModels; ++j) {
      double pj = 0;
      double ml = 0, ms = 0;
      double mls[kNumModels], mss[kNumModels], c00[kNumModels], c01[kNumModels], c11[kNumModels],
          wts[kNumModels];
      for (int i = 0; i < kNumModels; ++i) {
        const Component& c = s_.comp[i];
        const double w = ll[j][i] * inv_total;
        back[i] += w;
        pj += w;
        const double Q = qq[j][i];
        const double r00 = rr[j][i][0], r01 = rr[j][i][1], r11 = rr[j][i][2];
        const double e = y - fi[i];
        const double a0 = r00 / Q, a1 = r01 / Q;
        mls[i] = fi[i] + a0 * e;
        mss[i] = c.slope + a1 * e;
        c00[i] = ratio * (r00 - a0 * r00);
        c01[i] = ratio * (r01 - a0 * r01);
        c11[i] = ratio * (r11 - a1 * r01);
        wts[i] = w;
      }
      post[j] = pj;
      const double inv_pj = pj > 0 ? 1.0 / pj : 0.0;
      for (int i = 0; i < kNumModels; ++i) {
        wts[i] *= inv_pj;
        ml += wts[i] * mls[i];
        ms += wts[i] * mss[i];
      }
      double v00 = 0, v01 = 0, v11 = 0;
      for (int i = 0; i < kNumModels; ++i) {
        const double dl = mls[i] - ml, ds = mss[i] - ms;
        v00 += wts[i] * (c00[i] + dl * dl);
        v01 += wts[i] * (c01[i] + dl * ds);
        v11 += wts[i] * (c11[i] + ds * ds);
      }
      // Keep the covariance positive definite and away from zero (relative to S).
      v00 = std::max(v00, S_new * 1e-10);
      v11 = std::max(v11, S_new * 1e-14);
      const double lim = 0.999 * std::sqrt(v00 * v11);
      v01 = std::clamp(v01, -lim, lim);
      Component& out = next.comp[j];
      out.level = ml;
      out.slope = ms;
      out.c00 = static_cast<float>(v00);
      out.c01 = static_cast<float>(v01);
      out.c11 = static_cast<float>(v11);
    }
    double psum = 0;
    for (int j = 0; j < kNumModels; ++j) {
      post[j] = std::clamp(post[j], prob_floor_, 1 - prob_floor_);
      psum += post[j];
    }
    for (int j = 0; j < kNumModels; ++j) next.comp[j].prob = static_cast<float>(post[j] / psum);
    next.d = d_new;
    next.n = n_new;

    bool finite = Finite(d_new) && Finite(n_new) && Finite(z);
    for (const Component& c : next.comp) {
      finite = finite && Finite(c.level) && Finite(c.slope) && Finite(c.c00) && Finite(c.c01) &&
               Finite(c.c11) && Finite(c.prob);
    }
    if (!finite) {
      // Reset: start afresh from this value (counted by the caller).
      v.reset = true;
      const internal::GateState gate = s_.gate;
      s_ = State();
      s_.gate = gate;
      s_.phase = 1;
      s_.first = y;
      return v;
    }
    s_ = next;
    s_.last = y;
    v.probs = {s_.comp[kSteady].prob, s_.comp[kTransient].prob, s_.comp[kStep].prob,
               s_.comp[kSlope].prob};

    // Scores.
    const double az = std::fabs(z);
    const double instant = (1.0 - v.probs.steady) * internal::Graded(az, score_scale_);
    // Confirmation of the previous observation's candidate with the one-step-back
    // probabilities: a step needs this observation to stay off the old forecast too (their
    // combined evidence), a transient needs it back on it (the candidate's error alone).
    double confirmed = 0, confirmed_step = 0, confirmed_transient = 0;
    if (s_.pending) {
      const double z2 = (y - s_.pend_f2) / std::sqrt(std::max(q, 1e-300));
      const double combined = (s_.pend_z + z2) / std::sqrt(2.0);
      confirmed_step =
          (back[kStep] + back[kSlope]) * internal::Graded(std::fabs(combined), score_scale_);
      confirmed_transient =
          back[kTransient] * internal::Graded(std::fabs(s_.pend_z), transient_scale_);
      confirmed = std::max(confirmed_step, confirmed_transient);
    }
    double cumulative = 0;
    if (past_warmup && monitor_h_ > 0) {
      const double zc = std::clamp(z, -monitor_clip_, monitor_clip_);
      const double k = 0.5 * monitor_h_ * monitor_h_;
      s_.mon_up = static_cast<float>(std::max(0.0, s_.mon_up + monitor_h_ * zc - k));
      s_.mon_down = static_cast<float>(std::max(0.0, s_.mon_down - monitor_h_ * zc - k));
      if (s_.mon_up > 0 || s_.mon_down > 0) {
        s_.mon_step = static_cast<float>(s_.mon_step + v.probs.step);
        s_.mon_slope = static_cast<float>(s_.mon_slope + v.probs.slope);
      } else {
        s_.mon_step = s_.mon_slope = 0;
      }
      cumulative = internal::Graded(std::max(s_.mon_up, s_.mon_down), monitor_level_);
    }
    // Reference monitor: the recent level against the slowly adapting established norm, in
    // units of the series' own spread around that norm (outliers winsorised).
    double reference = 0;
    {
      const double sd = std::sqrt(std::max(s_.ref_var, 1e-300));
      const double yc = std::clamp(y, s_.ref_mean - monitor_clip_ * sd - 1e-300,
                                   s_.ref_mean + monitor_clip_ * sd + 1e-300);
      s_.ref_short += ref_short_ * (yc - s_.ref_short);
      const double dev = yc - s_.ref_mean;
      const double u =
          (s_.ref_short - s_.ref_mean) / (sd * std::sqrt(ref_short_ / (2 - ref_short_)));
      if (past_warmup && ref_limit_ > 0) reference = internal::Graded(std::fabs(u), ref_limit_);
      s_.ref_mean += ref_long_ * dev;
      s_.ref_var = (1 - ref_long_) * (s_.ref_var + ref_long_ * dev * dev);
      s_.ref_dir = u > 0 ? 1 : -1;
    }
    v.score = std::max({instant, confirmed, cumulative, reference});
    v.direction = z > 0 ? Direction::kUp : (z < 0 ? Direction::kDown : Direction::kNone);

    const double thr = gate_.threshold;
    auto kind_of = [](int j) {
      return j == kTransient ? SignalKind::kTransient
                             : (j == kStep ? SignalKind::kStep : SignalKind::kSlope);
    };
    auto argmax_anomaly = [](double transient, double step, double slope) {
      int j = kTransient;
      if (step > transient) j = kStep;
      if (slope > std::max(step, transient)) j = kSlope;
      return j;
    };
    bool fire = false;
    SignalKind kind = SignalKind::kNone;
    Direction dir = v.direction;
    if (s_.pending) {
      s_.pending = 0;
      if (confirmed >= thr) {
        kind = confirmed_transient >= confirmed_step
                   ? SignalKind::kTransient
                   : (back[kSlope] > back[kStep] ? SignalKind::kSlope : SignalKind::kStep);
        dir = static_cast<Direction>(s_.pend_dir);
        fire = true;
      }
    }
    if (!fire && reference >= thr && reference >= cumulative) {
      kind = s_.mon_slope > s_.mon_step ? SignalKind::kSlope : SignalKind::kStep;
      dir = static_cast<Direction>(s_.ref_dir);
      fire = true;
    }
    if (!fire && cumulative >= thr) {
      kind = s_.mon_slope > s_.mon_step ? SignalKind::kSlope : SignalKind::kStep;
      dir = s_.mon_up >= s_.mon_down ? Direction::kUp : Direction::kDown;
      fire = true;
    }
    bool new_pending = false;
    if (!fire && confirm_ && past_warmup && s_.gate.armed && std::fabs(z) >= candidate_z_) {
      new_pending = true;
      s_.pending = 1;
      s_.pend_z = static_cast<float>(z);
      s_.pend_f2 = s_.comp[kTransient].level + s_.comp[kTransient].slope;
      s_.pend_dir = static_cast<int8_t>(v.direction);
      if (instant >= thr)
        kind = kind_of(argmax_anomaly(v.probs.transient, v.probs.step, v.probs.slope));
    } else if (!fire && !confirm_ && instant >= thr) {
      kind = kind_of(argmax_anomaly(v.probs.transient, v.probs.step, v.probs.slope));
      fire = true;
    }
    if (new_pending) {
      // Armed and waiting one observation for the one-step-back probabilities.
    } else if (s_.gate.armed) {
      v.signal = internal::GateDecide(gate_, s_.gate, past_warmup, fire);
    } else {
      internal::GateDecide(gate_, s_.gate, past_warmup, v.score >= thr);
    }
    if (fire || (new_pending && kind != SignalKind::kNone)) {
      v.kind = kind;
      v.direction = dir;
    } else {
      v.direction = Direction::kNone;
    }
    if (v.signal && (kind == SignalKind::kStep || kind == SignalKind::kSlope)) Intervene(kind);
    return v;
  }

  // phase 0/1: initialisation from the first two values.
  if (missing) {
    internal::MissingVerdict(gate_, s_.gate, v);
    return v;
  }
  if (s_.phase == 1 && skip_repeats_ && y == s_.first) {
    v.forecast = y;  // a held first value: wait for a second measurement to initialise
    return v;
  }
  internal::GateSeen(gate_, s_.gate);
  if (s_.phase == 0) {
    s_.first = y;
    s_.phase = 1;
    v.forecast = y;
    return v;
  }
  double s0 = 0.5 * (y - s_.first) * (y - s_.first);
  if (!(s0 > 0) || !Finite(s0)) {
    const double scale = 1e-3 * std::max(std::fabs(y), std::fabs(s_.first));
    s0 = scale > 0 ? scale * scale : 1e-12;
  }
  v.forecast = s_.first;
  Init(y, s0);
  s_.last = y;
  v.probs = {s_.comp[0].prob, s_.comp[1].prob, s_.comp[2].prob, s_.comp[3].prob};
  return v;
}

std::string CyberstrideDetector::Serialize() const {
  internal::BlobWriter w(kTag, kVersion);
  w.Put(s_);
  return w.Take();
}

absl::Status CyberstrideDetector::Restore(std::string_view blob) {
  internal::BlobReader r(blob);
  if (absl::Status st = r.Header(kTag, kVersion, kKind); !st.ok()) return st;
  State s;
  if (!r.Get(s) || !r.AtEnd() || s.phase > 2) return internal::CorruptSnapshot(kKind);
  s_ = s;
  return absl::OkStatus();
}

}  // namespace cybersyn::alerter
