#include "fuzz/fuzz_env.h"

#include <cstdio>
#include <cstdlib>

#include "google/protobuf/stubs/logging.h"

namespace cybersyn::fuzz {
namespace {

constexpr char kYaml[] = R"(
kafka: {bootstrap: embedded, topic_prefix: fz, partitions: 2, replication_factor: 1}
levels:
  - {name: nation, ack_within: 60s, resolve_within: 10m}
  - {name: sector, ack_within: 40s, resolve_within: 8m}
  - {name: enterprise, ack_within: 20s, resolve_within: 6m}
  - {name: unit, ack_within: 10s, resolve_within: 4m}
hierarchy:
  cl:
    children:
      textiles:
        children:
          yarur: {children: {spinning: {}, weaving: {}}}
          sumar: {children: {spinning: {}, weaving: {}}}
      mining:
        children:
          chuqui: {ack_within: 15s, children: {extraction: {}, smelter: {}}}
          teniente: {children: {extraction: {}, smelter: {}}}
indicators:
  - {name: output, unit: t, rollup: sum, role: actuality}
  - {name: capacity, unit: t, rollup: sum, role: capability}
  - {name: temp, unit: C, rollup: mean, thresholds: {max: 90}}
  - {name: level, unit: m, rollup: last}
operators:
  - {name: planning, subtree: cl, token: tok-cl}
  - {name: textiles, subtree: cl/textiles, token: tok-tex}
  - {name: yarur, subtree: cl/textiles/yarur, token: tok-yarur}
aggregator: {windows: [10s, 1m], allowed_lateness: 5s, grace: 2s, idle_advance: 5s}
gateway: {id: fuzz-gw, max_labels: 4}
)";

// Protobuf logs every invalid UTF-8 string it parses; fuzz inputs are full of them, and the
// logging would dominate the run time and the logs.
[[maybe_unused]] const bool kQuietProtobuf = [] {
  google::protobuf::SetLogHandler(nullptr);
  return true;
}();

}  // namespace

std::shared_ptr<const Config> FuzzConfig() {
  static const std::shared_ptr<const Config> config = [] {
    absl::StatusOr<Config> c = LoadConfigString(kYaml, "fuzz.yaml");
    if (!c.ok()) {
      std::fprintf(stderr, "fuzz config does not load: %s\n", c.status().ToString().c_str());
      std::abort();
    }
    return std::make_shared<const Config>(*std::move(c));
  }();
  return config;
}

const Clock* FuzzClock() {
  static const ManualClock clock(absl::FromUnixMillis(kFuzzNowMs));
  return &clock;
}

void Check(bool cond, const char* what) {
  if (cond) return;
  std::fprintf(stderr, "fuzz invariant violated: %s\n", what);
  std::abort();
}

}  // namespace cybersyn::fuzz
