// TopologyTestDriver: runs a role's topology on the real stream runtime (runtime.h) over an
// in-memory broker (memory_broker.h) and an in-memory store, with a manual clock: broker-free,
// deterministic, fast. In the shape of Kafka Streams' TopologyTestDriver:
//
//   TopologyTestDriver d([&] { return MyTopology(...); });
//   ASSERT_OK(d.Start());
//   d.Pipe("in", "key", "value");          // what a producer would write
//   ASSERT_OK(d.Process());                 // consume, process, commit (one transaction per batch)
//   d.Advance(absl::Minutes(5));            // move the clock; punctuates
//   auto out = d.ReadOutput("out");         // committed (read_committed) records since last read
//   d.processor<MyProcessor>("sub", 0);     // inspect a task's in-memory state
//   d.State("sub", 0);                      // ... or what the local store persisted
//   d.RevokeAll(); d.AssignAll();           // simulate rebalances
//   d.Crash(); d.Start();                   // kill -9 and restart from store + changelog
//
// Everything the runtime does with Kafka happens for real against the in-memory broker:
// transactions with markers, the changelog, committed offsets, restore to the end of the log,
// rewinds after a failed commit. Faults: MemoryBroker's (fencing, failed reads, compaction,
// corrupt records), a failing or corrupt local store, a failing commit (commit_hook).
//
// Thread-safety: one test thread.
#ifndef CYBERSYN_STREAM_TEST_DRIVER_H_
#define CYBERSYN_STREAM_TEST_DRIVER_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/kv_store.h"
#include "stream/memory_broker.h"
#include "stream/runtime.h"

namespace cybersyn::stream {

struct DriverOptions {
  int partitions = 4;  // of every topic the topology uses
  absl::Time start = absl::FromUnixMillis(1'700'000'000'000);
  int processing_threads = 0;  // lanes (0: on the test thread)
  size_t max_batch_messages = 5000;
  std::string instance_id = "driver-0";
  bool restore_in_background = false;  // RuntimeOptions'; Process() waits for the restores
  absl::Duration stable_offsets_wait = absl::Seconds(90);  // RuntimeOptions'
};

class TopologyTestDriver {
 public:
  // `make` builds the topology at every Start, with the driver's clock.
  using MakeTopology = std::function<Topology(Clock* clock)>;
  explicit TopologyTestDriver(MakeTopology make, DriverOptions options = {});
  ~TopologyTestDriver();

  // Creates the runtime and joins the group (the restore happens at the first Process).
  absl::Status Start();
  // A clean stop: commits what is pending, leaves the group, keeps the store.
  absl::Status Stop();
  // kill -9: the runtime disappears without committing or leaving cleanly (its transaction, if
  // one was open, is aborted by the next start's fencing). `wipe_store`: the disk went too.
  void Crash(bool wipe_store = false);

  // Appends to a topic outside any transaction (as a gateway's idempotent producer).
  // partition -1: by key. Returns the offset.
  int64_t Pipe(const std::string& topic, const std::string& key, const std::string& value,
               int32_t partition = -1);
  // Runs batches until two in a row consumed nothing: every message piped so far, and every
  // message the processors published to their own inputs, was processed and committed, and the
  // tasks were punctuated at the current time.
  absl::Status Process();
  // Moves the clock, then Process().
  absl::Status Advance(absl::Duration d);

  // Committed records of `topic` appended since the last ReadOutput of it.
  std::vector<MemoryBroker::Record> ReadOutput(const std::string& topic);
  // Every committed record of `topic`, all partitions.
  std::vector<MemoryBroker::Record> ReadAll(const std::string& topic);

  // Rebalances: this instance keeps only `keep` of its group's partitions (of every input
  // topic), or gets all of them back. `mid_batch`: delivered after the next fetch (after
  // `after_fetches` more), so that the batch straddles the rebalance.
  void KeepPartitions(const std::vector<int32_t>& keep, bool mid_batch = false,
                      int after_fetches = 0);
  void AssignAll();

  // State: the persisted entries of a task (the processor's keys), and the processor itself.
  std::map<std::string, std::string> State(const std::string& subtopology, int32_t partition);
  template <typename P>
  P* processor(const std::string& subtopology, int32_t partition) {
    return runtime_ ? dynamic_cast<P*>(runtime_->ProcessorForTest(subtopology, partition))
                    : nullptr;
  }
  // Committed offsets of the group.
  std::map<TopicPartition, int64_t> Committed();
  // The processors' committed counter by name (Topology::counters).
  uint64_t counter(const std::string& name);

  // Store faults: the next `n` writes fail with `status`; the next open reports DATA_LOSS.
  void FailStoreWrites(absl::Status status, int n = 1);
  void CorruptStoreAtNextOpen() { corrupt_at_open_ = true; }
  // Tests: every commit calls this first (see RuntimeOptions::commit_hook_for_test).
  void SetCommitHook(std::function<absl::Status(uint64_t)> hook) { commit_hook_ = std::move(hook); }
  void SetOnCommitted(std::function<void(const std::vector<Output>&)> f) {
    on_committed_ = std::move(f);
  }

  MemoryBroker& broker() { return broker_; }
  ManualClock& clock() { return clock_; }
  KvStore& store();  // the persistent local store (survives Crash unless wiped)
  Runtime* runtime() { return runtime_.get(); }  // null when stopped
  const Topology& topology() const { return topology_; }
  std::string group() const;

 private:
  class Store;
  MakeTopology make_;
  DriverOptions options_;
  ManualClock clock_;
  MemoryBroker broker_;
  std::unique_ptr<KafkaIo> io_;
  std::unique_ptr<MemoryKvStore> data_;
  std::unique_ptr<Runtime> runtime_;
  Topology topology_;
  std::map<std::string, size_t> read_positions_;  // per output topic: records returned
  bool corrupt_at_open_ = false;
  absl::Status write_failure_;
  int write_failures_left_ = 0;
  std::function<absl::Status(uint64_t)> commit_hook_;
  std::function<void(const std::vector<Output>&)> on_committed_;
};

}  // namespace cybersyn::stream

#endif  // CYBERSYN_STREAM_TEST_DRIVER_H_
