// Aggregator: the `cybersyn aggregator` role as a library (the CLI and `cybersyn demo` run it).
//
// One consumer group member on <prefix>.records (stage 1: validate, dedup, window, roll up
// unit -> enterprise) and <prefix>.aggregator-rollup (stage 2: enterprise -> sector -> nation, fed
// by stage 1 and by itself, keyed by parent path). Each input partition is a task with its own
// state (windows.h / rollup.h) and its own changelog partition (same number, compacted topics
// <prefix>.aggregator-changelog and <prefix>.aggregator-rollup-changelog).
//
// Exactly-once (the default): per poll batch, in ONE Kafka transaction, closed windows go to
// <prefix>.aggregates (keyed by node path), child contributions to the roll-up topic, rejected
// input to <prefix>.deadletter (headers: reason, source_topic, source_partition, source_offset),
// changed state to the changelog, and the consumed offsets (send_offsets_to_transaction, KIP-447
// fencing by group generation). After the commit the same changes go to RocksDB in one
// WriteBatch together with the changelog offset they reflect. On assignment a task replays its
// changelog (read_committed) from that offset to the end, or from the beginning when the store
// has no offset for it, then consumption starts at the committed input offset. A task that is
// revoked during the run has its local state wiped (tombstones may be compacted away while
// another instance owns it), so a later re-assignment restores from the beginning.
//
// Processing: the records partitions' messages are parsed, validated and windowed on
// `processing_threads` lane threads (lanes.h), partition p on lane p % n; the loop waits for the
// lanes before anything else touches those windows (closing, taking changes, rebalances).
//
// Pipelining: the commit of batch N (producing its outputs and changelog, sending the offsets,
// committing, then the RocksDB write) runs on a committer thread while the loop consumes and
// processes batch N+1 into memory; N+1's outputs are buffered and only produced, in their own
// transaction, once N has committed. At most one commit is in flight, and a rebalance or Stop
// waits for it. A failure of N surfaces when the loop hands over N+1; both are then dropped by the
// rewind below (the in-memory state is rebuilt from the last commit either way).
//
// A failed transaction is aborted and the instance rewinds in place: every task's in-memory
// state is rebuilt from RocksDB plus the changelog (both reflect the last commit), and the
// consumer seeks back to the committed input offsets; then processing resumes. Only a fatal
// producer error (fenced by a newer incarnation) or repeated failures end Run.
//
// Thread-safety: Start/Stop/RequestStop from any thread; Run on one thread; counters() and
// ready() from any thread.
#ifndef CYBERSYN_AGGREGATOR_AGGREGATOR_H_
#define CYBERSYN_AGGREGATOR_AGGREGATOR_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/config.h"
#include "common/kafka_admin.h"
#include "common/kafka_error.h"
#include "prometheus/registry.h"

namespace cybersyn::aggregator {

struct AggregatorOptions {
  std::shared_ptr<const Config> config;  // REQUIRED
  KafkaClientOptions client;             // bootstrap (and SASL/SSL properties)
  // Names this instance: its transactional.id is "<prefix>.aggregator.<instance_id>", so a
  // restarted instance fences its previous incarnation. Unique per running instance.
  std::string instance_id = "aggregator-0";
  std::string state_dir;                           // empty: config->aggregator.state_dir
  Clock* clock = Clock::Real();                    // not owned
  std::shared_ptr<prometheus::Registry> registry;  // null: a private one
  TopicEnsurer ensure_topics;                      // null: EnsureTopics against `client`
  // false: at-least-once (no transactions; offsets committed after outputs were acknowledged),
  // for the benchmark's comparison only.
  bool exactly_once = true;
  // A transaction closes after this many input messages or this much time (consuming and
  // processing), whichever comes first. Each commit writes every window changed since the last
  // one to the changelog and RocksDB and waits for the broker, so longer transactions cost less
  // per record (a window of a 1 s series changes ~once per commit instead of once per record);
  // the price is output latency and how much a restarted instance re-processes.
  size_t max_batch_messages = 5000;
  absl::Duration max_batch_time = absl::Seconds(1);
  // It closes early when the input has been quiet this long (caught up), the previous commit
  // has finished and it is at least min_batch_time old: a burst's results need not wait out
  // max_batch_time, and a quiet instance still commits at most 1/min_batch_time times a second.
  absl::Duration commit_when_quiet_for = absl::Milliseconds(50);
  absl::Duration min_batch_time = absl::Milliseconds(100);
  size_t max_message_bytes = 4u << 20;  // larger input is dead-lettered as too_large
  // Threads that parse, validate and window the records partitions (partition p on thread
  // p % n, so each partition's records are still applied in order by one thread); the loop
  // thread consumes, hands them over, and closes windows and commits once they are done. 0: all
  // on the loop thread.
  int processing_threads = 2;
  std::map<std::string, std::string> consumer_overrides;
  std::map<std::string, std::string> producer_overrides;
  std::function<void(bool)> on_ready;  // called with true once the first restore finished
  // Tests: called before each transaction commit with the number of commits so far; an error
  // makes that commit fail as a broker error would (abort, rewind, retry). Called on the
  // committer thread, one call at a time.
  std::function<absl::Status(uint64_t)> commit_hook_for_test;
};

// Monotonic totals since Create (also exported as Prometheus metrics). While running, the
// processing totals (records ... emitted) are those of the last committed transaction.
struct AggregatorCounters {
  uint64_t records = 0;  // records offered (stage 1)
  uint64_t applied = 0;
  uint64_t duplicates = 0;
  uint64_t deadlettered = 0;  // messages written to the dead-letter topic
  uint64_t late = 0;
  uint64_t emitted = 0;  // aggregates published
  uint64_t transactions = 0;
  uint64_t rewinds = 0;  // failed transactions aborted and retried from the committed state
  uint64_t restored_entries = 0;
  uint64_t state_bytes = 0;  // last sample
};

class Aggregator {
 public:
  static absl::StatusOr<std::unique_ptr<Aggregator>> Create(AggregatorOptions options);
  ~Aggregator();  // Stops if running.

  // Runs the loop on a background thread.
  absl::Status Start();
  // Asks the loop to stop, waits, and returns how it ended.
  absl::Status Stop();
  // Runs the loop on the calling thread until RequestStop() or a fatal error (fenced producer,
  // unusable state store).
  absl::Status Run();
  void RequestStop() { stop_.store(true); }

  bool ready() const { return ready_.load(); }
  AggregatorCounters counters() const;
  std::shared_ptr<prometheus::Registry> registry() const;

  class Impl;

 private:
  explicit Aggregator(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> ready_{false};
  std::thread thread_;
  absl::Mutex mu_;
  absl::Status thread_status_ ABSL_GUARDED_BY(mu_);
};

// Topic names the aggregator uses besides TopicNames' standard ones.
std::string RollupTopic(const std::string& prefix);       // <prefix>.aggregator-rollup
std::string RecordsChangelog(const std::string& prefix);  // <prefix>.aggregator-changelog
std::string RollupChangelog(const std::string& prefix);   // <prefix>.aggregator-rollup-changelog

}  // namespace cybersyn::aggregator

#endif  // CYBERSYN_AGGREGATOR_AGGREGATOR_H_
