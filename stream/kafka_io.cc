#include "stream/kafka_io.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status.h"

namespace cybersyn::stream {
namespace {

class KafkaInput : public InputConsumer {
 public:
  explicit KafkaInput(std::unique_ptr<KafkaConsumer> c) : c_(std::move(c)) {}
  absl::Status Subscribe(const std::vector<std::string>& topics) override {
    return c_->Subscribe(topics);
  }
  absl::StatusOr<std::vector<ConsumedMessage>> ConsumeBatch(size_t max_messages,
                                                            absl::Duration timeout) override {
    return c_->ConsumeBatch(max_messages, timeout);
  }
  absl::StatusOr<std::vector<TopicPartitionOffset>> Committed(
      const std::vector<TopicPartitionOffset>& partitions, absl::Duration timeout) override {
    return c_->Committed(partitions, timeout);
  }
  absl::Status Seek(const TopicPartitionOffset& position, absl::Duration timeout) override {
    return c_->Seek(position, timeout);
  }
  std::pair<int64_t, int64_t> CachedWatermarks(const std::string& topic,
                                               int32_t partition) override {
    return c_->CachedWatermarks(topic, partition);
  }
  absl::Status CommitOffsets(const std::vector<TopicPartitionOffset>& offsets) override {
    return c_->Commit(offsets);
  }
  absl::Status Close() override { return c_->Close(); }
  KafkaConsumer& consumer() { return *c_; }

 private:
  std::unique_ptr<KafkaConsumer> c_;
};

class KafkaChangelogReader : public ChangelogReader {
 public:
  explicit KafkaChangelogReader(std::unique_ptr<KafkaConsumer> c) : c_(std::move(c)) {}
  absl::Status Assign(const std::vector<TopicPartitionOffset>& partitions) override {
    return c_->Assign(partitions);
  }
  absl::StatusOr<std::vector<ConsumedMessage>> Read(
      size_t max_messages, absl::Duration timeout,
      std::vector<TopicPartitionOffset>* ended) override {
    return c_->ConsumeBatch(max_messages, timeout, ended);
  }
  absl::StatusOr<std::pair<int64_t, int64_t>> Watermarks(const std::string& topic,
                                                         int32_t partition,
                                                         absl::Duration timeout) override {
    return c_->Watermarks(topic, partition, timeout);
  }

 private:
  std::unique_ptr<KafkaConsumer> c_;
};

class KafkaOutput : public OutputProducer {
 public:
  explicit KafkaOutput(std::unique_ptr<KafkaProducer> p) : p_(std::move(p)) {}
  absl::Status InitTransactions(absl::Duration timeout) override {
    return p_->InitTransactions(timeout);
  }
  absl::Status BeginTransaction() override { return p_->BeginTransaction(); }
  absl::Status Produce(absl::string_view topic, int32_t partition, absl::string_view key,
                       absl::string_view value, const KafkaHeaders& headers,
                       absl::Duration block_for) override {
    return p_->Produce(topic, partition, key, value, headers, nullptr, block_for);
  }
  absl::Status SendOffsetsToTransaction(const std::vector<TopicPartitionOffset>& offsets,
                                        InputConsumer& consumer, absl::Duration timeout) override {
    // The runtime pairs a KafkaOutput with a KafkaInput of the same KafkaIo.
    auto meta = static_cast<KafkaInput&>(consumer).consumer().GroupMetadata();
    return p_->SendOffsetsToTransaction(offsets, *meta, timeout);
  }
  absl::Status CommitTransaction(absl::Duration timeout) override {
    return p_->CommitTransaction(timeout);
  }
  absl::Status AbortTransaction(absl::Duration timeout) override {
    return p_->AbortTransaction(timeout);
  }
  absl::Status Flush(absl::Duration timeout) override { return p_->Flush(timeout); }
  void Poll() override { p_->Poll(absl::ZeroDuration()); }
  absl::Status FatalError() override { return p_->FatalError(); }
  void Purge() override { p_->Purge(); }

 private:
  std::unique_ptr<KafkaProducer> p_;
};

class RealKafkaIo : public KafkaIo {
 public:
  RealKafkaIo(KafkaClientOptions client, TopicEnsurer ensure)
      : client_(std::move(client)), ensure_(std::move(ensure)) {}

  absl::StatusOr<std::unique_ptr<InputConsumer>> CreateConsumer(
      const ConsumerSettings& s) override {
    ConsumerOptions co;
    co.client = client_;
    co.group_id = s.group_id;
    co.read_committed = true;
    co.listener = s.listener;
    co.overrides = s.overrides;
    co.paired_topics = s.paired_topics;
    if (!s.group_instance_id.empty()) {
      co.overrides.emplace("group.instance.id", s.group_instance_id);
    }
    ASSIGN_OR_RETURN(auto c, KafkaConsumer::Create(co));
    return std::unique_ptr<InputConsumer>(new KafkaInput(std::move(c)));
  }

  absl::StatusOr<std::unique_ptr<ChangelogReader>> CreateChangelogReader() override {
    ConsumerOptions co;
    co.client = client_;
    co.read_committed = true;
    // EOF marks the end of a restore; a short fetch wait, so that reaching the end of a log
    // that is already at its end costs a round trip, not fetch.wait.max.ms.
    co.overrides = {{"enable.partition.eof", "true"},
                    {"fetch.max.bytes", std::to_string(64 << 20)},
                    {"fetch.wait.max.ms", "10"}};
    ASSIGN_OR_RETURN(auto c, KafkaConsumer::Create(co));
    return std::unique_ptr<ChangelogReader>(new KafkaChangelogReader(std::move(c)));
  }

  absl::StatusOr<std::unique_ptr<OutputProducer>> CreateProducer(
      const ProducerSettings& s) override {
    ProducerOptions po;
    po.client = client_;
    po.transactional_id = s.transactional_id;
    po.overrides = s.overrides;
    po.on_delivery = s.on_delivery;
    ASSIGN_OR_RETURN(auto p, KafkaProducer::Create(std::move(po)));
    return std::unique_ptr<OutputProducer>(new KafkaOutput(std::move(p)));
  }

  absl::Status EnsureTopics(const std::vector<TopicSpec>& specs) override {
    if (ensure_) return ensure_(specs);
    return cybersyn::EnsureTopics(client_, specs);
  }

  absl::StatusOr<int> PartitionCount(const std::string& topic) override {
    ASSIGN_OR_RETURN(ClusterInfo info, DescribeCluster(client_));
    auto it = info.topics.find(topic);
    if (it == info.topics.end()) return absl::NotFoundError(absl::StrCat("no topic ", topic));
    return it->second;
  }

 private:
  KafkaClientOptions client_;
  TopicEnsurer ensure_;
};

}  // namespace

std::unique_ptr<KafkaIo> NewKafkaIo(KafkaClientOptions client, TopicEnsurer ensure_topics) {
  return std::make_unique<RealKafkaIo>(std::move(client), std::move(ensure_topics));
}

}  // namespace cybersyn::stream
