// KafkaConsumer: an owning wrapper around librdkafka's KafkaConsumer for consume loops that
// commit offsets themselves (in transactions or after processing), with cooperative
// incremental rebalancing reported to a listener.
//
// Co-partitioned topics (ConsumerOptions::paired_topics): librdkafka 2.0 has no custom
// assignors, and cooperative-sticky spreads each topic on its own. So the group assigns only
// the subscribed (lead) topics, and partition p of each paired topic is assigned and revoked
// together with partition p of a lead topic, inside the same rebalance callback.
//
// Static members and cooperative rebalancing: a static member that dies between the two rounds
// of a cooperative rebalance (after giving partitions up, before rejoining) and restarts at once
// is handed its round-one assignment back without a rebalance, so the partitions it gave up
// stay unowned for good. A static cooperative member therefore rejoins once after its first
// assignment (a subscribe() while the assignment is pending makes librdkafka rejoin with its
// member id; its owned partitions changed, so the coordinator rebalances and hands out the
// orphans). Costs one rebalance per start, in which nothing moves otherwise.
//
// Thread-safety: one thread drives Consume*/Commit and receives the listener's calls (they
// happen inside Consume*). Close() before destruction to leave the group promptly.
#ifndef CYBERSYN_COMMON_KAFKA_CONSUMER_H_
#define CYBERSYN_COMMON_KAFKA_CONSUMER_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/kafka_error.h"
#include "common/kafka_stats.h"
#include "librdkafka/rdkafkacpp.h"

namespace cybersyn {

struct TopicPartitionOffset {
  std::string topic;
  int32_t partition = 0;
  int64_t offset = -1001;  // RdKafka::Topic::OFFSET_INVALID: use the committed/reset position
  bool operator==(const TopicPartitionOffset&) const = default;
};

// Told about partitions gained and lost, inside Consume* on the consuming thread.
class RebalanceListener {
 public:
  virtual ~RebalanceListener() = default;
  // Before consumption starts on `partitions`. May set offsets to start from (e.g. restore).
  virtual void OnAssigned(std::vector<TopicPartitionOffset>& partitions) = 0;
  // After `partitions` were taken away (revoked, or lost after a session timeout).
  virtual void OnRevoked(const std::vector<TopicPartitionOffset>& partitions, bool lost) = 0;
};

struct ConsumerOptions {
  KafkaClientOptions client;
  std::string group_id;        // empty: no group (use Assign)
  bool read_committed = true;  // isolation.level
  std::string auto_offset_reset = "earliest";
  std::map<std::string, std::string> overrides;
  RebalanceListener* listener = nullptr;  // not owned; must outlive the consumer
  // Co-partitioned with the subscribed topics (see the header); same partition counts.
  std::vector<std::string> paired_topics;
  // With group.instance.id and a cooperative protocol: rejoin once after the first assignment
  // (see the header). false only in tests that show the failure it prevents.
  bool static_rejoin_once = true;
};

// One consumed message; owns librdkafka's message, or (in-memory broker, tests) its own copy.
class ConsumedMessage {
 public:
  explicit ConsumedMessage(std::unique_ptr<RdKafka::Message> m) : m_(std::move(m)) {}
  // An in-memory message (stream/memory_broker.h).
  ConsumedMessage(std::string topic, int32_t partition, int64_t offset, std::string key,
                  std::string value, std::vector<std::pair<std::string, std::string>> headers = {},
                  int64_t timestamp_ms = 0);
  absl::string_view topic() const;
  int32_t partition() const { return m_ ? m_->partition() : owned_->partition; }
  int64_t offset() const { return m_ ? m_->offset() : owned_->offset; }
  absl::string_view key() const;
  absl::string_view value() const;
  int64_t timestamp_ms() const { return m_ ? m_->timestamp().timestamp : owned_->timestamp_ms; }
  // Value of the last header named `name`, or empty.
  std::string header(absl::string_view name) const;

 private:
  struct Owned {
    int32_t partition;
    int64_t offset;
    std::string key, value;
    std::vector<std::pair<std::string, std::string>> headers;
    int64_t timestamp_ms;
  };
  std::unique_ptr<RdKafka::Message> m_;
  std::unique_ptr<Owned> owned_;
  std::string topic_;  // of an in-memory message
};

class KafkaConsumer {
 public:
  static absl::StatusOr<std::unique_ptr<KafkaConsumer>> Create(const ConsumerOptions& options);
  ~KafkaConsumer();

