#include "alerter/detectors/calibration.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace cybersyn::alerter::internal {

std::vector<ParamSpec> CalibrationParamSpecs() {
  return {
      {"alert_budget", 1.0,
       "false signals per week this series may raise (its threshold calibrates to it)"},
      {"calibration_horizon", 10000, "values behind the series' calibration (its memory)"},
      {"calibration_prior", 200,
       "values the nominal model is worth before the series' own tail is known"},
  };
}

absl::Status CheckCalibrationParams(std::string_view kind, const Params& p) {
  auto bad = [&](std::string_view name, std::string_view want) {
    return absl::InvalidArgumentError(absl::StrCat("parameter '", std::string(name),
                                                   "' of detector ", std::string(kind), " must be ",
                                                   std::string(want), ", got ", p.Get(name)));
  };
  const double budget = p.Get("alert_budget");
  if (!(budget > 0 && budget <= 1e6)) return bad("alert_budget", "in (0, 1e6] per week");
  if (!(p.Get("calibration_horizon") >= 10 && p.Get("calibration_horizon") <= 1e9)) {
    return bad("calibration_horizon", "in [10, 1e9]");
  }
  if (!(p.Get("calibration_prior") >= 1 && p.Get("calibration_prior") <= 1e9)) {
    return bad("calibration_prior", "in [1, 1e9]");
  }
  return absl::OkStatus();
}

double NormalSurprise(double z) {
  const double x = std::fabs(z);
  if (x < 30) return -FastLog(std::erfc(x * 0.70710678118654752));
  // Asymptotic tail 2φ(x)/x · (1 − 1/x²), beyond where erfc underflows.
  return 0.5 * x * x + std::log(x) + 0.22579135264472743 - std::log1p(-1 / (x * x));
}

TailModel::TailModel(double horizon, double prior)
    : decay_(static_cast<float>(1.0 - 1.0 / std::max(horizon, 1.0))),
      prior_(static_cast<float>(prior)) {}

TailState TailModel::Fresh() const {
  // The nominal model: S ~ Exp(1), so q = e^−kLevel1 and the mean excess is 1 at both levels.
  TailState t;
  t.points = prior_;
  t.n1 = static_cast<float>(prior_ * std::exp(-kLevel1));
  t.sum1 = t.n1;
  t.n2 = t.n1;  // ξ's prior as strong as σ's
  t.sum2 = t.n1;
  return t;
}

TailModel::Fit TailModel::FitOf(const TailState& t) const {
  Fit f;
  f.log_q = FastLog(std::max<double>(t.n1, 1e-3) / std::max<double>(t.points, 1.0));
  const double e1 = t.sum1 / std::max<double>(t.n1, 1e-3);
  const double e2 = t.sum2 / std::max<double>(t.n2, 1e-3);
  // Mean excess e(u) = (σ + ξ (u − kLevel1)) / (1 − ξ): its slope between the two levels.
  const double b = (e2 - e1) / (kLevel2 - kLevel1);
  // ξ < 0 (a bounded tail) is taken as 0: an exponential tail is the cautious extrapolation.
  // Plus 1/n1: the tail is known from n1 excesses only, and the predictive tail of an
  // exponential whose rate is known from k excesses is (1 + x / (k β))^−k, a GPD with ξ = 1/k,
  // so a young series (or a quiet one) extrapolates cautiously.
  f.xi = std::clamp(b / (1 + b), 0.0, 0.8) + 1.0 / std::max<double>(t.n1, 1.0);
  f.sigma = std::max(e1 * (1 - f.xi), 0.05);
  return f;
}

double TailModel::LogTail(const TailState& t, double s) const {
  if (s <= kLevel1) {
    // Most values: only the rate of exceeding kLevel1 is needed, not the fit.
    const double log_q = FastLog(std::max<double>(t.n1, 1e-3) / std::max<double>(t.points, 1.0));
    return std::min(0.0, log_q * std::max(s, 0.0) / kLevel1);
  }
  const Fit f = FitOf(t);
  const double x = (s - kLevel1) / f.sigma;
  return std::min(0.0, f.log_q - std::log1p(f.xi * x) / f.xi);
}

double TailModel::Threshold(const TailState& t, double log_r) const {
  const Fit f = FitOf(t);
  const double above = f.log_q - log_r;  // ln(q / r)
  if (above <= 0) return kLevel1 * log_r / std::min(f.log_q, -1e-9);
  return kLevel1 + f.sigma * std::expm1(f.xi * above) / f.xi;
}

