#include "alerter/detectors/cyberstride.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace cybersyn::alerter {
namespace {

bool Finite(double x) { return std::isfinite(x); }

// The covariance b of variances a, c clamped to |b| <= 0.999·sqrt(a·c) (positive definite),
// with the square root only when the bound is reached, which is rare.
inline double ClampCovariance(double b, double a, double c) {
  if (b * b <= 0.998001 * (a * c)) return b;
  const double lim = 0.999 * std::sqrt(a * c);
  return std::clamp(b, -lim, lim);
}

// Two doubles operated on together (GCC/Clang vector extensions: SSE2 on x86-64, NEON on
// arm64): the four mixture components are processed as two pairs, which halves the arithmetic
// of the 12 likelihoods and the collapse, the bulk of an update.
typedef double D2 __attribute__((vector_size(16)));
typedef uint64_t U2 __attribute__((vector_size(16)));
constexpr D2 Splat(double x) { return D2{x, x}; }
inline double Sum(D2 x) { return x[0] + x[1]; }
// a > b ? a : b (b where a is NaN, as std::max(b, a)).
inline D2 Max(D2 a, D2 b) {
#if defined(__SSE2__)
  return __builtin_ia32_maxpd(a, b);
#else
  return a > b ? a : b;
#endif
}
inline D2 Sqrt(D2 x) {
#if defined(__SSE2__)
  return __builtin_ia32_sqrtpd(x);
#else
  return D2{std::sqrt(x[0]), std::sqrt(x[1])};
#endif
}

// e^x for x <= 0 (0 for NaN and x <= -708) with relative error about 1e-13: x/ln 2 rounded to
// the nearest integer k by the 1.5·2^52 shift (no floor(), which is a libm call without
// SSE4.1), e^r for |r| <= ln2/2 by its degree-10 Taylor polynomial in Estrin's form (short
// dependency chains), and 2^k into the exponent bits. The mixture weights need 12 of these per
// observation; libm's exp was the largest single cost of an update.
inline D2 FastExpNonPositive(D2 x) {
  const auto ok = x > Splat(-708.0);
  x = ok ? x : Splat(-708.0);
  constexpr double kShift = 0x1.8p52;
  const D2 t = x * 1.4426950408889634;     // log2(e)
  const D2 kd = t + kShift;                // k + kShift, k = the integer nearest to t
  const U2 kbits = std::bit_cast<U2>(kd);  // the low bits hold k (two's complement)
  const D2 r = (t - (kd - kShift)) * 0.6931471805599453;
  const D2 r2 = r * r, r4 = r2 * r2;
  const D2 p03 = (1.0 + r) + r2 * (0.5 + r * (1.0 / 6));
  const D2 p47 = (1.0 / 24 + r * (1.0 / 120)) + r2 * (1.0 / 720 + r * (1.0 / 5040));
  const D2 p810 = (1.0 / 40320 + r * (1.0 / 362880)) + r2 * (1.0 / 3628800);
  const D2 p = p03 + r4 * (p47 + r4 * p810);
  const U2 bits = (kbits + 1023) << 52;  // k >= -1022 here: a normal 2^k
  return ok ? p * std::bit_cast<D2>(bits) : Splat(0.0);
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
      {"level_adapt", 0.02,
       "rate at which the level variance adapts to the errors' autocorrelation (0: fixed)"},
      {"slope_var", 1e-6, "evolution variance of the slope per observation, in units of V"},
      {"step_var", 25, "level evolution variance of the step model, in units of V"},
      {"slope_change_var", 0.25, "slope evolution variance of the slope model, in units of V"},
      {"transient_k", 100, "observation variance multiplier of the transient model"},
      {"variance_discount", 1.0, "discount of the learned observation variance (1: n' = n + 1)"},
      {"relearn", 20,
       "after a signalled change (step, slope or burst of volatility) the observation variance "
       "is re-learnt as if known from this many values (0: kept)"},
      {"confirm", 1, "1: confirm a transient one observation later; 0: signal at once"},
      {"seasonal_harmonics", 4,
       "harmonics of the daily cycle learned from the time of day (0: none; at most 4)"},
      {"weekly_harmonics", 3,
       "harmonics of the weekly cycle learned from the time of week (0: none; at most 4)"},
      {"seasonal_memory", 3, "days behind the estimate of the daily cycle"},
      {"weekly_memory", 1, "weeks behind the estimate of the weekly cycle"},
      {"monitor_h", 1.25, "shift (in predictive s.d.) the cumulative monitor looks for; 0: off"},
      {"clip", 4.0,
       "standardised errors are clipped at this many s.d. in the scores and in the reference's "
       "update (outlier-robust)"},
      {"intervene", 1, "1: after a step/slope signal the reference restarts from the posterior"},
      {"variance_clip", 3.0,
       "learn V from the reference forecast error clipped at this many s.d. (0: mixture-weighted "
       "as published)"},
      {"ar_horizon", 100,
       "observations behind the estimate of the errors' lag-1 autocorrelation, for which the "
       "cumulative monitor corrects (0: errors taken as independent)"},
      {"skip_repeats", 1, "1: a value equal to the previous one (held/sample-and-hold) is skipped"},
      {"prob_floor", 1e-6, "model probabilities are clamped to [floor, 1 - floor]"},
      {"interval_z", 1.96, "normal quantile of the forecast interval (Student-t corrected)"},
  };
  // Re-armed after 15 quiet values, not 5: a disturbance that has calmed for a few values often
  // flares again (one event, one signal), and a repeat spends the series' alert budget.
  for (const ParamSpec& s : internal::CommonParamSpecs(30, 15)) specs.push_back(s);
  for (const ParamSpec& s : internal::CalibrationParamSpecs()) specs.push_back(s);
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
  if (!(p->Get("relearn") == 0 || (p->Get("relearn") >= 2 && Finite(p->Get("relearn"))))) {
    return bad("relearn", p->Get("relearn"), "0 or >= 2");
  }
  if (!(p->Get("transient_k") >= 1 && Finite(p->Get("transient_k")))) {
    return bad("transient_k", p->Get("transient_k"), ">= 1");
  }
  if (!(p->Get("seasonal_harmonics") >= 0 && p->Get("seasonal_harmonics") <= 4 &&
        p->Get("seasonal_harmonics") == std::floor(p->Get("seasonal_harmonics")))) {
    return bad("seasonal_harmonics", p->Get("seasonal_harmonics"), "an integer in [0, 4]");
  }
  if (!(p->Get("weekly_harmonics") >= 0 && p->Get("weekly_harmonics") <= 4 &&
        p->Get("weekly_harmonics") == std::floor(p->Get("weekly_harmonics")))) {
    return bad("weekly_harmonics", p->Get("weekly_harmonics"), "an integer in [0, 4]");
  }
  if (!(p->Get("weekly_memory") >= 1 && p->Get("weekly_memory") <= 100)) {
    return bad("weekly_memory", p->Get("weekly_memory"), "in [1, 100]");
  }
  if (!(p->Get("seasonal_memory") >= 1 && p->Get("seasonal_memory") <= 1000)) {
    return bad("seasonal_memory", p->Get("seasonal_memory"), "in [1, 1000]");
  }
  for (const char* n : {"clip", "interval_z"}) {
    if (!(p->Get(n) > 0 && Finite(p->Get(n)))) return bad(n, p->Get(n), "> 0");
  }
  if (!(p->Get("monitor_h") >= 0 && Finite(p->Get("monitor_h")))) {
    return bad("monitor_h", p->Get("monitor_h"), ">= 0");
  }
  if (!(p->Get("prob_floor") > 0 && p->Get("prob_floor") < 0.01)) {
    return bad("prob_floor", p->Get("prob_floor"), "in (0, 0.01)");
  }
  if (!(p->Get("ar_horizon") == 0 || (p->Get("ar_horizon") >= 1 && Finite(p->Get("ar_horizon"))))) {
    return bad("ar_horizon", p->Get("ar_horizon"), "0 or >= 1");
  }
  if (!(p->Get("variance_clip") >= 0 && Finite(p->Get("variance_clip")))) {
    return bad("variance_clip", p->Get("variance_clip"), ">= 0");
  }
  for (const char* n : {"confirm", "intervene", "skip_repeats"}) {
    if (p->Get(n) != 0 && p->Get(n) != 1) return bad(n, p->Get(n), "0 or 1");
  }
  if (absl::Status st = internal::CheckCalibrationParams(kKind, *p); !st.ok()) return st;
  return std::unique_ptr<Detector>(new CyberstrideDetector(*p));
}

