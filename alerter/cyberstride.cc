#include "alerter/cyberstride.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace cybersyn::alerter {
namespace {

constexpr uint8_t kTag = 0xC5;
constexpr uint8_t kVersion = 2;  // 2: variances as multiples of V, reference filter

bool Finite(double x) { return std::isfinite(x); }

// e^x for x <= 0 with relative error below 1e-9: 2^frac by a degree-9 Taylor series of
// e^(frac·ln 2), the integer part into the exponent bits. The mixture weights need about 12 of
// these per observation and libm's exp was the largest single cost of an update.
inline double FastExpNonPositive(double x) {
  if (!(x > -708.0)) return 0.0;
  const double t = x * 1.4426950408889634;  // log2(e)
  const double k = std::floor(t);
  const double r = (t - k) * 0.6931471805599453;  // in [0, ln 2)
  double p = 1.0 / 362880;
  p = p * r + 1.0 / 40320;
  p = p * r + 1.0 / 5040;
  p = p * r + 1.0 / 720;
  p = p * r + 1.0 / 120;
  p = p * r + 1.0 / 24;
  p = p * r + 1.0 / 6;
  p = p * r + 0.5;
  p = p * r + 1.0;
  p = p * r + 1.0;
  const int64_t bits = (static_cast<int64_t>(k) + 1023) << 52;
  double scale;
  std::memcpy(&scale, &bits, sizeof(scale));
  return p * scale;
}

}  // namespace

std::vector<ParamSpec> CyberstrideDetector::Specs() {
  std::vector<ParamSpec> specs = {
      {"prior_steady", 0.85, "prior probability of the steady model"},
      {"prior_transient", 0.07, "prior probability of a transient (outlier)"},
      {"prior_step", 0.05, "prior probability of a step change in level"},
      {"prior_slope", 0.03, "prior probability of a change in slope"},
      {"level_var", 0.0005,
       "evolution variance of the level per observation, in units of the observation "
       "variance V (steady, transient and slope models; the reference)"},
      {"slope_var", 1e-6, "evolution variance of the slope per observation, in units of V"},
      {"step_var", 25, "level evolution variance of the step model, in units of V"},
      {"slope_change_var", 0.25, "slope evolution variance of the slope model, in units of V"},
      {"transient_k", 100, "observation variance multiplier of the transient model"},
      {"variance_discount", 1.0, "discount of the learned observation variance (1: n' = n + 1)"},
      {"score_scale", 3.8,
       "standardised departure of the last 3 values combined that scores 0.5 (step)"},
      {"transient_scale", 3.7, "standardised error of a single value that scores half (transient)"},
      {"candidate_z", 2.0, "standardised error that makes an observation a candidate to confirm"},
      {"confirm", 1, "1: confirm a transient one observation later; 0: signal at once"},
      {"monitor_h", 0.0, "shift (in predictive s.d.) the cumulative monitor looks for; 0: off"},
      {"monitor_level", 8.0, "log Bayes factor at which the monitor scores 0.5"},
      {"clip", 4.0,
       "standardised errors are clipped at this many s.d. in the scores and in the reference's "
       "update (outlier-robust)"},
      {"intervene", 1, "1: after a step/slope signal the reference restarts from the posterior"},
      {"variance_clip", 3.0,
       "learn V from the reference forecast error clipped at this many s.d. (0: mixture-weighted "
       "as published)"},
      {"skip_repeats", 1, "1: a value equal to the previous one (held/sample-and-hold) is skipped"},
      {"prob_floor", 1e-6, "model probabilities are clamped to [floor, 1 - floor]"},
      {"interval_z", 1.96, "normal quantile of the forecast interval (Student-t corrected)"},
  };
  for (const ParamSpec& s : internal::CommonParamSpecs(30)) specs.push_back(s);
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
  for (const char* n : {"level_var", "slope_var", "step_var", "slope_change_var"}) {
    if (!(p->Get(n) >= 0 && p->Get(n) < 1e6)) return bad(n, p->Get(n), "in [0, 1e6)");
  }
  if (!(p->Get("variance_discount") > 0 && p->Get("variance_discount") <= 1)) {
    return bad("variance_discount", p->Get("variance_discount"), "in (0, 1]");
  }
  if (!(p->Get("transient_k") >= 1 && Finite(p->Get("transient_k")))) {
    return bad("transient_k", p->Get("transient_k"), ">= 1");
  }
  for (const char* n :
       {"score_scale", "transient_scale", "candidate_z", "monitor_level", "clip", "interval_z"}) {
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
  for (int j = 0; j < kNumModels; ++j) prior_[j] = prior[j] / total;
  const double lv = p.Get("level_var"), sv = p.Get("slope_var");
  k_ = {1.0, p.Get("transient_k"), 1.0, 1.0};
  wl_ = {lv, lv, p.Get("step_var"), lv};
  ws_ = {sv, sv, sv, p.Get("slope_change_var")};
  variance_discount_ = p.Get("variance_discount");
  score_scale_ = p.Get("score_scale");
  transient_scale_ = p.Get("transient_scale");
  candidate_z_ = p.Get("candidate_z");
  monitor_h_ = p.Get("monitor_h");
  monitor_level_ = p.Get("monitor_level");
  clip_ = p.Get("clip");
  prob_floor_ = p.Get("prob_floor");
  interval_q_ = p.Get("interval_z");
  confirm_ = p.Get("confirm") != 0;
  intervene_ = p.Get("intervene") != 0;
  skip_repeats_ = p.Get("skip_repeats") != 0;
  variance_clip_ = p.Get("variance_clip");
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
    c.c11 = static_cast<float>(s0 * 0.01);
    c.prob = static_cast<float>(prior_[j]);
  }
  s_.ref = s_.comp[kSteady];
  s_.n = 1;
  s_.d = s0;
  s_.last = y;
  s_.phase = 2;
}

