// The aggregator as a stream topology (stream/topology.h): two sub-topologies of processors
// over the exactly-once runtime (stream/runtime.h).
//
//   "rec": <prefix>.records -> RecordsProcessor (stage 1, windows.h: validate, dedup, window,
//          roll up unit -> enterprise), state in <prefix>.aggregator-changelog;
//   "rol": <prefix>.aggregator-rollup -> RollupProcessor (stage 2, rollup.h: enterprise ->
//          sector -> nation), state in <prefix>.aggregator-rollup-changelog.
//
// Both publish closed windows to <prefix>.aggregates (keyed by node path) and child
// contributions to the roll-up topic (keyed by the parent's path), and dead-letter what they
// cannot use with its reason (malformed, unknown_node, late, ...; see windows.h Outcome).
// The sub-topology names are the local store's key prefixes of earlier versions ("t/rec/<p>/",
// "t/rol/<p>/"), so an upgraded aggregator keeps its store.
//
// Thread-safety: a processor runs on its task's lane (stream/processor.h); AggregatorMetrics is
// shared by all of them (Prometheus metrics are thread-safe).
#ifndef CYBERSYN_AGGREGATOR_TOPOLOGY_H_
#define CYBERSYN_AGGREGATOR_TOPOLOGY_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "aggregator/model.h"
#include "aggregator/rollup.h"
#include "aggregator/windows.h"
#include "common/batch_decode.h"
#include "common/clock.h"
#include "common/kafka_admin.h"
#include "cybersyn/v1/record.pb.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/registry.h"
#include "stream/processor.h"
#include "stream/topology.h"

namespace cybersyn::aggregator {

// Topic names the aggregator uses besides TopicNames' standard ones.
std::string RollupTopic(const std::string& prefix);       // <prefix>.aggregator-rollup
std::string RecordsChangelog(const std::string& prefix);  // <prefix>.aggregator-changelog
std::string RollupChangelog(const std::string& prefix);   // <prefix>.aggregator-rollup-changelog

// The processors' counters (stream::Emitter::Count), committed totals.
enum Counter { kRecords, kApplied, kDuplicates, kLate, kEmitted };
// Outputs (stream::Emitter::Send).
enum OutputTopic { kAggregatesOut, kRollupOut };

// The aggregator's own metrics (the runtime exports the exactly-once ones: lag, restore,
// commits, dead letters).
struct AggregatorMetrics {
  explicit AggregatorMetrics(prometheus::Registry& r);

  prometheus::Family<prometheus::Counter>& records;
  prometheus::Counter& late;
  prometheus::Counter& emitted;
  prometheus::Gauge& open_windows;
  prometheus::Counter& legacy_dropped;
  prometheus::Family<prometheus::Gauge>& window_value;
  prometheus::Family<prometheus::Counter>& node_records;  // {node}: enterprises, bounded
  std::vector<prometheus::Counter*> outcomes;             // by Outcome
};

struct AggregatorTopologyOptions {
  const Model* model = nullptr;          // REQUIRED; outlives the topology
  std::string prefix;                    // topic prefix
  AggregatorMetrics* metrics = nullptr;  // REQUIRED; outlives the topology
  Clock* clock = Clock::Real();          // not owned
};

stream::Topology AggregatorTopology(const AggregatorTopologyOptions& options);

// Stage 1 on one records partition.
class RecordsProcessor : public stream::Processor {
 public:
  RecordsProcessor(const AggregatorTopologyOptions& options);
  absl::Status Load(absl::string_view key, absl::string_view value) override;
  void Init(stream::Emitter& out) override;
  void Process(const ConsumedMessage& m, stream::Emitter& out) override;
  void Punctuate(const stream::PunctuateInfo& info, stream::Emitter& out) override;
  void TakeChanges(std::vector<stream::StateChange>* out) override;

  const PartitionWindows& windows() const { return windows_; }

 private:
  AggregatorTopologyOptions o_;
  PartitionWindows windows_;
  v1::RecordBatch batch_;            // parse scratch: parsing into it recycles the Records
  std::vector<BadRecord> bad_;       // the bad records of a partly bad batch
  std::vector<Emission> emissions_;  // closing scratch
  absl::flat_hash_map<std::string, prometheus::Counter*> node_counters_;  // by enterprise
  absl::flat_hash_map<std::string, prometheus::Gauge*> window_gauges_;
  std::string gauge_key_;
};

// Stage 2 on one roll-up partition.
class RollupProcessor : public stream::Processor {
 public:
  RollupProcessor(const AggregatorTopologyOptions& options);
  absl::Status Load(absl::string_view key, absl::string_view value) override;
  void Process(const ConsumedMessage& m, stream::Emitter& out) override;
  void Punctuate(const stream::PunctuateInfo& info, stream::Emitter& out) override;
  void TakeChanges(std::vector<stream::StateChange>* out) override;

  const RollupWindows& rollup() const { return rollup_; }

 private:
  AggregatorTopologyOptions o_;
  RollupWindows rollup_;
  std::vector<Emission> emissions_;
  absl::flat_hash_map<std::string, prometheus::Gauge*> window_gauges_;
  std::string gauge_key_;
};

}  // namespace cybersyn::aggregator

#endif  // CYBERSYN_AGGREGATOR_TOPOLOGY_H_