CyberstrideDetector::CyberstrideDetector(const internal::Params& p)
    : budget_(p.Get("alert_budget")),
      tail_(p.Get("calibration_horizon"), p.Get("calibration_prior")),
      seasonal_(static_cast<int>(p.Get("seasonal_harmonics")), p.Get("seasonal_memory")),
      weekly_(static_cast<int>(p.Get("weekly_harmonics")), p.Get("weekly_memory"),
              7 * internal::Seasonal::kDayMs) {
  const double prior[kNumModels] = {p.Get("prior_steady"), p.Get("prior_transient"),
                                    p.Get("prior_step"), p.Get("prior_slope")};
  const double total = prior[0] + prior[1] + prior[2] + prior[3];
  for (int j = 0; j < kNumModels; ++j) prior_[j] = prior[j] / total;
  transient_k_ = p.Get("transient_k");
  level_var_ = p.Get("level_var");
  slope_var_ = p.Get("slope_var");
  step_var_ = p.Get("step_var");
  slope_change_var_ = p.Get("slope_change_var");
  slope_ratio_ = prior_[kSlope] / prior_[kSteady];
  steady_share_ = 1 + slope_ratio_;
  variance_discount_ = p.Get("variance_discount");
  relearn_ = p.Get("relearn");
  monitor_h_ = p.Get("monitor_h");
  clip_ = p.Get("clip");
  prob_floor_ = p.Get("prob_floor");
  interval_q_ = p.Get("interval_z");
  confirm_ = p.Get("confirm") != 0;
  intervene_ = p.Get("intervene") != 0;
  skip_repeats_ = p.Get("skip_repeats") != 0;
  variance_clip_ = p.Get("variance_clip");
  ar_rate_ = p.Get("ar_horizon") > 0 ? 1.0 / p.Get("ar_horizon") : 0.0;
  adapt_ = p.Get("level_adapt");
  gate_ = internal::GateConfigFrom(p);
  interval_t_ = internal::StudentQuantileCoef(interval_q_);
  score_t_ = internal::StudentQuantileCoef(kDeflateZ);
  for (internal::TailState& t : s_.tail) t = tail_.Fresh();
}

void CyberstrideDetector::Init(double y, double s0) {
  State fresh;
  fresh.gate = s_.gate;
  fresh.spacing = s_.spacing;
  fresh.tail = s_.tail;
  fresh.seasonal = s_.seasonal;
  fresh.weekly = s_.weekly;
  fresh.last = s_.last;
  s_ = fresh;
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
  s_.phase = 2;
}

void CyberstrideDetector::Intervene(SignalKind kind) {
  s_.mon_up = s_.mon_down = s_.mon_var = 0;
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
inline Pred PredictComponent(double level, double slope, float c00, float c01, float c11, double wl,
                             double ws) {
  return {level + slope, double{c00} + 2.0 * c01 + c11 + wl, double{c01} + c11, double{c11} + ws};
}

// Models steady, transient and step are computed as (j, i) pairs; slope shares steady's.
constexpr int kM = 3;

}  // namespace