void CyberstrideDetector::Intervene(SignalKind kind) {
  s_.mon_up = s_.mon_down = 0;
  s_.z1 = s_.z2 = 0;
  if (!intervene_) return;
  // An acknowledged change (West & Harrison §11.5): the reference restarts from the
  // multi-process posterior, which has followed the new regime, with its mixture covariance.
  double ml = 0, ms = 0;
  for (const Component& c : s_.comp) {
    ml += c.prob * c.level;
    ms += c.prob * c.slope;
  }
  double v00 = 0, v01 = 0, v11 = 0;
  for (const Component& c : s_.comp) {
    const double dl = c.level - ml, ds = c.slope - ms;
    v00 += c.prob * (c.c00 + dl * dl);
    v01 += c.prob * (c.c01 + dl * ds);
    v11 += c.prob * (c.c11 + ds * ds);
  }
  if (kind != SignalKind::kSlope) ms = s_.ref.slope;  // a step keeps the established slope
  s_.ref.level = ml;
  s_.ref.slope = ms;
  // Plus one observation variance: the new level is known only from a couple of values, so
  // the reference re-learns it from the next ones (running mean) instead of trusting it.
  s_.ref.c00 = static_cast<float>(v00 + s_.d / s_.n);
  s_.ref.c01 = static_cast<float>(v01);
  s_.ref.c11 = static_cast<float>(kind == SignalKind::kSlope ? v11 : s_.ref.c11);
}

namespace {

// Kalman prediction of a (level, slope) component with evolution variances wl, ws.
struct Pred {
  double f, r00, r01, r11;
};
inline Pred Predict(double level, double slope, float c00, float c01, float c11, double wl,
                    double ws) {
  return {level + slope, double{c00} + 2.0 * c01 + c11 + wl, double{c01} + c11, double{c11} + ws};
}

}  // namespace

