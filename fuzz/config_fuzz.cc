// libFuzzer target: the YAML config loader (common/config). Invariants: it loads exactly when
// the checker finds no problem, every problem has a message, and a loaded config is coherent
// (a hierarchy, each operator's subtree a node of it, each indicator found by name).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "common/config.h"
#include "fuzz/fuzz_env.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace cybersyn;
  using cybersyn::fuzz::Check;
  const std::string_view yaml(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<Config> config = LoadConfigString(yaml, "fuzz.yaml");
  const std::vector<ConfigProblem> problems = CheckConfigString(yaml, "fuzz.yaml");
  Check(config.ok() == problems.empty(), "LoadConfigString and CheckConfigString disagree");
  for (const ConfigProblem& p : problems) Check(!p.message.empty(), "problem without message");
  if (!config.ok()) {
    Check(config.status().code() == absl::StatusCode::kInvalidArgument ||
              config.status().code() == absl::StatusCode::kNotFound ||
              config.status().code() == absl::StatusCode::kPermissionDenied,
          "unexpected status code from the loader");
    return 0;
  }
  Check(config->hierarchy != nullptr, "loaded config without hierarchy");
  for (const OperatorConfig& op : config->operators) {
    Check(config->hierarchy->Find(op.subtree) != nullptr, "operator subtree not in hierarchy");
  }
  for (const IndicatorConfig& i : config->indicators) {
    Check(config->FindIndicator(i.name) != nullptr, "indicator not found by its name");
  }
  return 0;
}
