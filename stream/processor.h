// Processor: what a stateful role (the aggregator's stages, the alerter) implements to run on the
// stream runtime (runtime.h), and the Emitter it writes through. A processor owns the state of
// one task (one partition of its inputs) in memory and reports what changed; the runtime owns
// everything else: consuming, the transaction, the changelog, RocksDB, restore, revoke, rewinds.
//
// The contract, per task:
//   restore:  Load(key, value) for every persisted entry, then Init(out);
//   running:  Process(message, out) for each input message, in offset order per partition;
//             Punctuate(info, out) at the end of every batch (at least every max_batch_time);
//             TakeChanges(&changes) before each commit: only the entries changed since the last
//             call (key -> new value; an empty value deletes the key);
//   leaving:  Close(revoked).
// After a failed transaction the runtime drops the processor and builds a new one from the last
// commit (Load again), so a processor never has to undo anything.
//
// Thread-safety: Process, Punctuate and TakeChanges run on the task's processing lane, one call
// at a time; Load, Init and Close on the runtime's loop thread while the lanes are idle. A
// processor touches only its own state and the Emitter it is handed (shared things such as
// Prometheus metrics must be thread-safe).
#ifndef CYBERSYN_STREAM_PROCESSOR_H_
#define CYBERSYN_STREAM_PROCESSOR_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "common/kafka_consumer.h"
#include "common/kafka_producer.h"
#include "stream/state_change.h"

namespace cybersyn::stream {

// A record for the next transaction. `topic` indexes Topology::outputs (kDeadLetterTopic: the
// dead-letter topic).
struct Output {
  int topic = 0;
  int32_t partition = -1;  // -1: by key
  std::string key, value;
  KafkaHeaders headers;
};
inline constexpr int kDeadLetterTopic = -1;

struct PunctuateInfo {
  int64_t now_ms = 0;  // the runtime's clock
  // Every input partition of the task was read up to its end (last stable offset) when the batch
  // closed: the input is idle, not just slow.
  bool caught_up = false;
};

class RuntimeLane;

// Where a processor's outputs, dead letters and counters go. Handed to each call; valid only
// during it.
class Emitter {
 public:
  // Buffers `value` for the topic Topology::outputs[topic], in the transaction that commits the
  // input being processed.
  void Send(int topic, std::string key, std::string value, KafkaHeaders headers = {},
            int32_t partition = -1) {
    outputs_->push_back({topic, partition, std::move(key), std::move(value), std::move(headers)});
  }
  // Buffers `value` for the dead-letter topic with headers reason, source_topic,
  // source_partition, source_offset (and `extra`); counts it, by reason, in
  // cybersyn_<role>_deadletter_total.
  void DeadLetter(const ConsumedMessage& m, absl::string_view reason, std::string value,
                  KafkaHeaders extra = {});
  // Adds to the processors' counter Topology::counters[counter]. Published once the input that
  // moved it is committed.
  void Count(int counter, uint64_t n = 1) { counts_[counter] += n; }
  // The runtime's clock, read once per job (the messages handed to a lane together, or one
  // punctuation): processing time without a clock read per message.
  int64_t now_ms() const { return now_ms_; }

 private:
  friend class RuntimeLane;
  Emitter() = default;
  std::vector<Output>* outputs_ = nullptr;
  uint64_t* counts_ = nullptr;
  int64_t now_ms_ = 0;
  RuntimeLane* lane_ = nullptr;
};

class Processor {
 public:
  virtual ~Processor() = default;
  // One persisted entry (key as TakeChanges reported it), in key order, before Init. An error
  // marks the entry corrupt: the runtime rebuilds the task from the changelog; an entry that is
  // corrupt in the changelog too is dead-lettered (reason corrupt_state), tombstoned, and
  // skipped. Either way it is counted and logged.
  virtual absl::Status Load(absl::string_view key, absl::string_view value) = 0;
  // Once the restore finished, before the first Process.
  virtual void Init(Emitter& out) {}
  virtual void Process(const ConsumedMessage& message, Emitter& out) = 0;
  virtual void Punctuate(const PunctuateInfo& info, Emitter& out) = 0;
  // Moves the state changes since the last call to `out` (appends).
  virtual void TakeChanges(std::vector<StateChange>* out) = 0;
  // The task leaves this instance: revoked (another instance may own it next), or not (the
  // runtime stops, or rewinds and builds a new processor from the last commit).
  virtual void Close(bool revoked) {}
};

}  // namespace cybersyn::stream

#endif  // CYBERSYN_STREAM_PROCESSOR_H_
