// Alerter: the `cybersyn alerter` processor that turns closed windows into algedonic signals.
//
// A consumer group member on <prefix>.aggregates and <prefix>.commands, co-partitioned (range
// assignment, equal partition counts). What it computes is alerter/topology.h (detectors, the
// SignalBook of open signals with their deadlines, applied commands, per partition); how it runs
// is the stream runtime's (stream/runtime.h): per batch, in ONE Kafka transaction, SignalEvents
// to <prefix>.signals, the changed state (dirty entries only, alerter_state.h) to the compacted
// <prefix>.alerter-changelog, dead letters, and the consumed offsets; then the same changes to
// RocksDB with the changelog offset. Commits overlap with processing the next batch. Restore on
// assignment, revoke cleanup, rewind after a failed transaction, corrupt state rebuilt from the
// changelog: the runtime's. A persistent failure stops the alerter (status() says why); the
// supervisor (AlerterService::RestartProcessor, or a process restart) recovers from Kafka.
//
// Timers: every batch ends by ticking each partition's SignalBook with clock->Now(), at least
// every max_batch_time, so an escalation deadline that passed while the process was down fires
// at the first batch after restore, and is published once (in a transaction with its state).
//
// Upgrade from the version before the runtime: its local store layout is not read (deleted at
// open); every partition is restored from the changelog, whose older encodings are read and
// rewritten in the current one at the next commit (alerter_state.h, docs/stream.md).
//
// Thread-safety: Start/Stop from one thread; stats() and status() from any.
#ifndef CYBERSYN_ALERTER_ALERTER_H_
#define CYBERSYN_ALERTER_ALERTER_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "alerter/topology.h"
#include "common/clock.h"
#include "common/config.h"
#include "common/kafka_admin.h"
#include "common/kafka_error.h"
#include "cybersyn/v1/signal.pb.h"
#include "prometheus/registry.h"

namespace cybersyn::alerter {

struct AlerterOptions {
  std::shared_ptr<const Config> config;  // required
  KafkaClientOptions client;             // bootstrap + librdkafka properties
  std::string state_dir;                 // RocksDB directory; empty: config.alerter.state_dir
  Clock* clock = Clock::Real();          // not owned; outlives the Alerter
  // Stable per instance: the transactional.id is "<prefix>.alerter-<instance_id>", so a restarted
  // instance fences its previous incarnation.
  std::string instance_id = "0";
  std::shared_ptr<prometheus::Registry> registry;  // null: metrics are not exported
  TopicEnsurer ensure_topics;  // empty: EnsureTopics(client, DeploymentTopics(...))
  bool attribution = true;     // false: every series raises on its own (AlerterTopologyOptions)
  // Batches (see stream::RuntimeOptions): large enough to write each busy series once per
  // commit, closed early when the input is quiet, so a window reaches the watchers quickly.
  size_t max_batch_messages = 200000;
  absl::Duration max_batch_time = absl::Milliseconds(500);
  absl::Duration commit_when_quiet_for = absl::Milliseconds(10);
  absl::Duration min_batch_time = absl::Milliseconds(20);
  int processing_threads = 2;          // lanes: partitions processed in parallel
  SignalObserver* observer = nullptr;  // not owned; outlives the Alerter; null: none
  // Called once, with true, when the first partition assignment has been restored (the /readyz
  // signal: before that the instance would answer from incomplete state). Loop thread.
  std::function<void(bool)> on_ready;
  // Tests: see stream::RuntimeOptions::commit_hook_for_test.
  std::function<absl::Status(uint64_t)> commit_hook_for_test;
};

class Alerter {
 public:
  struct Stats {
    uint64_t aggregates = 0;  // applied (not duplicates)
    uint64_t duplicates = 0;  // windows at or before the last seen window of their series
    uint64_t commands = 0;    // applied
    uint64_t rejected_commands = 0;
    uint64_t events = 0;  // SignalEvents published
    uint64_t transactions = 0;
    uint64_t restores = 0;  // partitions restored
    uint64_t rewinds = 0;   // failed transactions retried from the committed state
    uint64_t deadlettered = 0;
    uint64_t corrupt_state_entries = 0;  // local (rebuilt) and changelog (dead-lettered)
    uint64_t series = 0;
    uint64_t open_signals = 0;
  };

  static absl::StatusOr<std::unique_ptr<Alerter>> Create(AlerterOptions options);
  ~Alerter();  // Stop()

  // Creates topics, opens RocksDB, initialises transactions (fencing a previous incarnation)
  // and starts the processing thread.
  absl::Status Start();
  // Stops the thread, closes the consumer (leaving the group) and the store. Idempotent.
  void Stop();
  // OK while running; the fatal error that stopped the loop otherwise.
  absl::Status status() const;
  // True once the first partition assignment has been restored (as on_ready).
  bool ready() const;
  Stats stats() const;

  class Impl;

 private:
  explicit Alerter(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace cybersyn::alerter

#endif  // CYBERSYN_ALERTER_ALERTER_H_
