// The Kafka the stream runtime needs, as narrow interfaces: a group consumer of the inputs, a
// changelog reader for restores, a transactional producer, and topic administration. Two
// implementations: Kafka through librdkafka (kafka_io.h) and an in-memory broker for the
// broker-free test driver (memory_broker.h). The runtime never touches librdkafka itself.
//
// Semantics every implementation keeps (they are what exactly-once rests on):
// - The consumer reads read_committed, and its RebalanceListener is called inside ConsumeBatch,
//   on the consuming thread (as librdkafka does), possibly after part of the batch was fetched.
//   Rebalancing is cooperative (cooperative-sticky, unless the overrides ask for "range"): a
//   member is told only about the partitions it gains and those it gives up; the group assigns
//   the subscribed topics, and each paired topic's partition p follows partition p of them.
// - Committed() waits for nothing: a partition whose offsets are still pending in an open
//   transaction fails the call with UNAVAILABLE (require_stable), and the caller asks again.
// - The changelog reader reports a partition as ended once its read_committed position reached
//   the end of the log (partition EOF): every committed transaction up to then was read.
// - Producing inside a transaction makes nothing visible until CommitTransaction; the offsets
//   sent with SendOffsetsToTransaction commit with it, fenced by the consumer's group generation.
//
// Thread-safety: each object is used by one thread at a time (the producer may be handed from
// the runtime's loop to its committer thread and back). Delivery reports arrive on the thread
// that calls Poll/Flush/CommitTransaction.
#ifndef CYBERSYN_STREAM_IO_H_
#define CYBERSYN_STREAM_IO_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/kafka_admin.h"
#include "common/kafka_consumer.h"
#include "common/kafka_producer.h"

namespace cybersyn::stream {

// Offset meaning "from the log start" (librdkafka's OFFSET_BEGINNING).
inline constexpr int64_t kOffsetBeginning = -2;
// Offset meaning "none" (no committed offset; librdkafka's OFFSET_INVALID).
inline constexpr int64_t kOffsetInvalid = -1001;

struct ConsumerSettings {
  std::string group_id;
  // Static membership (group.instance.id); empty: dynamic.
  std::string group_instance_id;
  std::map<std::string, std::string> overrides;  // librdkafka properties
  RebalanceListener* listener = nullptr;         // not owned; outlives the consumer
  // Partition p of these goes (is assigned and revoked) with partition p of a subscribed topic:
  // co-partitioning under a cooperative protocol (common/kafka_consumer.h).
  std::vector<std::string> paired_topics;
};

struct ProducerSettings {
  std::string transactional_id;  // empty: idempotent, not transactional
  std::map<std::string, std::string> overrides;
  std::function<void(const DeliveryReport&)> on_delivery;
};

class InputConsumer {
 public:
  virtual ~InputConsumer() = default;
  virtual absl::Status Subscribe(const std::vector<std::string>& topics) = 0;
  // Up to `max_messages`, waiting at most `timeout` for the first.
  virtual absl::StatusOr<std::vector<ConsumedMessage>> ConsumeBatch(size_t max_messages,
                                                                    absl::Duration timeout) = 0;
  // The group's committed offsets (kOffsetInvalid: none); UNAVAILABLE while one is pending.
  virtual absl::StatusOr<std::vector<TopicPartitionOffset>> Committed(
      const std::vector<TopicPartitionOffset>& partitions, absl::Duration timeout) = 0;
  // Moves the position of an assigned partition (kOffsetBeginning: the log start).
  virtual absl::Status Seek(const TopicPartitionOffset& position, absl::Duration timeout) = 0;
  // The log start and (last stable) end offset the last fetch saw, -1 when not known yet. No
  // round trip.
  virtual std::pair<int64_t, int64_t> CachedWatermarks(const std::string& topic,
                                                       int32_t partition) = 0;
  // At-least-once only: commits offsets outside any transaction.
  virtual absl::Status CommitOffsets(const std::vector<TopicPartitionOffset>& offsets) = 0;
  // Leaves the group (revoking what it owns, inside this call).
  virtual absl::Status Close() = 0;
};

class ChangelogReader {
 public:
  virtual ~ChangelogReader() = default;
  // Replaces the assignment (an empty list unassigns).
  virtual absl::Status Assign(const std::vector<TopicPartitionOffset>& partitions) = 0;
  // Up to `max_messages` of the assigned partitions, waiting at most `timeout`; partitions that
  // reached their end are appended to `ended` (once per reaching it).
  virtual absl::StatusOr<std::vector<ConsumedMessage>> Read(
      size_t max_messages, absl::Duration timeout, std::vector<TopicPartitionOffset>* ended) = 0;
  // Low and high watermark of a partition, asking the broker.
  virtual absl::StatusOr<std::pair<int64_t, int64_t>> Watermarks(const std::string& topic,
                                                                 int32_t partition,
                                                                 absl::Duration timeout) = 0;
};

class OutputProducer {
 public:
  virtual ~OutputProducer() = default;
  virtual absl::Status InitTransactions(absl::Duration timeout) = 0;
  virtual absl::Status BeginTransaction() = 0;
  // Enqueues a copy; partition -1: by key. Blocks up to `block_for` while the queue is full.
  virtual absl::Status Produce(absl::string_view topic, int32_t partition, absl::string_view key,
                               absl::string_view value, const KafkaHeaders& headers,
                               absl::Duration block_for) = 0;
  virtual absl::Status SendOffsetsToTransaction(const std::vector<TopicPartitionOffset>& offsets,
                                                InputConsumer& consumer,
                                                absl::Duration timeout) = 0;
  virtual absl::Status CommitTransaction(absl::Duration timeout) = 0;
  virtual absl::Status AbortTransaction(absl::Duration timeout) = 0;
  virtual absl::Status Flush(absl::Duration timeout) = 0;
  virtual void Poll() = 0;
  // OK, or why the producer can no longer be used (fenced, fatal): replace it.
  virtual absl::Status FatalError() = 0;
  // Drops what is queued or in flight.
  virtual void Purge() = 0;
};

// Creates the clients of one runtime.
class KafkaIo {
 public:
  virtual ~KafkaIo() = default;
  virtual absl::StatusOr<std::unique_ptr<InputConsumer>> CreateConsumer(
      const ConsumerSettings& settings) = 0;
  virtual absl::StatusOr<std::unique_ptr<ChangelogReader>> CreateChangelogReader() = 0;
  virtual absl::StatusOr<std::unique_ptr<OutputProducer>> CreateProducer(
      const ProducerSettings& settings) = 0;
  // Creates the topics that do not exist yet.
  virtual absl::Status EnsureTopics(const std::vector<TopicSpec>& specs) = 0;
  // Partition count of an existing topic; NOT_FOUND when it does not exist.
  virtual absl::StatusOr<int> PartitionCount(const std::string& topic) = 0;
};

}  // namespace cybersyn::stream

#endif  // CYBERSYN_STREAM_IO_H_
