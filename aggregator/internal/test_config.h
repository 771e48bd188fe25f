// A small four-level config for aggregator tests (unit and integration), built in code so tests
// do not depend on YAML: cl -> {tex, min} -> enterprises -> units; indicators covering every
// roll-up rule and Beer's A/C/P roles.
#ifndef CYBERSYN_AGGREGATOR_INTERNAL_TEST_CONFIG_H_
#define CYBERSYN_AGGREGATOR_INTERNAL_TEST_CONFIG_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "common/config.h"
#include "common/hierarchy.h"

namespace cybersyn::aggregator::testing {

inline std::vector<std::string> TestUnits() {
  return {"cl/tex/yarur/spin",   "cl/tex/yarur/weave",   "cl/tex/sumar/spin",
          "cl/tex/sumar/weave",  "cl/min/chuqui/ext",    "cl/min/chuqui/smelt",
          "cl/min/teniente/ext", "cl/min/teniente/smelt"};
}

inline std::shared_ptr<Config> TestConfig(std::vector<std::string> units = TestUnits()) {
  auto c = std::make_shared<Config>();
  std::vector<LevelSpec> levels = {{"nation", absl::Minutes(60), absl::Hours(5)},
                                   {"sector", absl::Minutes(40), absl::Hours(4)},
                                   {"enterprise", absl::Minutes(20), absl::Hours(3)},
                                   {"unit", absl::Minutes(10), absl::Hours(2)}};
  auto h = Hierarchy::FromPaths(levels, units);
  if (!h.ok()) std::abort();
  c->hierarchy = std::make_shared<Hierarchy>(std::move(*h));
  auto ind = [](std::string name, Rollup r, Role role = Role::kNone) {
    IndicatorConfig i;
    i.name = std::move(name);
    i.rollup = r;
    i.role = role;
    return i;
  };
  c->indicators = {ind("output", Rollup::kSum, Role::kActuality),
                   ind("capacity", Rollup::kSum, Role::kCapability),
                   ind("potential", Rollup::kSum, Role::kPotentiality),
                   ind("temp", Rollup::kMean),
                   ind("peak", Rollup::kMax),
                   ind("low", Rollup::kMin),
                   ind("level", Rollup::kLast),
                   ind("note", Rollup::kNone)};
  c->aggregator.windows = {absl::Minutes(1), absl::Minutes(10)};
  c->aggregator.allowed_lateness = absl::Seconds(30);
  c->aggregator.grace = absl::Seconds(10);
  c->aggregator.idle_advance = absl::Seconds(5);
  c->aggregator.memory_limit = 32ull << 20;
  return c;
}

}  // namespace cybersyn::aggregator::testing

#endif  // CYBERSYN_AGGREGATOR_INTERNAL_TEST_CONFIG_H_