// Predict: the mixture before seeing y, its components unpacked from the persisted precision as
// pairs (0, 1) and (2, 3).
struct CyberstrideDetector::Prediction {
  double S, inv_n, wl0, ws0;  // V estimate, 1 / its count of values; steady evolution variances
  D2 slo[2], c01[2], c11[2], prob[2], fi[2], pv[2];  // pv: Var(level + slope)
  double f, q;                                       // mixture forecast and its variance
};

// Update: the reference's forecast error and the 12 (model j, previous model i) Kalman updates,
// weighted by prior × posterior of i × predictive density, plus the learned variance.
struct CyberstrideDetector::Pairs {
  Pred rp;                 // the reference's prediction
  double q_ref, e_ref, z;  // its forecast variance, error and standardised error
  D2 e[2], r00[kM][2], r01[2], r11[2], inv_q[kM][2], w[kM][2];  // [j][pair of i]
  double inv_total;                                             // 1 / the sum of the weights
  double d_new, n_new, ratio;  // variance learning: S_new = d_new / n_new = ratio · S
};

// Score: the raw evidence of this observation, from the reference's standardised error.
struct CyberstrideDetector::Evidence {
  double z;               // standardised error against the reference
  double instant;         // z prewhitened for the errors' autocorrelation (the spike statistic)
  double window;          // (z_t + z_{t-1} + z_{t-2}) / √3 of the clipped, deflated errors
  double monitor;         // larger of the two cumulative monitors (log Bayes factor, nats)
  double volatility;      // the variance monitor (log Bayes factor, nats)
  double back_transient;  // one-step-back probability that the previous value was a transient
};

// Calibrate: each statistic's tail probability on this series, and the combined score.
struct CyberstrideDetector::Scores {
  enum Stat { kInstant = 0, kWindow = 1, kMonitor = 2, kVolatility = 3 };
  double log_p[kStats];  // ln P(statistic at least this extreme) on this series
  double log_r;          // ln of the budgeted false-signal probability per statistic
  double score;          // calibrated: 0.5 when the most extreme statistic is at the budget
  int which;             // the most extreme statistic
};

Verdict CyberstrideDetector::Update(const Observation& obs) {
  const bool missing = obs.missing || !Finite(obs.value);
  // The model runs on the value less its usual part at this time of day and of the week.
  const double gap = s_.spacing.mean_gap_ms;
  const internal::Seasonal::Basis basis = seasonal_.At(obs.time_ms);
  const internal::Seasonal::Basis week_basis = weekly_.At(obs.time_ms);
  const double cycle =
      seasonal_.Value(s_.seasonal, basis, gap) + weekly_.Value(s_.weekly, week_basis, gap);
  const double y = obs.value - cycle;
  if (s_.phase < 2) return Initialise(obs.value, y, missing);
  Verdict v;
  const Prediction pr = Predict();
  const double half = interval_t_.At(pr.inv_n) * std::sqrt(pr.q);
  v.forecast = pr.f + cycle;
  v.lower = v.forecast - half;
  v.upper = v.forecast + half;
  if (missing) {
    Coast(pr);
    internal::MissingVerdict(gate_, s_.gate, v);
    v.probs = Probs();
    return v;
  }
  if (skip_repeats_ && obs.value == s_.last) {
    // A held value carries no new measurement: no update, counts as normal for re-arming.
    // Not counted towards warm-up, which is measured in real measurements.
    const bool past = s_.gate.seen > static_cast<uint64_t>(gate_.warmup);
    s_.gate.missing_run = 0;
    if (s_.pending) {
      ConfirmHeld(v);
    } else if (!s_.gate.armed) {
      internal::GateDecide(gate_, s_.gate, past, false);
    }
    v.probs = Probs();
    return v;
  }
  const bool past_warmup = internal::GateSeen(gate_, s_.gate);
  Pairs pairs;
  UpdateModels(pr, y, pairs);
  const double back_transient = Collapse(pr, pairs);
  if (!StateIsFinite(pairs)) {
    // Reset: start afresh from this value (counted by the caller).
    v.reset = true;
    State fresh;
    fresh.gate = s_.gate;
    fresh.spacing = s_.spacing;
    fresh.tail = s_.tail;  // the series' calibration and cycle survive
    fresh.seasonal = s_.seasonal;
    fresh.weekly = s_.weekly;
    s_ = fresh;
    s_.phase = 1;
    s_.last = obs.value;
    return v;
  }
  s_.last = obs.value;
  {
    // The cycle learns from the reference's error, winsorised like the reference's own update.
    const double lim = clip_ * std::sqrt(pairs.q_ref);
    const double e = std::clamp(pairs.e_ref, -lim, lim);
    seasonal_.Learn(s_.seasonal, basis, e, gap);
    weekly_.Learn(s_.weekly, week_basis, e, gap);
  }
  budget_.Observe(s_.spacing, obs.time_ms);
  v.probs = Probs();
  s_.acc_step = static_cast<float>(0.7 * s_.acc_step + v.probs.step);
  s_.acc_slope = static_cast<float>(0.7 * s_.acc_slope + v.probs.slope);
  const Evidence ev = Score(pairs.z, pr.inv_n, back_transient, past_warmup);
  const Scores sc = Calibrate(ev, past_warmup);
  v.score = sc.score;
  v.direction = ev.z > 0 ? Direction::kUp : (ev.z < 0 ? Direction::kDown : Direction::kNone);
  Gate(ev, sc, past_warmup, v);
  return v;
}

