// KafkaProducer: an owning wrapper around librdkafka's producer with delivery reports,
// backpressure instead of drops, and the transactional API.
//
// Delivery reports are delivered from Poll()/Flush() on the calling thread. The report callback
// is owned by the wrapper and outlives the librdkafka handle (style.md "Kafka loop discipline").
// Thread-safety: Produce/Poll may be called from any thread; transactional calls from one
// thread at a time.
#ifndef CYBERSYN_COMMON_KAFKA_PRODUCER_H_
#define CYBERSYN_COMMON_KAFKA_PRODUCER_H_

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
#include "common/kafka_consumer.h"
#include "common/kafka_error.h"
#include "common/kafka_stats.h"
#include "librdkafka/rdkafkacpp.h"

namespace cybersyn {

// What the broker said about one produced message.
struct DeliveryReport {
  absl::Status status;  // OK once the broker acknowledged it (acks=all)
  std::string topic;
  int32_t partition = -1;
  int64_t offset = -1;
  void* opaque = nullptr;                            // as passed to Produce
  RdKafka::ErrorCode error = RdKafka::ERR_NO_ERROR;  // librdkafka's code behind `status`
};

struct ProducerOptions {
  KafkaClientOptions client;
  // Idempotent (acks=all, enable.idempotence) unless false. Transactional when non-empty.
  bool idempotent = true;
  std::string transactional_id;
  // Extra librdkafka properties for this producer (win over client.properties).
  std::map<std::string, std::string> overrides;
  std::function<void(const DeliveryReport&)> on_delivery;  // may be empty
};

using KafkaHeaders = std::vector<std::pair<std::string, std::string>>;

class KafkaProducer {
 public:
  static absl::StatusOr<std::unique_ptr<KafkaProducer>> Create(ProducerOptions options);
  ~KafkaProducer();  // Flushes for up to 10 s, then drops what is left (with a log line).

  KafkaProducer(const KafkaProducer&) = delete;
  KafkaProducer& operator=(const KafkaProducer&) = delete;

  // Enqueues one message (copied). partition -1 = partition by key (librdkafka's default,
  // murmur2-compatible with the Java client). When the local queue is full this polls and
  // retries until `block_for` has passed, then returns RESOURCE_EXHAUSTED: callers apply
  // backpressure; nothing is dropped silently.
  absl::Status Produce(absl::string_view topic, int32_t partition, absl::string_view key,
                       absl::string_view value, const KafkaHeaders& headers = {},
                       void* opaque = nullptr, absl::Duration block_for = absl::Seconds(30));

  // Serves delivery reports; returns how many events were served.
  int Poll(absl::Duration timeout);
  // Waits until every message is delivered or failed (reports served) or the timeout passed.
  absl::Status Flush(absl::Duration timeout);
  // Messages not yet acknowledged (in librdkafka's queue or in flight).
  int OutstandingMessages() const;

  // Transactions (REQUIRES: transactional_id was set).
  absl::Status InitTransactions(absl::Duration timeout);
  absl::Status BeginTransaction();
  // Adds the consumer's positions `offsets` (next offsets to read) to the open transaction.
  absl::Status SendOffsetsToTransaction(const std::vector<RdKafka::TopicPartition*>& offsets,
                                        RdKafka::KafkaConsumer* consumer, absl::Duration timeout);
  // Same, with the group generation `group` (KafkaConsumer::GroupMetadata()).
  absl::Status SendOffsetsToTransaction(const std::vector<TopicPartitionOffset>& offsets,
                                        const RdKafka::ConsumerGroupMetadata& group,
                                        absl::Duration timeout);
  absl::Status CommitTransaction(absl::Duration timeout);
  absl::Status AbortTransaction(absl::Duration timeout);

  // OK, or the producer's fatal error (e.g. fenced by a newer producer with its
  // transactional.id): a fatal producer must be replaced.
  absl::Status FatalError();
  // Drops every message still queued or in flight (their reports fail with PURGE_*), e.g.
  // before replacing a failed producer.
  void Purge();

  RdKafka::Producer* raw() { return producer_.get(); }
  const std::string& name() const { return name_; }

 private:
  class ReportCb : public RdKafka::DeliveryReportCb {
   public:
    explicit ReportCb(std::function<void(const DeliveryReport&)> fn) : fn_(std::move(fn)) {}
    void dr_cb(RdKafka::Message& message) override;

   private:
    std::function<void(const DeliveryReport&)> fn_;
  };

  KafkaProducer() = default;

  // Declared before producer_ so that they are destroyed after it.
  std::unique_ptr<ReportCb> report_cb_;
  std::unique_ptr<KafkaStats::Client> stats_cb_;
  std::unique_ptr<RdKafka::Producer> producer_;
  std::string name_;
};

}  // namespace cybersyn

#endif  // CYBERSYN_COMMON_KAFKA_PRODUCER_H_
