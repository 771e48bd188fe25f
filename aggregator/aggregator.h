// Aggregator: the `cybersyn aggregator` role as a library (the CLI and `cybersyn demo` run it).
//
// One consumer group member on <prefix>.records (stage 1: validate, dedup, window, roll up
// unit -> enterprise) and <prefix>.aggregator-rollup (stage 2: enterprise -> sector -> nation, fed
// by stage 1 and by itself, keyed by parent path). What it computes is aggregator/topology.h;
// how it runs is the stream runtime's (stream/runtime.h): per batch, in ONE Kafka transaction,
// closed windows to <prefix>.aggregates, child contributions to the roll-up topic, rejected input
// to <prefix>.deadletter (headers: reason, source_topic, source_partition, source_offset),
// changed state to the compacted changelogs <prefix>.aggregator-changelog and
// <prefix>.aggregator-rollup-changelog, and the consumed offsets; then the same changes to RocksDB
// with the changelog offset they reflect. Overlapped commits, restore on assignment, revoke
// cleanup, rewind after a failed transaction, readiness: all the runtime's.
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
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "aggregator/topology.h"
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
  // After each committed transaction, on the committer thread, with the aggregates it
  // published (keyed by node path; benchmarks time window close -> watcher with it).
  std::function<void(const std::vector<std::string>& aggregates)> on_committed;
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
  uint64_t state_bytes = 0;         // last sample
  std::vector<int32_t> partitions;  // records partitions owned now (with their roll-up ones)
  double last_restore_seconds = 0;  // of the last assignment that restored state
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

}  // namespace cybersyn::aggregator

#endif  // CYBERSYN_AGGREGATOR_AGGREGATOR_H_