CyberstrideDetector::Prediction CyberstrideDetector::Predict() const {
  Prediction pr;
  pr.S = s_.d / s_.n;
  pr.inv_n = 1.0 / s_.n;
  pr.wl0 = level_var_ * s_.w_factor * pr.S;
  pr.ws0 = slope_var_ * pr.S;
  for (int h = 0; h < 2; ++h) {
    const Component& a = s_.comp[2 * h];
    const Component& b = s_.comp[2 * h + 1];
    pr.slo[h] = D2{a.slope, b.slope};
    pr.c01[h] = D2{a.c01, b.c01};
    pr.c11[h] = D2{a.c11, b.c11};
    pr.prob[h] = D2{a.prob, b.prob};
    pr.fi[h] = D2{a.level, b.level} + pr.slo[h];
    pr.pv[h] = D2{a.c00, b.c00} + 2.0 * pr.c01[h] + pr.c11[h];
  }
  // The mixture of the components' steady forecasts.
  pr.f = Sum(pr.prob[0] * pr.fi[0] + pr.prob[1] * pr.fi[1]);
  pr.q = 0;
  for (int h = 0; h < 2; ++h) {
    const D2 df = pr.fi[h] - pr.f;
    pr.q += Sum(pr.prob[h] * (pr.pv[h] + pr.wl0 + pr.S + df * df));
  }
  return pr;
}

void CyberstrideDetector::Coast(const Prediction& pr) {
  // Forecast without update: the state moves on and its variance grows.
  auto advance = [&](Component& c) {
    const Pred p = PredictComponent(c.level, c.slope, c.c00, c.c01, c.c11, pr.wl0, pr.ws0);
    c.level = p.f;
    c.c00 = static_cast<float>(p.r00);
    c.c01 = static_cast<float>(p.r01);
    c.c11 = static_cast<float>(p.r11);
  };
  for (Component& c : s_.comp) advance(c);
  advance(s_.ref);
  s_.pending = 0;
}

void CyberstrideDetector::UpdateModels(const Prediction& pr, double y, Pairs& u) const {
  const double S = pr.S;
  // The reference: the steady model alone.
  u.rp = PredictComponent(s_.ref.level, s_.ref.slope, s_.ref.c00, s_.ref.c01, s_.ref.c11, pr.wl0,
                          pr.ws0);
  const double q_floor = std::max(S * 1e-12, 1e-300);
  u.q_ref = std::max(u.rp.r00 + S, q_floor);
  u.e_ref = y - u.rp.f;
  u.z = u.e_ref / std::sqrt(u.q_ref);

  // Models steady and slope differ only in the slope evolution variance, which enters neither
  // Q nor the gain of the level: they share the likelihood, the means and the level
  // covariances, and the slope pairs' weights are the steady pairs' times the prior ratio. So
  // 12 pairs are computed (models 0..2) and the slope component is the steady one with its
  // slope variance widened. Steady and transient also share the prediction (they differ in the
  // observation variance only), and the slope rows r01, r11 of the prediction are common to
  // all three.
  const double n = s_.n;
  const double step_l = step_var_ * S, trans_v = transient_k_ * S;
  const D2 qf = Splat(q_floor);
  for (int h = 0; h < 2; ++h) {
    u.e[h] = y - pr.fi[h];
    u.r00[0][h] = u.r00[1][h] = pr.pv[h] + pr.wl0;
    u.r00[2][h] = pr.pv[h] + step_l;
    u.r01[h] = pr.c01[h] + pr.c11[h];
    u.r11[h] = pr.c11[h] + pr.ws0;
    u.inv_q[0][h] = 1.0 / Max(u.r00[0][h] + S, qf);
    u.inv_q[1][h] = 1.0 / Max(u.r00[1][h] + trans_v, qf);
    u.inv_q[2][h] = 1.0 / Max(u.r00[2][h] + S, qf);
  }
  // Log predictive densities (without the common constant), then the largest for scaling.
  D2 best2 = Splat(-INFINITY);
  for (int j = 0; j < kM; ++j) {
    for (int h = 0; h < 2; ++h) {
      const D2 uu = u.e[h] * u.e[h] * u.inv_q[j][h];
      if (n < 30) {  // Student-t predictive while V is poorly known
        const double half_n1 = 0.5 * (n + 1);
        u.w[j][h] = D2{-half_n1 * std::log1p(uu[0] / n), -half_n1 * std::log1p(uu[1] / n)};
      } else {
        u.w[j][h] = -0.5 * uu;
      }
      best2 = Max(u.w[j][h], best2);
    }
  }
  const double best = std::max(best2[0], best2[1]);
  double total = 0;
  for (int j = 0; j < kM; ++j) {
    for (int h = 0; h < 2; ++h) {
      u.w[j][h] =
          prior_[j] * pr.prob[h] * FastExpNonPositive(u.w[j][h] - best) * Sqrt(u.inv_q[j][h]);
    }
    const double row = Sum(u.w[j][0] + u.w[j][1]);
    total += j == kSteady ? row * steady_share_ : row;
  }
  u.inv_total = 1.0 / total;
  LearnVariance(pr, u);
}

void CyberstrideDetector::LearnVariance(const Prediction& pr, Pairs& u) const {
  const double S = pr.S;
  double dsum = 0;
  if (variance_clip_ > 0) {
    // Robust learning: the reference forecast error, clipped, so that frequent jumps in a
    // messy series widen V instead of being explained away as a stream of events.
    dsum = S * std::min(u.z * u.z, variance_clip_ * variance_clip_);
  } else {
    for (int j = 0; j < kM; ++j) {
      for (int h = 0; h < 2; ++h) {
        dsum += Sum(u.w[j][h] * (j == kSteady ? steady_share_ : 1.0) * u.inv_total * S * u.e[h] *
                    u.e[h] * u.inv_q[j][h]);
      }
    }
  }
  const double beta = variance_discount_;
  u.d_new = beta * s_.d + dsum;
  u.n_new = beta * s_.n + 1;
  const double S_new = std::max(u.d_new / u.n_new, 1e-300);
  u.ratio = S_new / std::max(S, 1e-300);
}