  absl::Status Subscribe(const std::vector<std::string>& topics);
  // Manual assignment, for changelog restore and tools (no group needed).
  absl::Status Assign(const std::vector<TopicPartitionOffset>& partitions);

  // Up to `max_messages`, waiting at most `timeout` for the first. Transport-level events
  // (partition EOF, transient broker errors) are not returned; fatal errors are. With `ended`,
  // the partitions that reached their end (partition EOF, when enable.partition.eof is on) are
  // appended to it (offset: the end).
  absl::StatusOr<std::vector<ConsumedMessage>> ConsumeBatch(
      size_t max_messages, absl::Duration timeout,
      std::vector<TopicPartitionOffset>* ended = nullptr);

  // Synchronously commits `offsets` (the NEXT offset to read for each partition).
  absl::Status Commit(const std::vector<TopicPartitionOffset>& offsets);
  // The group's committed offsets of `partitions` (offset -1001 when none). A partition whose
  // commit is still pending in an open transaction fails the call (UNSTABLE_OFFSET_COMMIT, as
  // an UNAVAILABLE status): the caller waits and asks again.
  absl::StatusOr<std::vector<TopicPartitionOffset>> Committed(
      const std::vector<TopicPartitionOffset>& partitions, absl::Duration timeout);
  // Moves the fetch position of an assigned partition (offset -2: the log start).
  absl::Status Seek(const TopicPartitionOffset& position, absl::Duration timeout);
  // The log start and end offset the last fetch reported (no broker round trip), -1 when not
  // known yet. For a read_committed consumer librdkafka reports the last stable offset as end.
  std::pair<int64_t, int64_t> CachedWatermarks(const std::string& topic, int32_t partition);
  // Current positions (next offset to read) of the assigned partitions.
  absl::StatusOr<std::vector<TopicPartitionOffset>> Positions();
  absl::StatusOr<std::vector<TopicPartitionOffset>> Assignment();
  // Low and high watermarks of a partition, asking the broker.
  absl::StatusOr<std::pair<int64_t, int64_t>> Watermarks(const std::string& topic,
                                                         int32_t partition, absl::Duration timeout);
  absl::Status Close();

  // The group generation, for KafkaProducer::SendOffsetsToTransaction (KIP-447 fencing).
  std::unique_ptr<RdKafka::ConsumerGroupMetadata> GroupMetadata();

  RdKafka::KafkaConsumer* raw() { return consumer_.get(); }

 private:
  class RebalanceCb : public RdKafka::RebalanceCb {
   public:
    RebalanceCb(RebalanceListener* l, std::vector<std::string> paired, bool rejoin_once)
        : listener_(l), paired_(std::move(paired)), rejoin_once_(rejoin_once) {}
    void rebalance_cb(RdKafka::KafkaConsumer* consumer, RdKafka::ErrorCode err,
                      std::vector<RdKafka::TopicPartition*>& partitions) override;
    std::vector<std::string> subscription;  // what Subscribe was given

   private:
    RebalanceListener* listener_;
    const std::vector<std::string> paired_;
    bool rejoin_once_;  // still to do
  };

  KafkaConsumer() = default;
  std::unique_ptr<RebalanceCb> rebalance_cb_;     // outlives consumer_
  std::unique_ptr<KafkaStats::Client> stats_cb_;  // outlives consumer_
  std::unique_ptr<RdKafka::KafkaConsumer> consumer_;
  bool closed_ = false;
};

// Owned copies of librdkafka TopicPartition lists, and conversions.
std::vector<TopicPartitionOffset> ToOffsets(const std::vector<RdKafka::TopicPartition*>& tps);
class TopicPartitionList {
 public:
  explicit TopicPartitionList(const std::vector<TopicPartitionOffset>& offsets);
  ~TopicPartitionList();
  std::vector<RdKafka::TopicPartition*>& get() { return tps_; }

 private:
  std::vector<RdKafka::TopicPartition*> tps_;
};

}  // namespace cybersyn

#endif  // CYBERSYN_COMMON_KAFKA_CONSUMER_H_
