// The quality harness's hierarchy mode (`quality_harness --hierarchy`): for several seeds, the
// simulator over a hierarchy (the demo's by default) through the aggregator and the alerter
// (bench/hierarchy_run.h), scored against the ground truth (bench/hierarchy_score.h). Two runs
// per seed:
//   faults:   the simulator's own faults ("small" preset rates: step, slope, transient, outage);
//   patterns: no simulator faults, independent unit noise; the harness injects, in turn, a
//             parent-only pattern (four units of a node drifting to 1.5 sigma each over a
//             minute, holding 10 minutes, sigma being a unit's noise in the largest window, so
//             that no unit should signal) and a common cause (most units of a node stepping
//             together for 3 minutes, by 4..8 sample sigmas like the simulator's steps).
// It prints, per seed and over all seeds: signals raised per caught fault, false signals, fault
// recall at the faulty node, recall of parent-only patterns at their node, signals per common
// cause, and the rewards raised (not counted).
//
// Thread-safety: single-threaded driver.
#ifndef CYBERSYN_BENCH_HIERARCHY_MODE_H_
#define CYBERSYN_BENCH_HIERARCHY_MODE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/time/time.h"

namespace cybersyn::bench {

struct HierarchyArgs {
  std::string config;  // empty: deploy/examples/demo.yaml (built in)
  std::vector<uint64_t> seeds = {1, 2, 3};
  absl::Duration warmup = absl::Minutes(30);  // not scored: detectors learn
  absl::Duration faults_for = absl::Hours(1);
  absl::Duration patterns_for = absl::Hours(3);
  absl::Duration pattern_every = absl::Minutes(20);
  absl::Duration tail = absl::Minutes(5);  // closes the last windows; not scored
  std::string work_dir = "/tmp/cybersyn-harness";
  std::string truth_dir;    // non-empty: writes truth and signals CSVs per run there
  bool list = false;        // prints every event's outcome and every false signal
  bool attribution = true;  // false (--no-attribution): every series raises on its own view
};

// Runs and prints; returns the process exit code.
int RunHierarchyMode(const HierarchyArgs& args);

}  // namespace cybersyn::bench

#endif  // CYBERSYN_BENCH_HIERARCHY_MODE_H_