double CyberstrideDetector::Collapse(const Prediction& pr, const Pairs& u) {
  // Each model j's updated pairs into one component by moment matching. The state is written in
  // place; Update discards it if anything came out non-finite.
  const double S_new = std::max(u.d_new / u.n_new, 1e-300);
  const double a_floor = S_new * 1e-10, c_floor = S_new * 1e-14;
  double post[kNumModels];
  double back_transient = 0;  // one-step-back probability of the transient model
  auto store = [&](Component& out, double ml, double ms, double v00, double v01, double v11) {
    double a = v00 * u.ratio, b = v01 * u.ratio, c = v11 * u.ratio;
    // Keep the covariance positive definite and away from zero (relative to S).
    a = std::max(a, a_floor);
    c = std::max(c, c_floor);
    out.level = ml;
    out.slope = ms;
    out.c00 = static_cast<float>(a);
    out.c01 = static_cast<float>(ClampCovariance(b, a, c));
    out.c11 = static_cast<float>(c);
  };
  for (int j = 0; j < kM; ++j) {
    D2 mls[2], mss[2], p00[2], p01[2], p11[2], wts[2];
    for (int h = 0; h < 2; ++h) {
      wts[h] = u.w[j][h] * u.inv_total;
      const D2 a0 = u.r00[j][h] * u.inv_q[j][h], a1 = u.r01[h] * u.inv_q[j][h];
      mls[h] = pr.fi[h] + a0 * u.e[h];
      mss[h] = pr.slo[h] + a1 * u.e[h];
      p00[h] = u.r00[j][h] - a0 * u.r00[j][h];
      p01[h] = u.r01[h] - a0 * u.r01[h];
      p11[h] = u.r11[h] - a1 * u.r01[h];
    }
    const double pj = Sum(wts[0] + wts[1]);
    back_transient += j == kSteady ? wts[0][kTransient] * steady_share_ : wts[0][kTransient];
    post[j] = pj;
    const double inv_pj = pj > 0 ? 1.0 / pj : 0.0;
    wts[0] *= inv_pj;
    wts[1] *= inv_pj;
    const double ml = Sum(wts[0] * mls[0] + wts[1] * mls[1]);
    const double ms = Sum(wts[0] * mss[0] + wts[1] * mss[1]);
    D2 v00 = Splat(0), v01 = Splat(0), v11 = Splat(0);
    for (int h = 0; h < 2; ++h) {
      const D2 dl = mls[h] - ml, ds = mss[h] - ms;
      v00 += wts[h] * (p00[h] + dl * dl);
      v01 += wts[h] * (p01[h] + dl * ds);
      v11 += wts[h] * (p11[h] + ds * ds);
    }
    store(s_.comp[j], ml, ms, Sum(v00), Sum(v01), Sum(v11));
    if (j == kSteady) {
      // The slope model: same pairs, slope variance widened by its larger evolution.
      store(s_.comp[kSlope], ml, ms, Sum(v00), Sum(v01),
            Sum(v11) + (slope_change_var_ - slope_var_) * pr.S);
      post[kSlope] = pj * slope_ratio_;
    }
  }
  double psum = 0;
  for (int j = 0; j < kNumModels; ++j) {
    post[j] = std::clamp(post[j], prob_floor_, 1 - prob_floor_);
    psum += post[j];
  }
  const double inv_psum = 1.0 / psum;
  for (int j = 0; j < kNumModels; ++j) s_.comp[j].prob = static_cast<float>(post[j] * inv_psum);
  s_.d = u.d_new;
  s_.n = u.n_new;
  UpdateReference(u, a_floor, c_floor);
  return back_transient;
}

void CyberstrideDetector::UpdateReference(const Pairs& u, double a_floor, double c_floor) {
  // The reference's own update, with the error winsorised so an outlier barely moves it.
  const double lim = clip_ * std::sqrt(u.q_ref);
  const double e = std::clamp(u.e_ref, -lim, lim);
  const double a0 = u.rp.r00 / u.q_ref, a1 = u.rp.r01 / u.q_ref;
  Component& r = s_.ref;
  r.level = u.rp.f + a0 * e;
  r.slope = r.slope + a1 * e;
  double v00 = u.ratio * (u.rp.r00 - a0 * u.rp.r00), v01 = u.ratio * (u.rp.r01 - a0 * u.rp.r01),
         v11 = u.ratio * (u.rp.r11 - a1 * u.rp.r01);
  v00 = std::max(v00, a_floor);
  v11 = std::max(v11, c_floor);
  r.c00 = static_cast<float>(v00);
  r.c01 = static_cast<float>(ClampCovariance(v01, v00, v11));
  r.c11 = static_cast<float>(v11);
}

bool CyberstrideDetector::StateIsFinite(const Pairs& u) const {
  // x - x is 0 for a finite x and NaN otherwise: one test instead of one branch per field.
  double nonfinite = (u.d_new - u.d_new) + (u.n_new - u.n_new) + (u.z - u.z);
  auto check = [&nonfinite](double x) { nonfinite += x - x; };
  check(s_.ref.level);
  check(s_.ref.slope);
  check(s_.ref.c00);
  check(s_.ref.c11);
  for (const Component& c : s_.comp) {
    check(c.level);
    check(c.slope);
    check(c.c00);
    check(c.c01);
    check(c.c11);
    check(c.prob);
  }
  return nonfinite == 0;
}

