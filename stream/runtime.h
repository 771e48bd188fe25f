// Runtime: the one exactly-once machinery of every stateful role (the aggregator, the alerter).
// A role describes what it computes as a Topology of Processors (processor.h, topology.h); the
// runtime does the rest, the Kafka Streams way with a cheaper restart:
//
// Consume -> process -> one transaction. A consumer-group member reads the inputs
// (read_committed). Each task (partition p of a sub-topology's inputs) has a processor, run on
// processing lane p % n (lanes.h), so tasks use the cores while each task sees its messages in
// order. A batch closes after max_batch_messages, max_batch_time, or once the input is quiet;
// then every task is punctuated, and ONE Kafka transaction carries the batch's outputs, dead
// letters, every task's changed state (to its compacted changelog partition) and the consumed
// offsets (send_offsets_to_transaction, fenced by the group generation, KIP-447). Only offsets of
// messages a task processed are committed.
//
// Overlapped commits: the commit of batch N runs on a committer thread while the loop consumes
// and processes batch N+1 into memory; N+1 commits, in its own transaction, once N has. A
// rebalance or the way out waits for the commit in flight.
//
// Local state. After a commit, the same state changes go to the local store (RocksDB) in one
// WriteBatch with each task's checkpoint: the changelog offset the store now reflects
// (task_store.h). The store is a cache of the changelog: a crash anywhere loses nothing.
//
// Restore (on assignment, after a rewind): the committed input offsets are read first, waiting
// while a previous owner's transaction is pending; then each task's changelog is replayed into
// the store from its checkpoint to the end (restorer.h: "restored" means a read_committed reader
// reached the end of the log), and the processor Loads the task's entries. From the beginning
// instead (wiping the task's local state first) when there is no checkpoint, when it is older
// than max_checkpoint_age (tombstones written since may have been compacted away: they live
// delete.retention.ms, 24 h), or when the log no longer covers it.
//
// Corrupt or missing state: a store that is corrupt at open (DATA_LOSS) is destroyed and
// rebuilt from the changelogs; an entry the processor cannot Load is corrupt locally, so the task
// is wiped and rebuilt from its changelog; an entry corrupt in the changelog itself is
// dead-lettered (reason corrupt_state, with its key and changelog position), tombstoned in the
// next transaction and skipped. All of it is logged and counted.
//
// Revoke: the pending work is committed (or, when the partitions were lost, dropped), the tasks
// are closed and their local state wiped (another instance owns them now; our copy would miss
// tombstones compacted meanwhile). A failed wipe is fatal.
//
// Poison input: a message larger than max_message_bytes is dead-lettered (too_large) without
// reaching the processor; processors dead-letter what they cannot use (Emitter::DeadLetter).
//
// Failed transaction: aborted, and the instance rewinds in place: every task is rebuilt from
// the store plus changelog (both reflect the last commit) and the consumer seeks back to the
// committed offsets; then it retries. After max_failed_commits failures in a row, or when the
// producer is fenced by a newer incarnation, Run ends with the error (the role's supervisor
// restarts it from the committed state).
//
// Readiness: on_ready(true) once the first assignment has been restored.
//
// Rebalancing is cooperative (incremental): the group assigns the lead topic only and every other
// input's partition p follows the lead's p (topology.h LeadTopic), so a sub-topology's
// co-partitioned inputs, and the sub-topologies' partition p, move together; only the tasks
// that change owner are closed or restored, the others go on (docs/stream.md).
//
// Thread-safety: Run (or Setup, RunOnceForTest, Shutdown) on one thread; counters(), stats()
// and ready() from any thread.
#ifndef CYBERSYN_STREAM_RUNTIME_H_
#define CYBERSYN_STREAM_RUNTIME_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/kv_store.h"
#include "prometheus/registry.h"
#include "stream/io.h"
#include "stream/processor.h"
#include "stream/topology.h"

namespace cybersyn::stream {

struct RuntimeOptions {
  Topology topology;
  KafkaIo* io = nullptr;          // REQUIRED; not owned, outlives the runtime
  std::string group_id;           // REQUIRED
  std::string group_instance_id;  // static membership; empty: dynamic
  // REQUIRED for exactly-once: a restarted instance with the same id fences its predecessor.
  std::string transactional_id;
  // false: at-least-once (no transactions; offsets committed after the outputs were
  // acknowledged), for benchmark comparisons only: it cannot rewind.
  bool exactly_once = true;
  // The local store: opened once at setup; destroyed and opened again when it is corrupt.
  std::function<absl::StatusOr<std::unique_ptr<KvStore>>()> open_store;  // REQUIRED
  std::function<absl::Status()> destroy_store;     // null: a corrupt store is fatal
  Clock* clock = Clock::Real();                    // processors' time; not owned
  std::shared_ptr<prometheus::Registry> registry;  // null: a private one

