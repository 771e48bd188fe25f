#include "alerter/detectors/internal/detector_util.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace cybersyn::alerter::internal {

std::vector<ParamSpec> CommonParamSpecs(double default_warmup, double default_rearm) {
  return {
      {"threshold", 0.5, "score at or above which a signal is raised (0..1)"},
      {"warmup", default_warmup, "observations before any signal (also the baseline estimate)"},
      {"rearm", default_rearm, "consecutive observations below threshold before another signal"},
      {"no_data_after", 0, "consecutive missing observations that raise a no_data signal (0: off)"},
  };
}

double Params::Get(std::string_view name) const {
  auto it = values_.find(std::string(name));
  return it == values_.end() ? 0.0 : it->second;
}

absl::StatusOr<Params> ResolveParams(std::string_view kind, const std::vector<ParamSpec>& specs,
                                     const DetectorParams& given) {
  DetectorParams values;
  for (const ParamSpec& s : specs) values[std::string(s.name)] = s.default_value;
  for (const auto& [name, value] : given) {
    auto it = values.find(name);
    if (it == values.end()) {
      std::vector<std::string> names;
      for (const ParamSpec& s : specs) names.emplace_back(s.name);
      return absl::InvalidArgumentError(absl::StrCat("unknown parameter '", name, "' for detector ",
                                                     std::string(kind),
                                                     "; valid: ", absl::StrJoin(names, ", ")));
    }
    if (std::isnan(value)) {
      return absl::InvalidArgumentError(
          absl::StrCat("parameter '", name, "' of detector ", std::string(kind), " is NaN"));
    }
    it->second = value;
  }
  const double threshold = values["threshold"];
  if (!(threshold > 0 && threshold <= 1)) {
    return absl::InvalidArgumentError(absl::StrCat("parameter 'threshold' of detector ",
                                                   std::string(kind), " must be in (0, 1], got ",
                                                   threshold));
  }
  for (const char* n : {"warmup", "rearm", "no_data_after"}) {
    const double v = values[n];
    if (!(v >= 0 && v < 1e9) || v != std::floor(v)) {
      return absl::InvalidArgumentError(absl::StrCat("parameter '", n, "' of detector ",
                                                     std::string(kind),
                                                     " must be a non-negative integer, got ", v));
    }
  }
  return Params(std::move(values));
}

GateConfig GateConfigFrom(const Params& p) {
  GateConfig c;
  c.threshold = p.Get("threshold");
  c.warmup = static_cast<int64_t>(p.Get("warmup"));
  c.rearm = std::max<int64_t>(1, static_cast<int64_t>(p.Get("rearm")));
  c.no_data_after = static_cast<int64_t>(p.Get("no_data_after"));
  return c;
}

void MissingVerdict(const GateConfig& c, GateState& s, Verdict& v) {
  if (GateMissing(c, s)) {
    v.signal = true;
    v.kind = SignalKind::kNoData;
    v.score = 1.0;
  }
}

void RobustMeanSigma(std::vector<double> values, double& mean, double& sigma) {
  const size_t n = values.size();
  auto median = [](std::vector<double>& v) {
    const size_t mid = v.size() / 2;
    std::nth_element(v.begin(), v.begin() + mid, v.end());
    double m = v[mid];
    if (v.size() % 2 == 0) m = 0.5 * (m + *std::max_element(v.begin(), v.begin() + mid));
    return m;
  };
  std::vector<double> copy = values;
  mean = median(copy);
  for (double& x : copy) x = std::fabs(x - mean);
  sigma = 1.4826 * median(copy);
  if (!(sigma > 0) && n > 1) {
    const double avg = std::accumulate(values.begin(), values.end(), 0.0) / n;
    double ss = 0;
    for (double x : values) ss += (x - avg) * (x - avg);
    sigma = std::sqrt(ss / (n - 1));
  }
  if (!(sigma > 0)) sigma = std::max(std::fabs(mean) * 1e-6, 1e-12);
}

std::string SerializeState(const v1::DetectorState& state) {
  std::string out;
  state.SerializeToString(&out);
  return out;
}

absl::StatusOr<v1::DetectorState> ParseState(std::string_view blob,
                                             v1::DetectorState::KindCase want,
                                             std::string_view kind) {
  v1::DetectorState state;
  if (!state.ParseFromArray(blob.data(), static_cast<int>(blob.size())) ||
      state.kind_case() != want) {
    return absl::InvalidArgumentError(
        absl::StrCat("snapshot is not a ", std::string(kind), " state"));
  }
  return state;
}

void GateToProto(const GateState& g, v1::GateState* out) {
  out->set_seen(g.seen);
  out->set_quiet(g.quiet);
  out->set_missing_run(g.missing_run);
  out->set_disarmed(!g.armed);
}

GateState GateFromProto(const v1::GateState& g) {
  GateState s;
  s.seen = g.seen();
  s.quiet = g.quiet();
  s.missing_run = g.missing_run();
  s.armed = g.disarmed() ? 0 : 1;
  return s;
}

absl::Status CorruptSnapshot(std::string_view kind) {
  return absl::InvalidArgumentError(
      absl::StrCat(std::string(kind), " snapshot is truncated or corrupt"));
}

}  // namespace cybersyn::alerter::internal