CyberstrideDetector::Evidence CyberstrideDetector::Score(double z, double inv_n,
                                                         double back_transient, bool past_warmup) {
  Evidence ev{z, 0, 0, 0, 0, back_transient};
  // V is estimated from n values: the errors are Student-t, so they are deflated by the ratio
  // of the t to the normal quantile at a typical signal level (1 for large n).
  const double t_corr = kDeflateZ / score_t_.At(inv_n);
  const double zc = std::clamp(z * t_corr, -clip_, clip_);
  // Lag-1 autocorrelation ρ of the errors (estimated before this one; errors winsorised at
  // 2.5 so that an event is not taken for correlated noise). A cumulative sum of positively
  // correlated errors varies more than one of independent errors: (1 + ρ)/(1 − ρ) per term
  // for AR(1) errors, so the monitor's increments are scaled by √((1 − ρ)/(1 + ρ)). Without
  // it the monitor signalled on smooth but noisy series (process variables, sensors with
  // inertia). The spike statistic is the error prewhitened, (z_t − ρ z_{t−1}) / √(1 − ρ²): on
  // a smooth series a jump stands out against the innovations, not against the wander.
  double rho = 0;
  if (ar_rate_ > 0) {
    const double rho_raw = s_.ac0 > 0 ? s_.ac1 / s_.ac0 : 0.0;
    rho = std::clamp(rho_raw, 0.0, 0.9);
    // Learnt from ordinary values only: while the level monitor holds evidence of a shift,
    // the run of same-signed errors it produces is the event, not the noise's correlation
    // (counted as correlation, it scaled the monitor's own increments down and hid the shift).
    if (std::max(s_.mon_up, s_.mon_down) < internal::TailModel::kLevel1) {
      if (adapt_ > 0) {
        // The level's evolution variance adapts to the series: forecast errors correlated
        // positively mean a level that moves faster than assumed (raise it), negatively one
        // that moves slower (lower it). At the fixed point the errors are uncorrelated.
        s_.w_factor = static_cast<float>(
            std::clamp(s_.w_factor * (1 + adapt_ * (rho_raw - kAdaptRho)), 1.0, kMaxW));
      }
      const double zw = std::clamp(zc, -2.5, 2.5), zw1 = std::clamp<double>(s_.z1, -2.5, 2.5);
      s_.ac0 = static_cast<float>(s_.ac0 + ar_rate_ * (zw * zw - s_.ac0));
      s_.ac1 = static_cast<float>(s_.ac1 + ar_rate_ * (zw * zw1 - s_.ac1));
    }
  }
  const double zt = z * t_corr;
  ev.instant = rho > 0 ? (zt - rho * s_.z1) / std::sqrt(1 - rho * rho) : zt;
  // The last three values together: a step of a few s.d. shows within three windows while
  // a single outlier (clipped) cannot reach the level alone. (Correcting the window for ρ
  // too, its estimate noisy on independent errors, misses 3σ steps that should show within
  // three values.)
  ev.window = (zc + s_.z1 + s_.z2) * 0.57735026918962576;  // 1/√3
  s_.z2 = s_.z1;
  s_.z1 = static_cast<float>(zc);
  if (past_warmup && monitor_h_ > 0) {
    const double k = 0.5 * monitor_h_ * monitor_h_;
    const double zm = rho > 0 ? zc * std::sqrt((1 - rho) / (1 + rho)) : zc;
    s_.mon_up = static_cast<float>(std::max(0.0, s_.mon_up + monitor_h_ * zm - k));
    s_.mon_down = static_cast<float>(std::max(0.0, s_.mon_down - monitor_h_ * zm - k));
    ev.monitor = std::max(s_.mon_up, s_.mon_down);
    // The variance monitor: the log Bayes factor of the errors' s.d. doubled against
    // unchanged, (z²/2)(1 − 1/4) − ln 2 per value, accumulated like the level's. It catches a
    // burst of volatility or of moderate spikes that no single value shows.
    s_.mon_var = static_cast<float>(std::max(0.0, s_.mon_var + 0.375 * zc * zc - M_LN2));
    ev.volatility = s_.mon_var;
  }
  return ev;
}

CyberstrideDetector::Scores CyberstrideDetector::Calibrate(const Evidence& ev, bool past_warmup) {
  // Each statistic as a surprise in nats under its nominal model (a standard normal for the
  // errors; the monitor is a log Bayes factor already), judged against this series' own tail.
  const double surprise[kStats] = {internal::NormalSurprise(ev.instant),
                                   internal::NormalSurprise(ev.window), ev.monitor, ev.volatility};
  Scores sc;
  // The budget is shared by the statistics (Bonferroni): each gets a third.
  sc.log_r = internal::FastLog(budget_.Rate(s_.spacing) / 2);
  double best = 0;
  sc.which = Scores::kInstant;
  for (int i = 0; i < kStats; ++i) {
    sc.log_p[i] = tail_.LogTail(s_.tail[i], surprise[i]);
    if (sc.log_p[i] < best) {
      best = sc.log_p[i];
      sc.which = i;
    }
  }
  const double log_r = sc.log_r + budget_.LogTightening(s_.spacing);
  sc.score = past_warmup ? internal::CalibratedScore(best, log_r) : 0.0;
  if (past_warmup) CapMonitors(sc, log_r);
  if (past_warmup) {
    // What the tails learn. The spike and window statistics: every value. The monitors: the
    // peak of each excursion, when it ends (a cumulative sum's values within one excursion
    // are one event, and a shift builds one long excursion: learnt value by value it taught
    // the tail, while it grew, that such sums are ordinary), so their tails are of excursion
    // peaks, per value. A value beyond the threshold counts as the threshold: one anomaly
    // must not teach the series that anomalies are normal.
    double learn[kStats] = {surprise[0], surprise[1], 0, 0};
    for (int i = Scores::kMonitor; i <= Scores::kVolatility; ++i) {
      float& peak = s_.peak[i - Scores::kMonitor];
      if (surprise[i] > 0) {
        peak = std::max(peak, static_cast<float>(surprise[i]));
      } else {
        learn[i] = peak;
        peak = 0;
      }
    }
    for (int i = 0; i < kStats; ++i) {
      // (Only a value above kLevel1 can be beyond the threshold: r is far below q.)
      const double log_p = i < Scores::kMonitor ? sc.log_p[i]
                           : learn[i] > internal::TailModel::kLevel1
                               ? tail_.LogTail(s_.tail[i], learn[i])
                               : 0.0;
      const double x = log_p < sc.log_r ? tail_.Threshold(s_.tail[i], sc.log_r) : learn[i];
      tail_.Add(s_.tail[i], x);
    }
  }
  return sc;
}

