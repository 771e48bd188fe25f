// QueryStore: the read side of the system. It tails <prefix>.aggregates and <prefix>.signals
// (read_committed, every partition, no consumer group: every serving process keeps its own
// complete copy) into a KvStore, and answers the Query service, the Opsroom and the CLI:
// the history of a series (with the detector's one-step forecast recomputed from the stored
// windows: detectors are deterministic, so the replay gives what the alerter saw), the status
// of a node, the open signals, and a live event feed.
//
// Retention (config query.retention, 7 days by default): an aggregate whose window started more
// than the retention before the newest window read is not kept, and a sweep (at most once per
// `sweep_every`, after a write) deletes the older ones through a time index ("t/" keys), so a
// sweep reads only what it deletes. Resolved signals go likewise, measured from the newest signal
// event (their "r/" index); open signals stay. Stream time rather than the wall clock: a replay
// of old data keeps its last `retention`, and a plant that stops sending keeps its last history.
// Forecasts are replayed from the oldest window kept.
//
// Node colour (NodeStatus.worst) is the worst severity of the open signals whose CURRENT node
// is that node: in Beer's model a level only hears what its children could not fix, so a parent
// lights up when a signal escalates to it, not whenever anything below it is abnormal.
//
// Thread-safety: all public methods are safe from any thread.
#ifndef CYBERSYN_QUERY_QUERY_STORE_H_
#define CYBERSYN_QUERY_QUERY_STORE_H_

#include <atomic>
#include <deque>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/config.h"
#include "common/kafka_admin.h"
#include "common/kafka_error.h"
#include "common/kv_store.h"
#include "cybersyn/v1/services.pb.h"
#include "cybersyn/v1/signal.pb.h"

namespace cybersyn::query {

struct QueryStoreOptions {
  std::shared_ptr<const Config> config;
  KafkaClientOptions client;
  std::string topic_prefix = "cybersyn";
  std::string state_dir;  // empty: keep the materialised view in memory
  uint64_t memory_limit = 64ull << 20;
  size_t event_ring = 4096;                 // recent signal events kept for live feeds
  std::optional<absl::Duration> retention;  // unset: config->query.retention
  absl::Duration sweep_every = absl::Minutes(1);
};

class QueryStore {
 public:
  static absl::StatusOr<std::unique_ptr<QueryStore>> Start(QueryStoreOptions options);
  ~QueryStore();
  void Stop();

  absl::StatusOr<v1::SeriesHistoryResponse> SeriesHistory(const v1::SeriesHistoryRequest& request);
  // NOT_FOUND for an unknown node. depth = levels of children to include.
  absl::StatusOr<v1::NodeStatus> Status(const std::string& node, int depth);
  // Open (not resolved) signals whose origin is inside `subtree` ("" = all), newest first.
  std::vector<v1::Signal> OpenSignals(const std::string& subtree);
  absl::StatusOr<v1::Signal> FindSignal(const std::string& id);
  // Signal events after `cursor` ("" = from now), waiting up to `wait` for the first.
  // Cursors are local to this process; an unknown or too old cursor restarts from the oldest
  // event still kept.
  std::vector<std::pair<std::string, v1::SignalEvent>> EventsAfter(const std::string& cursor,
                                                                   absl::Duration wait);

  uint64_t aggregates_seen() const { return aggregates_seen_.load(); }
  uint64_t signal_events_seen() const { return events_seen_.load(); }
  // Aggregates and resolved signals deleted (or never kept) because they were past retention.
  uint64_t aggregates_expired() const { return aggregates_expired_.load(); }
  uint64_t signals_expired() const { return signals_expired_.load(); }
  // Waits until the view has read every partition up to the end as of the call.
  absl::Status WaitCaughtUp(absl::Duration timeout);

 private:
  explicit QueryStore(QueryStoreOptions options);
  void Run();
  // Adds the message to `batch`; its in-memory effects go to `publish`, run under mu_ only once
  // the batch is written, so a reader never sees a change the store does not have yet.
  absl::Status Apply(absl::string_view topic, int32_t partition, int64_t offset,
                     absl::string_view value, WriteBatch& batch,
                     std::vector<std::function<void()>>& publish);
  // The oldest time kept when the newest read is `stream_time_ms`.
  int64_t Cutoff(int64_t stream_time_ms) const;
  // Deletes what is past retention, at most `kMaxSweep` entries per call (sets sweep_again_).
  absl::Status Sweep();
  void FillStatus(const Hierarchy::Node& node, int depth, v1::NodeStatus* out)
      ABSL_SHARED_LOCKS_REQUIRED(mu_);

  QueryStoreOptions options_;
  TopicNames topics_;
  std::unique_ptr<KvStore> store_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> aggregates_seen_{0};
  std::atomic<uint64_t> events_seen_{0};
  std::atomic<uint64_t> aggregates_expired_{0};
  std::atomic<uint64_t> signals_expired_{0};
  // Run's thread only: stream times (newest aggregate window start, newest signal event) in ms.
  int64_t retention_ms_ = 0;
  int64_t aggregate_time_ms_ = std::numeric_limits<int64_t>::min();
  int64_t signal_time_ms_ = std::numeric_limits<int64_t>::min();
  absl::Time last_sweep_ = absl::InfinitePast();
  bool sweep_again_ = false;

  absl::Mutex mu_;
  std::map<std::string, v1::Signal> open_ ABSL_GUARDED_BY(mu_);  // id -> signal
  // node -> indicator -> value of the last closed window of the smallest size.
  std::map<std::string, std::map<std::string, double>> last_values_ ABSL_GUARDED_BY(mu_);
  std::deque<std::pair<uint64_t, v1::SignalEvent>> ring_ ABSL_GUARDED_BY(mu_);
  uint64_t next_seq_ ABSL_GUARDED_BY(mu_) = 1;
  std::map<std::pair<std::string, int32_t>, int64_t> positions_ ABSL_GUARDED_BY(mu_);
  std::string epoch_;
};

}  // namespace cybersyn::query

#endif  // CYBERSYN_QUERY_QUERY_STORE_H_