void TailModel::Add(TailState& t, double s) const {
  t.points = t.points * decay_ + 1.0f;
  t.n1 *= decay_;
  t.sum1 *= decay_;
  t.n2 *= decay_;
  t.sum2 *= decay_;
  if (s > kLevel1) {
    t.n1 += 1.0f;
    t.sum1 += static_cast<float>(s - kLevel1);
    if (s > kLevel2) {
      t.n2 += 1.0f;
      t.sum2 += static_cast<float>(s - kLevel2);
    }
  }
}

void BudgetRate::Observe(SpacingState& s, int64_t time_ms) const {
  if (s.last_ms != INT64_MIN && time_ms > s.last_ms) {
    const float gap = static_cast<float>(time_ms - s.last_ms);
    s.mean_gap_ms = s.mean_gap_ms > 0 ? s.mean_gap_ms + 0.01f * (gap - s.mean_gap_ms) : gap;
  }
  s.last_ms = time_ms;
}

double BudgetRate::LogTightening(const SpacingState& s) const {
  return s.tokens < 1 ? kTighten * (s.tokens - 1) : 0.0;
}

void BudgetRate::Account(SpacingState& s, bool signalled) const {
  s.tokens = std::min(1.0f, s.tokens + static_cast<float>(Rate(s)));
  if (signalled) s.tokens = std::max(kMinTokens, s.tokens - 1);
}

double BudgetRate::Rate(const SpacingState& s) const {
  const double gap = s.mean_gap_ms > 0 ? s.mean_gap_ms : 60e3;
  return std::clamp(per_week_ * gap / kWeekMs, 1e-12, 0.05);
}

void CalibrationToProto(const SpacingState& budget, const TailState* tails, int n,
                        v1::CalibrationState* out) {
  v1::BudgetState* b = out->mutable_budget();
  b->set_has_last(budget.last_ms != INT64_MIN);
  if (budget.last_ms != INT64_MIN) b->set_last_ms(budget.last_ms);
  b->set_mean_gap_ms(budget.mean_gap_ms);
  b->set_tokens(budget.tokens);
  for (int i = 0; i < n; ++i) {
    v1::TailState* t = out->add_tail();
    t->set_points(tails[i].points);
    t->set_n1(tails[i].n1);
    t->set_sum1(tails[i].sum1);
    t->set_n2(tails[i].n2);
    t->set_sum2(tails[i].sum2);
  }
}

bool CalibrationFromProto(const v1::CalibrationState& in, SpacingState& budget, TailState* tails,
                          int n) {
  if (in.tail_size() != n) return false;
  budget.last_ms = in.budget().has_last() ? in.budget().last_ms() : INT64_MIN;
  budget.mean_gap_ms = in.budget().mean_gap_ms();
  budget.tokens = in.budget().tokens();
  for (int i = 0; i < n; ++i) {
    const v1::TailState& t = in.tail(i);
    tails[i] = {t.points(), t.n1(), t.sum1(), t.n2(), t.sum2()};
  }
  return true;
}

Calibrator::Calibrator(const Params& p)
    : budget_(p.Get("alert_budget")),
      tail_(p.Get("calibration_horizon"), p.Get("calibration_prior")) {}

Calibrator::State Calibrator::Fresh() const {
  State st;
  st.tail = tail_.Fresh();
  return st;
}

double Calibrator::Score(State& st, double s, int64_t time_ms, bool cumulative) const {
  budget_.Observe(st.budget, time_ms);
  const double log_r = FastLog(budget_.Rate(st.budget));
  const double log_p = tail_.LogTail(st.tail, s);
  const double score = CalibratedScore(log_p, log_r + budget_.LogTightening(st.budget));
  double learn = s;
  if (cumulative) {
    learn = 0;
    if (s > 0) {
      st.peak = std::max(st.peak, static_cast<float>(s));
    } else {
      learn = st.peak;
      st.peak = 0;
    }
  }
  const double learn_log_p = learn == s ? log_p : tail_.LogTail(st.tail, learn);
  tail_.Add(st.tail, learn_log_p < log_r ? tail_.Threshold(st.tail, log_r) : learn);
  return score;
}

void Calibrator::ToProto(const State& st, v1::CalibrationState* out) const {
  CalibrationToProto(st.budget, &st.tail, 1, out);
  out->set_excursion_peak(st.peak);
}

bool Calibrator::FromProto(const v1::CalibrationState& in, State& st) const {
  if (!CalibrationFromProto(in, st.budget, &st.tail, 1)) return false;
  st.peak = in.excursion_peak();
  return true;
}

}  // namespace cybersyn::alerter::internal
