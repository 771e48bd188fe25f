#include "alerter/detectors/detector.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "alerter/detectors/bocpd.h"
#include "alerter/detectors/cusum.h"
#include "alerter/detectors/cyberstride.h"
#include "alerter/detectors/ewma.h"
#include "alerter/detectors/threshold.h"

namespace cybersyn::alerter {
namespace {

struct Entry {
  std::string_view kind;
  std::vector<ParamSpec> (*specs)();
  absl::StatusOr<std::unique_ptr<Detector>> (*create)(const DetectorParams&);
};

constexpr Entry kRegistry[] = {
    {CyberstrideDetector::kKind, &CyberstrideDetector::Specs, &CyberstrideDetector::Create},
    {EwmaDetector::kKind, &EwmaDetector::Specs, &EwmaDetector::Create},
    {CusumDetector::kKind, &CusumDetector::Specs, &CusumDetector::Create},
    {BocpdDetector::kKind, &BocpdDetector::Specs, &BocpdDetector::Create},
    {ThresholdDetector::kKind, &ThresholdDetector::Specs, &ThresholdDetector::Create},
};

std::vector<std::string> KindNames() {
  std::vector<std::string> names;
  for (const Entry& e : kRegistry) names.emplace_back(e.kind);
  return names;
}

const Entry* Find(std::string_view kind) {
  for (const Entry& e : kRegistry) {
    if (e.kind == kind) return &e;
  }
  return nullptr;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Detector>> MakeDetector(std::string_view kind,
                                                       const DetectorParams& params) {
  const Entry* e = Find(kind);
  if (e == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("unknown detector '", std::string(kind),
                                                   "'; valid: ", absl::StrJoin(KindNames(), ", ")));
  }
  return e->create(params);
}

absl::StatusOr<std::unique_ptr<Detector>> RestoreDetector(std::string_view kind,
                                                          const DetectorParams& params,
                                                          std::string_view blob) {
  auto det = MakeDetector(kind, params);
  if (!det.ok()) return det.status();
  if (absl::Status st = (*det)->Restore(blob); !st.ok()) return st;
  return det;
}

void ApplyAlertBudget(std::string_view kind, double per_week, DetectorParams& params) {
  for (const ParamSpec& s : DetectorParamSpecs(kind)) {
    if (s.name == "alert_budget") {
      params.try_emplace(std::string(s.name), per_week);
      return;
    }
  }
}

std::vector<std::string_view> DetectorKinds() {
  std::vector<std::string_view> kinds;
  for (const Entry& e : kRegistry) kinds.push_back(e.kind);
  return kinds;
}

std::vector<ParamSpec> DetectorParamSpecs(std::string_view kind) {
  const Entry* e = Find(kind);
  return e == nullptr ? std::vector<ParamSpec>{} : e->specs();
}

std::string_view SignalKindName(SignalKind kind) {
  switch (kind) {
    case SignalKind::kNone:
      return "none";
    case SignalKind::kStep:
      return "step";
    case SignalKind::kSlope:
      return "slope";
    case SignalKind::kTransient:
      return "transient";
    case SignalKind::kThreshold:
      return "threshold";
    case SignalKind::kNoData:
      return "no_data";
  }
  return "none";
}

std::string KindLabel(SignalKind kind, Direction direction) {
  if (kind == SignalKind::kNone || kind == SignalKind::kNoData || direction == Direction::kNone) {
    return std::string(SignalKindName(kind));
  }
  return absl::StrCat(std::string(SignalKindName(kind)),
                      direction == Direction::kUp ? "_up" : "_down");
}

}  // namespace cybersyn::alerter
