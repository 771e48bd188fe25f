// The alerter as a stream topology (stream/topology.h): one sub-topology, "alr", whose task p is
// partition p of <prefix>.aggregates (WindowAggregate, keyed by node path) and of
// <prefix>.commands (Command, keyed by the signal's origin node), co-partitioned so that the
// owner of a series also owns the commands for its signals. Its state goes to
// <prefix>.alerter-changelog (alerter_state.h), its SignalEvents to <prefix>.signals (keyed by
// origin node), what it cannot use to the dead-letter topic.
//
// AlerterProcessor keeps, per partition, the detectors of its series, a SignalBook of open
// signals (deadlines are its timers) and the command ids already applied. It writes only what
// changed since the last commit (dirty series, signals, commands). Timers: Punctuate ticks the
// book with the runtime's clock at the end of every batch, so a deadline that passed while the
// process was down fires at the first batch after restore, once (in a transaction with its
// state change).
//
// Thread-safety: a processor runs on its task's lane (stream/processor.h); AlerterMetrics and
// the SignalObserver are shared (thread-safe).
#ifndef CYBERSYN_ALERTER_TOPOLOGY_H_
#define CYBERSYN_ALERTER_TOPOLOGY_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/btree_map.h"
#include "absl/container/btree_set.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/node_hash_map.h"
#include "alerter/detectors/detector.h"
#include "alerter/shared_view.h"
#include "alerter/signal_book.h"
#include "common/clock.h"
#include "common/config.h"
#include "cybersyn/v1/aggregate.pb.h"
#include "cybersyn/v1/command.pb.h"
#include "cybersyn/v1/signal.pb.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"
#include "stream/processor.h"
#include "stream/topology.h"

namespace cybersyn::alerter {

// Sees what the alerter committed (e.g. the Alertmanager bridge). Must return quickly (record,
// do I/O elsewhere) and be thread-safe: OnCommitted runs on the runtime's committer thread,
// the others on its loop thread.
class SignalObserver {
 public:
  virtual ~SignalObserver() = default;
  // Transitions just committed to <prefix>.signals, in order.
  virtual void OnCommitted(const std::vector<v1::SignalEvent>& events) = 0;
  // The open signals of a partition this instance just restored (took over or restarted with).
  virtual void OnRestored(const std::vector<v1::Signal>& open) = 0;
  // Open signals of partitions this instance no longer owns (another instance reports them).
  virtual void OnRevoked(const std::vector<std::string>& signal_ids) = 0;
};

// The processors' counters (stream::Emitter::Count), committed totals.
enum AlerterCounter {
  kAggregates,
  kDuplicates,
  kCommands,
  kRejectedCommands,
  kEvents,
  kAttributed,  // detections attributed to other signals (attribution.h), not raised
};
inline constexpr int kSignalsOut = 0;   // stream::Emitter::Send's topics
inline constexpr int kCommandsOut = 1;  // the shared view's updates and attributions

struct AlerterMetrics {
  explicit AlerterMetrics(prometheus::Registry& r);
  prometheus::Gauge& series;
  prometheus::Family<prometheus::Gauge>& open;
  prometheus::Counter& escalations;
  prometheus::Histogram& update;
  prometheus::Counter& resets;
  // Detections attributed to other signals (docs/attribution.md), by rule: "bases" (a derived
  // index at its bases' node), "descendants" (rule 1 across nodes).
  prometheus::Family<prometheus::Counter>& attributed;
  prometheus::Family<prometheus::Counter>& aggregates;
  prometheus::Family<prometheus::Counter>& commands;
  prometheus::Family<prometheus::Counter>& transitions;
  // Waiting detections decided without the whole shared view (a task behind, down or without
  // series: docs/attribution.md, the wait rule); the only decisions a replay may not repeat.
  prometheus::Family<prometheus::Counter>& attribution_timeout_family;
  // Cached children of the families above.
  prometheus::Counter &applied, &duplicate, &bad_aggregate, &bad_detector;
  prometheus::Counter &command_applied, &command_rejected, &command_duplicate, &bad_command;
  prometheus::Counter &attributed_to_bases, &attributed_to_descendants;
  prometheus::Counter& attribution_timeouts;
};

struct AlerterTopologyOptions {
  std::shared_ptr<const Config> config;  // REQUIRED
  std::string prefix;                    // topic prefix
  AlerterMetrics* metrics = nullptr;     // REQUIRED; outlives the topology
  Clock* clock = Clock::Real();          // not owned
  SignalObserver* observer = nullptr;    // not owned; null: none
  // Attribution (attribution.h): on by default; off, every series raises on its own view (the
  // quality harness's comparison).
  bool attribution = true;
  // The partition count of <prefix>.commands (= of <prefix>.aggregates), read when a task
  // starts: the shared view's updates go to every partition. Null or 0: attribution across
  // nodes is off (derived indices at their bases' node still attribute).
  std::function<int()> partitions;
  // The wait rule (docs/attribution.md): a detection at a node with descendants (or at a coarser
  // window of a node) waits until the shared view covers `attribution_lag` windows after its
  // own; without that, until the task's own input is `attribution_wait` windows past that point
  // and as long has passed since it waited (or kStalledWaits times that with no input).
  int attribution_wait = 2;
  int attribution_lag = 1;
};

// With no input at all (the end of the data), a waiting detection is decided after this many
// times attribution_wait windows of processing time.
inline constexpr int kStalledWaits = 10;

stream::Topology AlerterTopology(const AlerterTopologyOptions& options);

// Maps a window's value departure to a reward: step and slope shifts in the favourable direction
// of the indicator are rewards. The favourable direction is "up" for Beer's triple (actuality,
// capability, potentiality) and the derived indices (productivity, latency, performance): more
// output / capacity / index is better. Other indicators (energy, absenteeism, ...) have no
// favourable direction: every shift is an alert. Returns +1 (up), -1 (down) or 0 (none).
int FavourableDirection(const IndicatorConfig* indicator, const std::string& indicator_name);

class AlerterProcessor : public stream::Processor {
 public:
  AlerterProcessor(const AlerterTopologyOptions& options, int32_t partition = 0);