void CyberstrideDetector::CapMonitors(const Scores& sc, double log_r) {
  // A cumulative monitor beyond the series' threshold holds all the evidence a signal needs;
  // summed on without bound during a long event (one the gate took for a transient, so nothing
  // restarted), it took hundreds of values to drain after the event ended, holding the score
  // above 0.5 and the gate disarmed. Capped kMonitorCap nats beyond the threshold, it drains
  // within a few values of the event's end.
  if (sc.log_p[Scores::kMonitor] < log_r) {
    const float cap =
        static_cast<float>(tail_.Threshold(s_.tail[Scores::kMonitor], log_r) + kMonitorCap);
    s_.mon_up = std::min(s_.mon_up, cap);
    s_.mon_down = std::min(s_.mon_down, cap);
  }
  if (sc.log_p[Scores::kVolatility] < log_r) {
    s_.mon_var = std::min(
        s_.mon_var,
        static_cast<float>(tail_.Threshold(s_.tail[Scores::kVolatility], log_r) + kMonitorCap));
  }
}

void CyberstrideDetector::Gate(const Evidence& ev, const Scores& sc, bool past_warmup, Verdict& v) {
  const bool above = sc.score >= gate_.threshold;
  const SignalKind change = s_.acc_slope > s_.acc_step ? SignalKind::kSlope : SignalKind::kStep;
  bool fire = false;
  SignalKind kind = SignalKind::kNone;
  Direction dir = v.direction;
  if (s_.pending) {
    // One value after a spike: the one-step-back probabilities tell a transient from a step.
    s_.pending = 0;
    fire = true;
    kind = ev.back_transient >= 0.5 ? SignalKind::kTransient : change;
    dir = static_cast<Direction>(s_.pend_dir);
  } else if (above && sc.which == Scores::kVolatility) {
    fire = true;
    kind = SignalKind::kTransient;  // a burst of volatility: disturbed, not moved
    dir = Direction::kUp;
  } else if (above && sc.which != Scores::kInstant) {
    fire = true;
    kind = change;
    if (sc.which == Scores::kWindow) {
      dir = ev.window > 0 ? Direction::kUp : Direction::kDown;
    } else {
      dir = s_.mon_up >= s_.mon_down ? Direction::kUp : Direction::kDown;
    }
  } else if (above && !confirm_) {
    fire = true;
    kind = v.probs.transient >= std::max(v.probs.step, v.probs.slope) ? SignalKind::kTransient
                                                                      : change;
  } else if (above && past_warmup && s_.gate.armed) {
    // Armed and waiting one observation for the one-step-back probabilities.
    s_.pending = 1;
    s_.pend_dir = static_cast<int8_t>(v.direction);
  }
  if (s_.gate.armed) {
    v.signal = internal::GateDecide(gate_, s_.gate, past_warmup, fire);
  } else {
    internal::GateDecide(gate_, s_.gate, past_warmup, fire || above);
    // Re-armed after a step: the new level held for `rearm` values against the reference
    // that restarted on it.
    if (s_.gate.armed && s_.new_level_pending) {
      v.new_level = true;
      s_.new_level_pending = 0;
    }
  }
  if (fire) {
    v.kind = kind;
    v.direction = dir;
  } else {
    v.direction = Direction::kNone;
  }
  budget_.Account(s_.spacing, v.signal);
  if (v.signal && (kind == SignalKind::kStep || kind == SignalKind::kSlope)) {
    Intervene(kind);
    s_.new_level_pending = 1;
    Relearn();
  } else if (above && sc.which == Scores::kVolatility) {
    Relearn();  // signalled or not (a spike may have signalled the change already)
  }
}

void CyberstrideDetector::ConfirmHeld(Verdict& v) {
  // A surprising value awaits confirmation and the source repeats it: it was not a one-value
  // transient, the level has moved and is held there (a sample-and-hold column, a setpoint).
  // Without this the candidate waited for the next distinct value, which a held level may not
  // send for hours. The evidence is the previous value's, which reached the threshold; the
  // verdict carries the threshold as its score.
  s_.pending = 0;
  v.signal = internal::GateDecide(gate_, s_.gate, true, true);
  v.score = gate_.threshold;
  v.kind = s_.acc_slope > s_.acc_step ? SignalKind::kSlope : SignalKind::kStep;
  v.direction = static_cast<Direction>(s_.pend_dir);
  budget_.Account(s_.spacing, v.signal);
  if (v.signal) {
    Intervene(v.kind);
    s_.new_level_pending = 1;
    Relearn();
  }
}

