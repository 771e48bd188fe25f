// QueryStore: the read side of the system. It tails <prefix>.aggregates and <prefix>.signals
// (read_committed, every partition, no consumer group: every serving process keeps its own
// complete copy) into a KvStore, and answers the Query service, the Opsroom and the CLI:
// the history of a series (with the detector's one-step forecast recomputed from the stored
// windows: detectors are deterministic, so the replay gives what the alerter saw), the status
// of a node, the open signals, and a live event feed.
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
#include <map>
#include <memory>
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
  size_t event_ring = 4096;  // recent signal events kept for live feeds
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
  void FillStatus(const Hierarchy::Node& node, int depth, v1::NodeStatus* out)
      ABSL_SHARED_LOCKS_REQUIRED(mu_);

  QueryStoreOptions options_;
  TopicNames topics_;
  std::unique_ptr<KvStore> store_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> aggregates_seen_{0};
  std::atomic<uint64_t> events_seen_{0};

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
