// Pieces shared by the detector implementations: parameter resolution, the onset gate (one
// signal per anomaly, warm-up, re-arm, no-data), robust warm-up baselines, graded scores and
// the state snapshots' protobuf helpers. Not part of the public API.
// Thread-safety: plain values and free functions; no shared state.
#ifndef CYBERSYN_ALERTER_DETECTORS_INTERNAL_DETECTOR_UTIL_H_
#define CYBERSYN_ALERTER_DETECTORS_INTERNAL_DETECTOR_UTIL_H_

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "alerter/detectors/detector.h"
#include "cybersyn/v1/state.pb.h"

namespace cybersyn::alerter::internal {

// Parameters every detector accepts, appended to its own list.
std::vector<ParamSpec> CommonParamSpecs(double default_warmup, double default_rearm = 5);

// Resolved parameters: every spec'd name with its value (given or default).
class Params {
 public:
  explicit Params(DetectorParams values) : values_(std::move(values)) {}
  // REQUIRES: `name` is one of the specs the Params were resolved against.
  double Get(std::string_view name) const;

 private:
  DetectorParams values_;
};

// Checks `given` against `specs`: unknown names and non-finite values where a finite one is
// required are InvalidArgument naming the parameter of `kind` and listing the valid ones.
absl::StatusOr<Params> ResolveParams(std::string_view kind, const std::vector<ParamSpec>& specs,
                                     const DetectorParams& given);

// Bounded, graded map of a non-negative statistic: 0 at 0, 0.5 at `half`, -> 1 slowly.
inline double Graded(double x, double half) {
  if (!(x > 0)) return 0.0;
  const double r = x / half;
  return r * r / (1.0 + r * r);
}

struct GateConfig {
  double threshold = 0.5;
  int64_t warmup = 0;
  int64_t rearm = 5;
  int64_t no_data_after = 0;  // 0 disables no-data signals
};
GateConfig GateConfigFrom(const Params& p);

// Onset gate: raises one signal when the score first reaches the threshold, then stays quiet
// until `rearm` consecutive observations below it.
struct GateState {
  uint32_t seen = 0;         // non-missing observations so far (saturating)
  uint32_t quiet = 0;        // consecutive observations below threshold while disarmed
  uint32_t missing_run = 0;  // consecutive missing observations
  uint8_t armed = 1;
  uint8_t pad[3] = {0, 0, 0};
};

// Accounts a non-missing observation; true when past warm-up.
inline bool GateSeen(const GateConfig& c, GateState& s) {
  s.missing_run = 0;
  if (s.seen < UINT32_MAX) ++s.seen;
  return s.seen > static_cast<uint64_t>(c.warmup);
}
// True when `above` should raise a signal now (the caller has called GateSeen).
inline bool GateDecide(const GateConfig& c, GateState& s, bool past_warmup, bool above) {
  if (!past_warmup) return false;
  if (!s.armed) {
    if (above) {
      s.quiet = 0;
    } else if (++s.quiet >= c.rearm) {
      s.armed = 1;
      s.quiet = 0;
    }
    return false;
  }
  if (above) {
    s.armed = 0;
    s.quiet = 0;
    return true;
  }
  return false;
}
// Accounts a missing observation; true when it completes a run that raises a no-data signal.
inline bool GateMissing(const GateConfig& c, GateState& s) {
  if (s.missing_run < UINT32_MAX) ++s.missing_run;
  return c.no_data_after > 0 && s.missing_run == static_cast<uint64_t>(c.no_data_after);
}

// Fills a Verdict for a missing observation (no-data signal when due).
void MissingVerdict(const GateConfig& c, GateState& s, Verdict& v);

// Robust location/scale of the warm-up values: median and 1.4826·MAD, falling back to the
// standard deviation and then to a tiny scale relative to the level when the values are
// constant. REQUIRES: !values.empty().
void RobustMeanSigma(std::vector<double> values, double& mean, double& sigma);

// Two-sided central quantile of a Student-t with `dof` degrees of freedom for normal quantile
// `z` (Cornish–Fisher expansion; exact enough for intervals).
inline double StudentQuantile(double z, double dof) {
  if (dof <= 0) return z;
  const double z2 = z * z;
  return z + (z2 * z + z) / (4 * dof) + (5 * z2 * z2 * z + 16 * z2 * z + 3 * z) / (96 * dof * dof);
}

// StudentQuantile(z, dof) for a fixed z, its coefficients computed once: At(1 / dof).
struct StudentQuantileCoef {
  double z = 0, c1 = 0, c2 = 0;
  StudentQuantileCoef() = default;
  explicit StudentQuantileCoef(double zq)
      : z(zq),
        c1((zq * zq * zq + zq) / 4),
        c2((5 * zq * zq * zq * zq * zq + 16 * zq * zq * zq + 3 * zq) / 96) {}
  double At(double inv_dof) const { return z + (c1 + c2 * inv_dof) * inv_dof; }
};

// State snapshots are DetectorState messages (proto/cybersyn/v1/state.proto).
std::string SerializeState(const v1::DetectorState& state);
// Parses `blob` as a DetectorState holding `want`: InvalidArgument "snapshot is not a <kind>
// state" otherwise.
absl::StatusOr<v1::DetectorState> ParseState(std::string_view blob,
                                             v1::DetectorState::KindCase want,
                                             std::string_view kind);
void GateToProto(const GateState& g, v1::GateState* out);
GateState GateFromProto(const v1::GateState& g);
// InvalidArgument "<kind> snapshot is truncated or corrupt".
absl::Status CorruptSnapshot(std::string_view kind);

// In-control level and scale of a series, estimated robustly from its first `size` values.
struct WarmupBaseline {
  std::vector<double> values;  // collected until ready, then cleared
  double mean = 0, sigma = 0;
  bool ready = false;