  absl::Status Load(absl::string_view key, absl::string_view value) override;
  void Init(stream::Emitter& out) override;
  void Process(const ConsumedMessage& m, stream::Emitter& out) override;
  void Punctuate(const stream::PunctuateInfo& info, stream::Emitter& out) override;
  void TakeChanges(std::vector<stream::StateChange>* out) override;
  void Close(bool revoked) override;

  // For gauges and tests (loop thread, lanes idle).
  const SignalBook& book() const { return book_; }
  size_t series() const { return series_.size(); }
  // Windows applied to a series ("<node>|<indicator>|<window ms>"), 0 when unknown.
  uint64_t WindowsOf(absl::string_view series_id) const;

 private:
  struct Series {
    v1::SeriesKey key;
    std::unique_ptr<Detector> detector;  // null: detector kind "none"
    std::string_view detector_kind;
    uint64_t windows = 0;
    int64_t last_window_start = 0;
    int64_t last_arrival_ms = 0;     // processing time of the last window (no-data timer)
    int64_t no_data_raised_for = 0;  // last_arrival_ms of the silence already signalled
    bool dirty = false;
  };

  absl::StatusOr<Series> NewSeries(const v1::SeriesKey& key);
  // The series of `agg` (its id in sid_), created when new; null when its detector cannot be
  // made. `id` points at the map's key.
  Series* FindOrCreate(const v1::WindowAggregate& agg, const std::string** id);
  void MarkDirty(const std::string& id, Series& s);
  void ProcessAggregate(const v1::WindowAggregate& agg, int64_t now, stream::Emitter& out);
  void ProcessCommand(const v1::Command& cmd, int64_t now, stream::Emitter& out);
  void CheckNoData(int64_t now, stream::Emitter& out);
  // A derived index's detection that the open signals of its bases at the same node explain
  // (attribution.h): records it on them ("also visible at") and returns true; false: raise it.
  bool AttributeToBases(const Detection& d, int64_t now, stream::Emitter& out);
  // Rule 1 across nodes: whether `d` may wait for the shared view (its node has descendants,
  // or finer windows); Hold keeps it (one per series and window), DecideCovered raises or
  // attributes the ones whose wait is over.
  bool MayWait(const Detection& d) const;
  void Hold(const std::string& series_id, Detection d, int64_t now);
  // A detection that the open signals of the shared view explain (same indicator at
  // descendants, or at the node in finer windows): sends ATTRIBUTE to their owners and returns
  // true; false: raise it.
  bool AttributeToDescendants(const Detection& d, stream::Emitter& out);
  // Broadcasts this task's progress when it moved (Punctuate).
  void ShareProgress(stream::Emitter& out);
  // Decides the waiting detections that are covered or timed out (docs/attribution.md).
  void DecideCovered(int64_t now, stream::Emitter& out);
  // The newest window end this task has processed (0: none).
  int64_t OwnWatermark() const;
  void PruneView();
  void Broadcast(const v1::ViewUpdate& update, const std::string& key, stream::Emitter& out);
  int LeavesUnder(const Hierarchy::Node* n);
  void Emit(std::vector<v1::SignalEvent> events, stream::Emitter& out);

  struct Pending {
    Detection d;
    int64_t arrived_ms = 0;
    int depth = 0;
  };

  AlerterTopologyOptions o_;
  int32_t partition_ = 0;
  int partitions_ = 0;  // 0: no shared view
  std::string aggregates_topic_;
  SharedView view_;
  // By "<series id>#<window start>": decided in key order.
  absl::btree_map<std::string, Pending> pending_;
  absl::btree_set<std::string> dirty_pending_;
  bool progressed_ = false;  // windows applied since the last progress
  std::map<std::pair<int64_t, int32_t>, int64_t> sent_progress_;
  absl::flat_hash_map<const Hierarchy::Node*, int> leaves_;
  SignalBook book_;
  absl::node_hash_map<std::string, Series> series_;  // by series id; pointer-stable
  std::vector<std::pair<const std::string*, Series*>> dirty_series_;
  absl::flat_hash_map<std::string, int64_t> commands_;  // applied id -> applied at (ms)
  std::vector<stream::StateChange> changes_;  // commands, and restored entries to re-encode
  int64_t next_no_data_check_ = 0;
  uint64_t updates_ = 0;  // detector updates (every 16th is timed)
  // Applied and duplicate windows not yet added to the shared metrics (added once per batch,
  // not per window: the counters are shared by the lanes).
  uint64_t applied_ = 0, duplicates_ = 0;
  v1::WindowAggregate agg_;  // parse scratch
  std::string sid_;          // scratch
};

}  // namespace cybersyn::alerter

#endif  // CYBERSYN_ALERTER_TOPOLOGY_H_