  // A transaction closes after this many input messages or this much time, whichever first;
  // early when the input was quiet for commit_when_quiet_for, the previous commit finished and
  // the batch is at least min_batch_time old.
  size_t max_batch_messages = 5000;
  absl::Duration max_batch_time = absl::Seconds(1);
  absl::Duration commit_when_quiet_for = absl::Milliseconds(50);
  absl::Duration min_batch_time = absl::Milliseconds(100);
  size_t max_message_bytes = 4u << 20;  // larger input is dead-lettered as too_large
  int processing_threads = 2;           // lanes; 0: process on the loop thread
  std::map<std::string, std::string> consumer_overrides;
  std::map<std::string, std::string> producer_overrides;
  // A checkpoint older than this is not trusted (see the header); below the changelogs'
  // delete.retention.ms (24 h).
  absl::Duration max_checkpoint_age = absl::Hours(12);
  int max_failed_commits = 3;  // failed transactions in a row before Run gives up
  // Restore newly assigned tasks on a thread of their own while the others go on (their
  // messages are skipped meanwhile and read again from the committed offset); false: inside
  // the rebalance callback, everything waits (deterministic, for the test driver).
  bool restore_in_background = false;
  // How long an assignment waits for the committed offsets of its new partitions to become
  // stable (a previous owner's transaction pending); above transaction.timeout.ms (15 s) plus
  // the coordinator's 10 s abort interval.
  absl::Duration stable_offsets_wait = absl::Seconds(90);

  std::function<void(bool)> on_ready;
  // After each committed transaction, on the committer thread, with its outputs (dead letters
  // included; the outputs are kept until then only when this is set).
  std::function<void(const std::vector<Output>&)> on_committed;
  // About once a second on the loop thread, lanes idle: every task's processor (for gauges).
  std::function<void(const std::vector<Processor*>&)> on_sample;
  // Tests: called before each commit with the number of commits so far; an error fails that
  // commit as a broker error would. Committer thread, one call at a time.
  std::function<absl::Status(uint64_t)> commit_hook_for_test;
};

// Monotonic totals since Create. The processing totals (deadlettered, and the processors'
// counters()) are those of the last committed transaction.
struct RuntimeStats {
  uint64_t transactions = 0;
  uint64_t deadlettered = 0;
  uint64_t rewinds = 0;  // failed transactions aborted and retried from the committed state
  uint64_t tasks_restored = 0;
  uint64_t restored_entries = 0;           // changelog entries replayed into the store
  uint64_t corrupt_local_entries = 0;      // rebuilt from the changelog
  uint64_t corrupt_changelog_entries = 0;  // dead-lettered and tombstoned
  uint64_t store_rebuilds = 0;             // corrupt store destroyed at open
  uint64_t state_bytes = 0;                // last sample
  // The lead topic's partitions (topology.h) this instance owns, as of the last rebalance.
  std::vector<int32_t> partitions;
  double last_restore_seconds = 0;  // of the last assignment that restored tasks
  uint64_t restoring_tasks = 0;     // being restored in the background now
};

class Runtime {
 public:
  static absl::StatusOr<std::unique_ptr<Runtime>> Create(RuntimeOptions options);
  ~Runtime();

  // Sets up, then runs the loop until `stop` or a fatal error, then leaves the group
  // (committing what is pending when it ended cleanly).
  absl::Status Run(const std::atomic<bool>& stop);

  // The same in steps, for the test driver: Setup once; RunOnceForTest consumes what is
  // available now (no waiting, up to max_batch_messages), processes it, punctuates every task
  // and commits synchronously, returning how many messages it consumed; Shutdown leaves.
  absl::Status Setup();
  absl::StatusOr<size_t> RunOnceForTest();
  absl::Status Shutdown();

  bool ready() const;
  std::vector<uint64_t> counters() const;  // by Topology::counters, committed
  RuntimeStats stats() const;
  // Loop thread, between steps: the processor of a task this instance owns, or null.
  Processor* ProcessorForTest(absl::string_view subtopology, int32_t partition);
  KvStore* store();  // null before Setup

  class Impl;

 private:
  explicit Runtime(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace cybersyn::stream

#endif  // CYBERSYN_STREAM_RUNTIME_H_
