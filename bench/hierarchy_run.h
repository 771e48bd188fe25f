// HierarchyRun: the quality harness's pipeline over a hierarchy. The roles of `cybersyn demo`
// (gateway -> aggregator -> alerter) run on an embedded Kafka broker, fed by the simulator as
// fast as they go, with harness patterns added to chosen units' samples; the result is every
// SignalEvent committed to <prefix>.signals and the ground truth (the simulator's faults and the
// patterns).
//
// Event time is simulated and processing time is real: what the harness scores (raised signals,
// by the window that raised them) depends on event time only. The aggregator's idle advance is
// set far out (a stall of the harness must not move watermarks to the wall clock); a tail of
// simulated time after the scored period closes its last windows.
//
// Thread-safety: RunHierarchy is self-contained; runs may not share a work directory.
#ifndef CYBERSYN_BENCH_HIERARCHY_RUN_H_
#define CYBERSYN_BENCH_HIERARCHY_RUN_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "bench/hierarchy_score.h"
#include "common/config.h"
#include "cybersyn/v1/signal.pb.h"
#include "ingest/simulator.h"

namespace cybersyn::bench {

// A pattern the harness adds to the samples of `truth.units` on `truth.indicator`.
struct Pattern {
  enum class Shape {
    kStep,   // + per_sample[u] on [start, end)
    kDrift,  // ramps up over the first twelfth, holds, ramps down over the last twelfth
  };
  TruthEvent truth;
  Shape shape = Shape::kStep;
  std::map<std::string, double> per_sample;  // by unit: the full-strength offset of one sample
  // The offset at `t_ms` of one sample of `unit` (0 outside the pattern or for other units).
  double OffsetAt(const std::string& unit, int64_t t_ms) const;
};

struct RunSpec {
  std::shared_ptr<const Config> config;  // kafka.bootstrap is replaced by an embedded broker
  ingest::SimulatorOptions sim;          // unpaced; start_ms and duration set
  std::vector<Pattern> patterns;
  std::string work_dir;     // state of the roles; removed first
  bool attribution = true;  // the alerter's (docs/attribution.md); false: the "before"
};

struct RunOutput {
  std::vector<v1::SignalEvent> events;  // <prefix>.signals, every partition, in offset order
  std::vector<ingest::InjectedFault> faults;
  uint64_t records = 0;
  uint64_t aggregator_records = 0;  // records the aggregator took (fewer: its dead letters)
  uint64_t aggregates = 0;
  uint64_t late = 0;  // records the aggregator found late (applied to no window)
  absl::Duration took;
};

absl::StatusOr<RunOutput> RunHierarchy(const RunSpec& spec);

// Per "<unit>|<indicator>": the noise standard deviation of the unit's value in windows of
// `window`, from the same simulation without faults over `over` (the standard deviation of
// successive differences / sqrt(2), which the slow daily cycle hardly moves).
std::map<std::string, double> WindowSigmas(const Config& config, ingest::SimulatorOptions sim,
                                           absl::Duration window, absl::Duration over);

}  // namespace cybersyn::bench

#endif  // CYBERSYN_BENCH_HIERARCHY_RUN_H_