void CyberstrideDetector::Relearn() {
  // A change often brings a new noise level (a machine on a new load, a burst of volatility
  // that persists). V is a running mean over every value so far: on an old series it would take
  // as many values again to follow, and meanwhile every ordinary value of the new regime would
  // look extreme (the variance monitor stuck far above its threshold, the gate never
  // re-arming). Its count is cut to `relearn` values, keeping its estimate: the next values
  // weigh as much as all the old ones.
  if (relearn_ > 0 && s_.n > relearn_) {
    s_.d *= relearn_ / s_.n;
    s_.n = relearn_;
  }
}

Verdict CyberstrideDetector::Initialise(double y, double level, bool missing) {
  // phase 0/1: initialisation from the first two values (`level`: y less the cycle).
  Verdict v;
  if (missing) {
    internal::MissingVerdict(gate_, s_.gate, v);
    return v;
  }
  if (s_.phase == 1 && skip_repeats_ && y == s_.last) {
    v.forecast = y;  // a held first value: wait for a second measurement to initialise
    return v;
  }
  internal::GateSeen(gate_, s_.gate);
  s_.spacing.last_ms = INT64_MIN;  // after a reset too, a fresh gap
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
  Init(level, s0);
  s_.last = y;
  v.probs = Probs();
  return v;
}

ModelProbs CyberstrideDetector::Probs() const {
  return {s_.comp[kSteady].prob, s_.comp[kTransient].prob, s_.comp[kStep].prob,
          s_.comp[kSlope].prob};
}

std::string CyberstrideDetector::Serialize() const {
  v1::DetectorState state;
  v1::CyberstrideState& c = *state.mutable_cyberstride();
  auto component = [&c](const Component& x) {
    c.add_level(x.level);
    c.add_slope(x.slope);
    c.add_covariance(x.c00);
    c.add_covariance(x.c01);
    c.add_covariance(x.c11);
  };
  for (const Component& x : s_.comp) {
    component(x);
    c.add_probability(x.prob);
  }
  component(s_.ref);
  c.set_d(s_.d);
  c.set_n(s_.n);
  c.set_last(s_.last);
  c.set_monitor_up(s_.mon_up);
  c.set_monitor_down(s_.mon_down);
  c.set_monitor_variance(s_.mon_var);
  c.set_recent_step(s_.acc_step);
  c.set_recent_slope(s_.acc_slope);
  c.set_z1(s_.z1);
  c.set_z2(s_.z2);
  c.set_ac0(s_.ac0);
  c.set_ac1(s_.ac1);
  c.set_level_factor(s_.w_factor);
  for (float x : s_.peak) c.add_excursion_peak(x);
  internal::GateToProto(s_.gate, c.mutable_gate());
  internal::CalibrationToProto(s_.spacing, s_.tail.data(), kStats, c.mutable_calibration());
  for (float x : s_.seasonal.coef) c.add_seasonal(x);
  for (int i = 0; i < 2 * weekly_.harmonics(); ++i) c.add_weekly(s_.weekly.coef[i]);
  c.set_phase(s_.phase);
  c.set_pending(s_.pending != 0);
  c.set_pending_direction(s_.pend_dir);
  c.set_new_level_pending(s_.new_level_pending != 0);
  return internal::SerializeState(state);
}

absl::Status CyberstrideDetector::Restore(std::string_view blob) {
  auto state = internal::ParseState(blob, v1::DetectorState::kCyberstride, kKind);
  if (!state.ok()) return state.status();
  const v1::CyberstrideState& c = state->cyberstride();
  constexpr int kComponents = kNumModels + 1;
  State s;
  if (c.level_size() != kComponents || c.slope_size() != kComponents ||
      c.covariance_size() != 3 * kComponents || c.probability_size() != kNumModels ||
      c.excursion_peak_size() != 2 ||
      c.seasonal_size() != static_cast<int>(s.seasonal.coef.size()) ||
      c.weekly_size() > static_cast<int>(s.weekly.coef.size()) || c.phase() > 2 ||
      !internal::CalibrationFromProto(c.calibration(), s.spacing, s.tail.data(), kStats)) {
    return internal::CorruptSnapshot(kKind);
  }
  auto component = [&c](int i, Component& x) {
    x.level = c.level(i);
    x.slope = c.slope(i);
    x.c00 = c.covariance(3 * i);
    x.c01 = c.covariance(3 * i + 1);
    x.c11 = c.covariance(3 * i + 2);
  };
  for (int i = 0; i < kNumModels; ++i) {
    component(i, s.comp[i]);
    s.comp[i].prob = c.probability(i);
  }
  component(kNumModels, s.ref);
  s.d = c.d();
  s.n = c.n();
  s.last = c.last();
  s.mon_up = c.monitor_up();
  s.mon_down = c.monitor_down();
  s.mon_var = c.monitor_variance();
  s.acc_step = c.recent_step();
  s.acc_slope = c.recent_slope();
  s.z1 = c.z1();
  s.z2 = c.z2();
  s.ac0 = c.ac0();
  s.ac1 = c.ac1();
  s.w_factor = c.level_factor();
  s.peak[0] = c.excursion_peak(0);
  s.peak[1] = c.excursion_peak(1);
  s.gate = internal::GateFromProto(c.gate());
  for (size_t i = 0; i < s.seasonal.coef.size(); ++i) s.seasonal.coef[i] = c.seasonal(i);
  for (int i = 0; i < c.weekly_size(); ++i) s.weekly.coef[i] = c.weekly(i);
  s.phase = static_cast<uint8_t>(c.phase());
  s.pending = c.pending() ? 1 : 0;
  s.pend_dir = static_cast<int8_t>(std::clamp(c.pending_direction(), -1, 1));
  s.new_level_pending = c.new_level_pending() ? 1 : 0;
  s_ = s;
  return absl::OkStatus();
}

}  // namespace cybersyn::alerter
