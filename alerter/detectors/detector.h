// Detector: the narrow interface every anomaly detector of the alerter implements.
//
// A detector consumes one series, one observation at a time, in time order, and returns a
// Verdict for each: a graded score, a classification, and whether to raise a signal now. The
// alerter keeps one detector per series and persists its state (Serialize/Restore) between
// restarts; `cybersyn backtest` and the quality harness run the same code over files.
//
// Detectors available (see DetectorParamSpecs for every parameter, its default and meaning):
//   cyberstride  Harrison–Stevens class II multi-process DLM (steady/transient/step/slope),
//                learned observation variance, plus a cumulative Bayes-factor monitor.
//   ewma         EWMA control chart on a robust warm-up baseline.
//   cusum        Two-sided tabular CUSUM on a robust warm-up baseline.
//   bocpd        Bayesian online changepoint detection (Adams & MacKay 2007).
//   threshold    Static min/max limits.
//
// Common to all: the score is in [0, 1] and graded (0.5 is the default signal threshold for
// every detector); `signal` is raised at the onset of an anomaly only, and the detector re-arms
// after `rearm` consecutive normal observations; no signal is raised during the first `warmup`
// observations; a run of `no_data_after` missing observations raises one no-data signal.
//
// Thread-safety: a Detector is a plain value-like object without internal locking; one thread at
// a time may call its methods. Different detectors are independent.
#ifndef CYBERSYN_ALERTER_DETECTORS_DETECTOR_H_
#define CYBERSYN_ALERTER_DETECTORS_DETECTOR_H_

#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace cybersyn::alerter {

// One value of a series. `missing` marks a window that should have reported and did not
// (`value` is then ignored).
struct Observation {
  int64_t time_ms = 0;
  double value = 0.0;
  bool missing = false;
};

enum class SignalKind : uint8_t { kNone, kStep, kSlope, kTransient, kThreshold, kNoData };
// Direction of the departure relative to the forecast; the alerter maps the favourable one of a
// series to a reward signal.
enum class Direction : int8_t { kNone = 0, kUp = 1, kDown = -1 };

// Posterior probabilities of the four cyberstride models at this observation (zeros for the
// detectors that do not compute them).
struct ModelProbs {
  double steady = 0.0;
  double transient = 0.0;
  double step = 0.0;
  double slope = 0.0;
};

struct Verdict {
  // Graded anomaly score in [0, 1]; stays graded on messy series (does not sit at 1.0).
  double score = 0.0;
  // Classification of the current (or, when confirming, the just-confirmed) anomaly.
  SignalKind kind = SignalKind::kNone;
  Direction direction = Direction::kNone;
  // True only at the onset of an anomaly: a persistent anomaly raises one signal.
  bool signal = false;
  // The level a step (or slope) signal announced has held and the detector has taken it as
  // the new normal (re-baselined): the signal this series has open may resolve ("new level")
  // rather than wait to look normal against the old level. Set once, on the value that
  // confirms it.
  bool new_level = false;
  // One-step-ahead forecast and its central interval, made before seeing the value.
  // NaN until the detector has a model (first observations).
  double forecast = std::numeric_limits<double>::quiet_NaN();
  double lower = std::numeric_limits<double>::quiet_NaN();
  double upper = std::numeric_limits<double>::quiet_NaN();
  ModelProbs probs;
  // The state became non-finite and was reset to a fresh start; the caller counts these.
  bool reset = false;
};

// Parameter name -> value. Names not listed by DetectorParamSpecs are rejected.
using DetectorParams = absl::flat_hash_map<std::string, double>;

struct ParamSpec {
  std::string_view name;
  double default_value;
  std::string_view help;
};

class Detector {
 public:
  virtual ~Detector() = default;

  // Consumes the next observation of the series. REQUIRES: observations in time order.
  virtual Verdict Update(const Observation& obs) = 0;

  // The kind name given to MakeDetector ("cyberstride", ...).
  virtual std::string_view kind() const = 0;

  // Compact binary snapshot of the mutable state (not the parameters: the caller recreates
  // the detector with the same kind and params and calls Restore). Versioned, little-endian.
  virtual std::string Serialize() const = 0;

  // Replaces the state with a snapshot from Serialize(). InvalidArgument (and the state
  // unchanged) if `blob` is not a snapshot of this kind of detector.
  virtual absl::Status Restore(std::string_view blob) = 0;
};

// Creates a detector. InvalidArgument for an unknown kind (listing the valid kinds), an unknown
// parameter (naming it and listing the valid ones) or an out-of-range value.
absl::StatusOr<std::unique_ptr<Detector>> MakeDetector(std::string_view kind,
                                                       const DetectorParams& params);

// MakeDetector followed by Restore(blob).
absl::StatusOr<std::unique_ptr<Detector>> RestoreDetector(std::string_view kind,
                                                          const DetectorParams& params,
                                                          std::string_view blob);

// Sets `alert_budget` (false signals per week) in `params` when `kind` is calibrated to one and
// `params` does not set it already (an indicator's own detector params win).
void ApplyAlertBudget(std::string_view kind, double per_week, DetectorParams& params);

// The detector kinds MakeDetector accepts.
std::vector<std::string_view> DetectorKinds();

// The parameters of `kind` with defaults and help (empty for an unknown kind).
std::vector<ParamSpec> DetectorParamSpecs(std::string_view kind);

// "none", "step", "slope", "transient", "threshold", "no_data".
std::string_view SignalKindName(SignalKind kind);
// Kind with direction, as written by backtest: "step_up", "transient_down", "no_data", "none".
std::string KindLabel(SignalKind kind, Direction direction);

}  // namespace cybersyn::alerter

#endif  // CYBERSYN_ALERTER_DETECTORS_DETECTOR_H_