  // Adds a value; returns true when this value completes the warm-up. REQUIRES: size >= 1.
  bool Add(double y, size_t size) {
    values.push_back(y);
    if (values.size() < size) return false;
    count = static_cast<double>(values.size());
    RobustMeanSigma(std::move(values), mean, sigma);
    values = {};
    ready = true;
    return true;
  }
  // Continued in-control estimation after the warm-up (Phase II refinement): while the chart
  // is in control, folds `y` into the mean and scale with weight 1/count (count capped at
  // `horizon`, so the estimate keeps a memory of about `horizon` values). The standardised
  // residual is winsorised at ±2.5 (Huber), and the scale update divides by
  // E[min(Z², 2.5²)] = 0.9775 for normal data, so it is unbiased in control and robust to
  // outliers. Without it a 30-value warm-up misjudges σ by ±15% for the life of the series,
  // which multiplies the false-signal rate of a chart set for rare false alarms.
  void Track(double y, double horizon) {
    if (!ready || !(sigma > 0)) return;
    if (count < horizon) count += 1;
    const double a = 1.0 / count;
    const double r = std::clamp((y - mean) / sigma, -2.5, 2.5);
    mean += a * sigma * r;
    sigma = std::sqrt((1 - a) * sigma * sigma + a * sigma * sigma * r * r / 0.9775);
  }
  double count = 0;  // values behind the current estimate (warm-up size, then tracked)

  // Restarts the warm-up (a control chart after a signal): the values that follow make the new
  // baseline, and Add reports whether it is a new level, farther than `distance` old σ away.
  void Restart() {
    old_mean = mean;
    old_sigma = sigma;
    *this = WarmupBaseline{.old_mean = old_mean, .old_sigma = old_sigma};
  }
  // After the Add that completed a restarted warm-up: whether the level moved by more than
  // `distance` old σ (once; false otherwise).
  bool TakeNewLevel(double distance) {
    if (!ready || std::isnan(old_mean)) return false;
    const bool moved = std::fabs(mean - old_mean) > distance * old_sigma;
    old_mean = std::numeric_limits<double>::quiet_NaN();
    return moved;
  }
  double old_mean = std::numeric_limits<double>::quiet_NaN();  // NaN: not restarted
  double old_sigma = 0;

  void ToProto(v1::BaselineState* out) const {
    out->set_count(count);
    out->set_mean(mean);
    out->set_sigma(sigma);
    out->set_ready(ready);
    for (double x : values) out->add_values(x);
    if (!std::isnan(old_mean)) {
      out->set_restarted_from_mean(old_mean);
      out->set_restarted_from_sigma(old_sigma);
    }
  }
  // False if `in` holds more than `max_values` warm-up values (corrupt).
  bool FromProto(const v1::BaselineState& in, size_t max_values) {
    if (static_cast<size_t>(in.values_size()) > max_values) return false;
    count = in.count();
    mean = in.mean();
    sigma = in.sigma();
    ready = in.ready();
    values.assign(in.values().begin(), in.values().end());
    old_mean = in.has_restarted_from_mean() ? in.restarted_from_mean()
                                            : std::numeric_limits<double>::quiet_NaN();
    old_sigma = in.restarted_from_sigma();
    return true;
  }
};

}  // namespace cybersyn::alerter::internal

#endif  // CYBERSYN_ALERTER_DETECTORS_INTERNAL_DETECTOR_UTIL_H_