Verdict CyberstrideDetector::Update(const Observation& obs) {
  Verdict v;
  const bool missing = obs.missing || !Finite(obs.value);
  const double y = obs.value;
  if (s_.phase == 2) {
    const double S = s_.d / s_.n;
    const double wl0 = wl_[kSteady] * S, ws0 = ws_[kSteady] * S;
    // Forecast before seeing y: the mixture of the components' steady forecasts.
    std::array<double, kNumModels> fi;
    double f = 0, q = 0;
    for (int i = 0; i < kNumModels; ++i) {
      const Component& c = s_.comp[i];
      fi[i] = c.level + c.slope;
      f += c.prob * fi[i];
    }
    for (int i = 0; i < kNumModels; ++i) {
      const Component& c = s_.comp[i];
      const double qi = double{c.c00} + 2.0 * c.c01 + c.c11 + wl0 + S;
      q += c.prob * (qi + (fi[i] - f) * (fi[i] - f));
    }
    const double half = internal::StudentQuantile(interval_q_, s_.n) * std::sqrt(q);
    v.forecast = f;
    v.lower = f - half;
    v.upper = f + half;
    if (missing) {
      // Forecast without update: the state moves on and its variance grows.
      auto advance = [&](Component& c) {
        const Pred pr = Predict(c.level, c.slope, c.c00, c.c01, c.c11, wl0, ws0);
        c.level = pr.f;
        c.c00 = static_cast<float>(pr.r00);
        c.c01 = static_cast<float>(pr.r01);
        c.c11 = static_cast<float>(pr.r11);
      };
      for (Component& c : s_.comp) advance(c);
      advance(s_.ref);
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

    // The reference: the steady model alone.
    const Pred rp =
        Predict(s_.ref.level, s_.ref.slope, s_.ref.c00, s_.ref.c01, s_.ref.c11, wl0, ws0);
    const double q_floor = std::max(S * 1e-12, 1e-300);
    const double q_ref = std::max(rp.r00 + S, q_floor);
    const double e_ref = y - rp.f;
    const double z = e_ref / std::sqrt(q_ref);

    // The 16 (j, i) updates. Models steady and slope differ only in the slope evolution
    // variance, which enters neither Q nor the gain of the level: they share the likelihood,
    // the means and the level covariances, and the slope pairs' weights are the steady pairs'
    // times the prior ratio. So 12 pairs are computed (models 0..2) and the slope component
    // is the steady one with its slope variance widened.
    constexpr int kM = 3;  // steady, transient, step
    const double n = s_.n;
    const bool student = n < 30;  // Student-t predictive while V is poorly known
    const double half_n1 = 0.5 * (n + 1);
    Pred pr[kM][kNumModels];  // [j][i]
    double inv_q[kM][kNumModels], w[kM][kNumModels];
    double best = -INFINITY;
    for (int i = 0; i < kNumModels; ++i) {
      const Component& c = s_.comp[i];
      const double e = y - fi[i];
      for (int j = 0; j < kM; ++j) {
        pr[j][i] = Predict(c.level, c.slope, c.c00, c.c01, c.c11, wl_[j] * S, ws_[j] * S);
        inv_q[j][i] = 1.0 / std::max(pr[j][i].r00 + k_[j] * S, q_floor);
        const double u = e * e * inv_q[j][i];
        w[j][i] = student ? -half_n1 * std::log1p(u / n) : -0.5 * u;  // exponent for now
        best = std::max(best, w[j][i]);
      }
    }
    const double slope_ratio = prior_[kSlope] / prior_[kSteady];
    double total = 0;
    for (int i = 0; i < kNumModels; ++i) {
      const double pi = s_.comp[i].prob;
      for (int j = 0; j < kM; ++j) {
        w[j][i] = prior_[j] * pi * FastExpNonPositive(w[j][i] - best) * std::sqrt(inv_q[j][i]);
        total += w[j][i] * (j == kSteady ? 1 + slope_ratio : 1.0);
      }
    }
    const double inv_total = 1.0 / total;
    double dsum = 0;
    if (variance_clip_ > 0) {
      // Robust learning: the reference forecast error, clipped, so that frequent jumps in a
      // messy series widen V instead of being explained away as a stream of events.
      dsum = S * std::min(z * z, variance_clip_ * variance_clip_);
    } else {
      for (int j = 0; j < kM; ++j) {
        for (int i = 0; i < kNumModels; ++i) {
          const double e = y - fi[i];
          dsum += w[j][i] * (j == kSteady ? 1 + slope_ratio : 1.0) * inv_total * S * e * e *
                  inv_q[j][i];
        }
      }
    }
    const double beta = variance_discount_;
    const double d_new = beta * s_.d + dsum, n_new = beta * s_.n + 1;
    const double S_new = std::max(d_new / n_new, 1e-300);
    const double ratio = S_new / std::max(S, 1e-300);

    std::array<double, kNumModels> back{}, post{};
    State next = s_;
    for (int j = 0; j < kM; ++j) {
      double pj = 0;
      double mls[kNumModels], mss[kNumModels], c00[kNumModels], c01[kNumModels], c11[kNumModels],
          wts[kNumModels];
      for (int i = 0; i < kNumModels; ++i) {
        const double wi = w[j][i] * inv_total;
        back[i] += j == kSteady ? wi * (1 + slope_ratio) : wi;
        pj += wi;
        const Pred& r = pr[j][i];
        const double e = y - fi[i];
        const double a0 = r.r00 * inv_q[j][i], a1 = r.r01 * inv_q[j][i];
        mls[i] = r.f + a0 * e;
        mss[i] = s_.comp[i].slope + a1 * e;
        c00[i] = r.r00 - a0 * r.r00;
        c01[i] = r.r01 - a0 * r.r01;
        c11[i] = r.r11 - a1 * r.r01;
        wts[i] = wi;
      }
      post[j] = pj;
      const double inv_pj = pj > 0 ? 1.0 / pj : 0.0;
      double ml = 0, ms = 0;
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
      auto store = [&](Component& out, double v11) {
        double a = v00 * ratio, b = v01 * ratio, c = v11 * ratio;
        // Keep the covariance positive definite and away from zero (relative to S).
        a = std::max(a, S_new * 1e-10);
        c = std::max(c, S_new * 1e-14);
        const double lim = 0.999 * std::sqrt(a * c);
        out.level = ml;
        out.slope = ms;
        out.c00 = static_cast<float>(a);
        out.c01 = static_cast<float>(std::clamp(b, -lim, lim));
        out.c11 = static_cast<float>(c);
      };
      store(next.comp[j], v11);
      if (j == kSteady) {
        // The slope model: same pairs, slope variance widened by its larger evolution.
        store(next.comp[kSlope], v11 + (ws_[kSlope] - ws_[kSteady]) * S);
        post[kSlope] = pj * slope_ratio;
      }
    }
    double psum = 0;
    for (int j = 0; j < kNumModels; ++j) {
      post[j] = std::clamp(post[j], prob_floor_, 1 - prob_floor_);
      psum += post[j];
    }
    for (int j = 0; j < kNumModels; ++j) next.comp[j].prob = static_cast<float>(post[j] / psum);
    next.d = d_new;
    next.n = n_new;
    {
      // The reference's own update, with the error winsorised so an outlier barely moves it.
      const double lim = clip_ * std::sqrt(q_ref);
      const double e = std::clamp(e_ref, -lim, lim);
      const double a0 = rp.r00 / q_ref, a1 = rp.r01 / q_ref;
      Component& r = next.ref;
      r.level = rp.f + a0 * e;
      r.slope = s_.ref.slope + a1 * e;
      double v00 = ratio * (rp.r00 - a0 * rp.r00), v01 = ratio * (rp.r01 - a0 * rp.r01),
             v11 = ratio * (rp.r11 - a1 * rp.r01);
      v00 = std::max(v00, S_new * 1e-10);
      v11 = std::max(v11, S_new * 1e-14);
      const double l = 0.999 * std::sqrt(v00 * v11);
      r.c00 = static_cast<float>(v00);
      r.c01 = static_cast<float>(std::clamp(v01, -l, l));
      r.c11 = static_cast<float>(v11);
    }

    bool finite = Finite(d_new) && Finite(n_new) && Finite(z) && Finite(next.ref.level) &&
                  Finite(next.ref.slope) && Finite(next.ref.c00) && Finite(next.ref.c11);
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
      s_.last = y;
      return v;
    }
    s_ = next;
    s_.last = y;
    v.probs = {s_.comp[kSteady].prob, s_.comp[kTransient].prob, s_.comp[kStep].prob,
               s_.comp[kSlope].prob};
    s_.acc_step = static_cast<float>(0.7 * s_.acc_step + v.probs.step);
    s_.acc_slope = static_cast<float>(0.7 * s_.acc_slope + v.probs.slope);

    // Scores. V is estimated from n values: the errors are Student-t, so they are deflated by
    // the ratio of the t to the normal quantile at the signal level (1 for large n).
    const double t_corr = score_scale_ / internal::StudentQuantile(score_scale_, n);
    const double zc = std::clamp(z * t_corr, -clip_, clip_);
    // The last three values together: a step of a few s.d. shows within three windows while
    // a single outlier (clipped) cannot reach the level alone. (The two-value window was tried:
    // it adds more false signals than early detections.)
    const double wmax = (zc + s_.z1 + s_.z2) / std::sqrt(3.0);
    s_.z2 = s_.z1;
    s_.z1 = static_cast<float>(zc);
    const double step = past_warmup ? internal::Graded(std::fabs(wmax), score_scale_) : 0.0;
    const double instant =
        (1.0 - v.probs.steady) * internal::Graded(std::fabs(z), transient_scale_);
    double transient = 0;
    if (s_.pending) {
      // One observation later: the one-step-back probability that the candidate was a
      // transient, times the size of its departure.
      transient = back[kTransient] * internal::Graded(std::fabs(s_.pend_z), transient_scale_);
    }
    double cumulative = 0;
    if (past_warmup && monitor_h_ > 0) {
      const double k = 0.5 * monitor_h_ * monitor_h_;
      s_.mon_up = static_cast<float>(std::max(0.0, s_.mon_up + monitor_h_ * zc - k));
      s_.mon_down = static_cast<float>(std::max(0.0, s_.mon_down - monitor_h_ * zc - k));
      cumulative = internal::Graded(std::max(s_.mon_up, s_.mon_down), monitor_level_);
    }
    v.score = std::max({instant, step, transient, cumulative});
    v.direction = z > 0 ? Direction::kUp : (z < 0 ? Direction::kDown : Direction::kNone);

    const double thr = gate_.threshold;
    const SignalKind change = s_.acc_slope > s_.acc_step ? SignalKind::kSlope : SignalKind::kStep;
    bool fire = false;
    SignalKind kind = SignalKind::kNone;
    Direction dir = v.direction;
    if (s_.pending) {
      s_.pending = 0;
      if (transient >= thr && transient >= step) {
        kind = SignalKind::kTransient;
        dir = static_cast<Direction>(s_.pend_dir);
        fire = true;
      }
    }
    if (!fire && step >= thr) {
      kind = change;
      dir = wmax > 0 ? Direction::kUp : Direction::kDown;
      fire = true;
    }
    if (!fire && cumulative >= thr) {
      kind = change;
      dir = s_.mon_up >= s_.mon_down ? Direction::kUp : Direction::kDown;
      fire = true;
    }
    if (!fire && !confirm_ && instant >= thr) {
      kind = v.probs.transient >= std::max(v.probs.step, v.probs.slope) ? SignalKind::kTransient
                                                                        : change;
      fire = true;
    }
    if (!fire && confirm_ && past_warmup && s_.gate.armed && std::fabs(z) >= candidate_z_) {
      // Armed and waiting one observation for the one-step-back probabilities.
      s_.pending = 1;
      s_.pend_z = static_cast<float>(z);
      s_.pend_dir = static_cast<int8_t>(v.direction);
    }
    if (s_.gate.armed) {
      v.signal = internal::GateDecide(gate_, s_.gate, past_warmup, fire);
    } else {
      internal::GateDecide(gate_, s_.gate, past_warmup, fire || v.score >= thr);
    }
    if (fire) {
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
  if (s_.phase == 1 && skip_repeats_ && y == s_.last) {
    v.forecast = y;  // a held first value: wait for a second measurement to initialise
    return v;
  }
  internal::GateSeen(gate_, s_.gate);
  if (s_.phase == 0) {
    s_.last = y;
    s_.phase = 1;
    v.forecast = y;
    return v;
  }
  const double first = s_.last;
  double s0 = 0.5 * (y - first) * (y - first);
  if (!(s0 > 0) || !Finite(s0)) {
    const double scale = 1e-3 * std::max(std::fabs(y), std::fabs(first));
    s0 = scale > 0 ? scale * scale : 1e-12;
  }
  v.forecast = first;
  Init(y, s0);
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
