// Alerter: the exactly-once processor that turns closed windows into algedonic signals.
//
// A consumer group member on <prefix>.aggregates (WindowAggregate, keyed by node path) and
// <prefix>.commands (Command, keyed by the signal's origin node). Both topics have the same
// partition count and the group uses the range assignor, so partition p of both topics belongs
// to one instance: the owner of a series also owns the commands for its signals. Per partition
// it keeps the detectors of its series, a SignalBook of open signals (with their deadlines, the
// timers) and the command ids already applied.
//
// Per batch, in ONE Kafka transaction: SignalEvents to <prefix>.signals (keyed by origin node),
// the changed state to the compacted <prefix>.alerter-changelog (partition p = state of input
// partition p; keys "d/<series>", "s/<signal id>", "c/<command id>"; null value = deleted) and
// the consumed offsets; commit; then the same changes go to RocksDB in one WriteBatch together
// with the next changelog offset. On assignment a partition is restored from RocksDB plus the
// changelog tail (read_committed) from the recorded offset. A crash anywhere leaves Kafka
// authoritative: nothing lost, nothing published twice. A failed transaction stops the alerter
// (status() says why); the restart recovers (crash-only).
//
// Timers: the loop calls SignalBook::Tick(clock->Now()) every poll interval, so an escalation
// deadline that passed while the process was down fires at the first tick after restore, and is
// published once (in a transaction with its state change).
//
// Thread-safety: Start/Stop from one thread; stats() from any.
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
#include "common/clock.h"
#include "common/config.h"
#include "common/kafka_admin.h"
#include "common/kafka_error.h"
#include "cybersyn/v1/signal.pb.h"
#include "prometheus/registry.h"

namespace cybersyn::alerter {

// Sees what the alerter committed (e.g. the Alertmanager bridge). Called on the alerter's loop
// thread: implementations must return quickly (record, do I/O elsewhere).
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
  absl::Duration poll_interval = absl::Milliseconds(100);
  SignalObserver* observer = nullptr;  // not owned; outlives the Alerter; null: none
  // Called once, with true, when the first partition assignment has been restored (the /readyz
  // signal: before that the instance would answer from incomplete state). Loop thread.
  std::function<void(bool)> on_ready;
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
  Stats stats() const;

  class Impl;

 private:
  explicit Alerter(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Maps a window's value departure to a reward: step and slope shifts in the favourable direction
// of the indicator are rewards. The favourable direction is "up" for Beer's triple (actuality,
// capability, potentiality) and the derived indices (productivity, latency, performance): more
// output / capacity / index is better. Other indicators (energy, absenteeism, ...) have no
// favourable direction: every shift is an alert. Returns +1 (up), -1 (down) or 0 (none).
int FavourableDirection(const IndicatorConfig* indicator, const std::string& indicator_name);

}  // namespace cybersyn::alerter

#endif  // CYBERSYN_ALERTER_ALERTER_H_
