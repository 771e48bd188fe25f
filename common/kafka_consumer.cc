#include "common/kafka_consumer.h"

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/status.h"
#include "librdkafka/rdkafka.h"
#include "spdlog/spdlog.h"

namespace cybersyn {

std::vector<TopicPartitionOffset> ToOffsets(const std::vector<RdKafka::TopicPartition*>& tps) {
  std::vector<TopicPartitionOffset> out;
  out.reserve(tps.size());
  for (const auto* tp : tps) out.push_back({tp->topic(), tp->partition(), tp->offset()});
  return out;
}

TopicPartitionList::TopicPartitionList(const std::vector<TopicPartitionOffset>& offsets) {
  tps_.reserve(offsets.size());
  for (const auto& o : offsets) {
    tps_.push_back(RdKafka::TopicPartition::create(o.topic, o.partition, o.offset));
  }
}

TopicPartitionList::~TopicPartitionList() { RdKafka::TopicPartition::destroy(tps_); }

ConsumedMessage::ConsumedMessage(std::string topic, int32_t partition, int64_t offset,
                                 std::string key, std::string value,
                                 std::vector<std::pair<std::string, std::string>> headers,
                                 int64_t timestamp_ms)
    : owned_(new Owned{partition, offset, std::move(key), std::move(value), std::move(headers),
                       timestamp_ms}),
      topic_(std::move(topic)) {}

absl::string_view ConsumedMessage::topic() const {
  if (!m_) return topic_;
  // The C handle's name, not MessageImpl::topic_name(): that builds a std::string per call,
  // an allocation per consumed message in the roles' hot loops.
  const rd_kafka_message_t* c = m_->c_ptr();
  const char* name = c->rkt != nullptr ? rd_kafka_topic_name(c->rkt) : nullptr;
  return name != nullptr ? absl::string_view(name) : absl::string_view();
}

absl::string_view ConsumedMessage::key() const {
  if (!m_) return owned_->key;
  const std::string* k = m_->key();
  return k ? absl::string_view(*k) : absl::string_view();
}

absl::string_view ConsumedMessage::value() const {
  if (!m_) return owned_->value;
  return absl::string_view(static_cast<const char*>(m_->payload()), m_->len());
}

std::string ConsumedMessage::header(absl::string_view name) const {
  if (!m_) {
    for (auto it = owned_->headers.rbegin(); it != owned_->headers.rend(); ++it) {
      if (it->first == name) return it->second;
    }
    return "";
  }
  RdKafka::Headers* h = m_->headers();
  if (h == nullptr) return "";
  RdKafka::Headers::Header last = h->get_last(std::string(name));
  if (last.err() != RdKafka::ERR_NO_ERROR || last.value() == nullptr) return "";
  return std::string(static_cast<const char*>(last.value()), last.value_size());
}

void KafkaConsumer::RebalanceCb::rebalance_cb(RdKafka::KafkaConsumer* consumer,
                                              RdKafka::ErrorCode err,
                                              std::vector<RdKafka::TopicPartition*>& partitions) {
  const bool cooperative = consumer->rebalance_protocol() == "COOPERATIVE";
  // The group's partitions, then partition p of every paired topic for each of them.
  std::vector<TopicPartitionOffset> offsets = ToOffsets(partitions);
  const size_t from_group = offsets.size();
  for (size_t i = 0; i < from_group; ++i) {
    const int32_t p = offsets[i].partition;
    for (const std::string& t : paired_) offsets.push_back({t, p});
  }
  if (err == RdKafka::ERR__ASSIGN_PARTITIONS) {
    if (listener_ != nullptr) listener_->OnAssigned(offsets);
    TopicPartitionList list(offsets);
    if (cooperative && rejoin_once_ && !subscription.empty()) {
      rejoin_once_ = false;
      // Postponed by librdkafka until this assignment is applied, then a rejoin (see header).
      spdlog::info(
          "static group member: rejoining once after the first assignment, so that "
          "partitions a killed predecessor gave up mid-rebalance are assigned");
      if (RdKafka::ErrorCode e = consumer->subscribe(subscription); e != RdKafka::ERR_NO_ERROR) {
        spdlog::error("subscribe (rejoin after the first assignment): {}", RdKafka::err2str(e));
      }
    }
    if (cooperative) {
      if (RdKafka::Error* e = consumer->incremental_assign(list.get())) {
        spdlog::error("incremental_assign: {}", e->str());
        delete e;
      }
    } else {
      consumer->assign(list.get());
    }
  } else {
    if (listener_ != nullptr) listener_->OnRevoked(offsets, consumer->assignment_lost());
    if (cooperative) {
      TopicPartitionList list(offsets);
      if (RdKafka::Error* e = consumer->incremental_unassign(list.get())) {
        spdlog::error("incremental_unassign: {}", e->str());
        delete e;
      }
    } else {
      consumer->unassign();
    }
  }
}

absl::StatusOr<std::unique_ptr<KafkaConsumer>> KafkaConsumer::Create(
    const ConsumerOptions& options) {
  std::unique_ptr<KafkaConsumer> c(new KafkaConsumer());
  std::unique_ptr<RdKafka::Conf> conf(RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL));
  std::map<std::string, std::string> overrides = options.overrides;
  overrides.emplace("enable.auto.commit", "false");
  overrides.emplace("enable.auto.offset.store", "false");
  overrides.emplace("enable.partition.eof", "false");
  overrides.emplace("auto.offset.reset", options.auto_offset_reset);
  overrides.emplace("isolation.level",
                    options.read_committed ? "read_committed" : "read_uncommitted");
  // Without a group librdkafka still wants a group.id for the KafkaConsumer class.
  overrides.emplace("group.id",
                    options.group_id.empty() ? "cybersyn-unused-group" : options.group_id);
  if (!options.group_id.empty()) {
    overrides.emplace("partition.assignment.strategy", "cooperative-sticky");
  }
  KafkaStats::AddDefaults(options.client, &overrides);
  if (absl::Status s =
          BuildKafkaConf(options.client, KafkaClientKind::kConsumer, overrides, conf.get());
      !s.ok())
    return s;
  std::string err;
  const bool is_static = overrides.contains("group.instance.id");
  c->rebalance_cb_ = std::make_unique<RebalanceCb>(options.listener, options.paired_topics,
                                                   is_static && options.static_rejoin_once);
  if (conf->set("rebalance_cb", c->rebalance_cb_.get(), err) != RdKafka::Conf::CONF_OK) {
    return absl::InternalError(absl::StrCat("setting rebalance callback: ", err));
  }
  ASSIGN_OR_RETURN(c->stats_cb_, KafkaStats::Attach(options.client, conf.get()));
  c->consumer_.reset(RdKafka::KafkaConsumer::create(conf.get(), err));
  if (!c->consumer_) return absl::InvalidArgumentError(absl::StrCat("creating consumer: ", err));
  return c;
}

KafkaConsumer::~KafkaConsumer() {
  if (consumer_ && !closed_) consumer_->close();
}

absl::Status KafkaConsumer::Subscribe(const std::vector<std::string>& topics) {
  rebalance_cb_->subscription = topics;
  return KafkaStatus(consumer_->subscribe(topics), "subscribe");
}

absl::Status KafkaConsumer::Assign(const std::vector<TopicPartitionOffset>& partitions) {
  TopicPartitionList list(partitions);
  return KafkaStatus(consumer_->assign(list.get()), "assign");
}

absl::StatusOr<std::vector<ConsumedMessage>> KafkaConsumer::ConsumeBatch(
    size_t max_messages, absl::Duration timeout, std::vector<TopicPartitionOffset>* ended) {
  std::vector<ConsumedMessage> out;
  const absl::Time deadline = absl::Now() + timeout;
  int wait_ms = static_cast<int>(absl::ToInt64Milliseconds(timeout));
  while (out.size() < max_messages) {
    std::unique_ptr<RdKafka::Message> m(consumer_->consume(wait_ms));
    switch (m->err()) {
      case RdKafka::ERR_NO_ERROR:
        out.emplace_back(std::move(m));
        wait_ms = 0;  // once something arrived, only take what is already here
        continue;
      case RdKafka::ERR__PARTITION_EOF:
        if (ended != nullptr) {
          ended->push_back({m->topic_name(), m->partition(), m->offset()});
          wait_ms = 0;
          continue;  // (more may be here already; the caller waits for the rest)
        }
        break;
      case RdKafka::ERR__TIMED_OUT:
        break;
      default:
        if (m->err() == RdKafka::ERR__FATAL) {
          return KafkaStatus(m->err(), absl::StrCat("consume: ", m->errstr()));
        }
        spdlog::warn("consume: {}", m->errstr());
        break;
    }
    if (!out.empty() || (ended != nullptr && !ended->empty()) || absl::Now() >= deadline) break;
    wait_ms =
        static_cast<int>(std::max<int64_t>(0, absl::ToInt64Milliseconds(deadline - absl::Now())));
    if (wait_ms == 0) break;
  }
  return out;
}

absl::Status KafkaConsumer::Commit(const std::vector<TopicPartitionOffset>& offsets) {
  TopicPartitionList list(offsets);
  return KafkaStatus(consumer_->commitSync(list.get()), "commit offsets");
}

absl::StatusOr<std::vector<TopicPartitionOffset>> KafkaConsumer::Committed(
    const std::vector<TopicPartitionOffset>& partitions, absl::Duration timeout) {
  TopicPartitionList list(partitions);
  RdKafka::ErrorCode code =
      consumer_->committed(list.get(), static_cast<int>(absl::ToInt64Milliseconds(timeout)));
  for (const RdKafka::TopicPartition* tp : list.get()) {
    if (code == RdKafka::ERR_NO_ERROR) code = tp->err();  // e.g. UNSTABLE_OFFSET_COMMIT
  }
  if (code != RdKafka::ERR_NO_ERROR) return KafkaStatus(code, "reading committed offsets");
  return ToOffsets(list.get());
}

absl::Status KafkaConsumer::Seek(const TopicPartitionOffset& position, absl::Duration timeout) {
  std::unique_ptr<RdKafka::TopicPartition> tp(
      RdKafka::TopicPartition::create(position.topic, position.partition, position.offset));
  return KafkaStatus(consumer_->seek(*tp, static_cast<int>(absl::ToInt64Milliseconds(timeout))),
                     absl::StrCat("seeking ", position.topic, "[", position.partition, "]"));
}

std::pair<int64_t, int64_t> KafkaConsumer::CachedWatermarks(const std::string& topic,
                                                            int32_t partition) {
  int64_t lo = -1, hi = -1;
  if (consumer_->get_watermark_offsets(topic, partition, &lo, &hi) != RdKafka::ERR_NO_ERROR) {
    return {-1, -1};
  }
  return {lo, hi};
}

std::unique_ptr<RdKafka::ConsumerGroupMetadata> KafkaConsumer::GroupMetadata() {
  return std::unique_ptr<RdKafka::ConsumerGroupMetadata>(consumer_->groupMetadata());
}

absl::StatusOr<std::vector<TopicPartitionOffset>> KafkaConsumer::Assignment() {
  std::vector<RdKafka::TopicPartition*> tps;
  RdKafka::ErrorCode code = consumer_->assignment(tps);
  std::vector<TopicPartitionOffset> out = ToOffsets(tps);
  RdKafka::TopicPartition::destroy(tps);
  if (code != RdKafka::ERR_NO_ERROR) return KafkaStatus(code, "assignment");
  return out;
}

absl::StatusOr<std::vector<TopicPartitionOffset>> KafkaConsumer::Positions() {
  std::vector<RdKafka::TopicPartition*> tps;
  RdKafka::ErrorCode code = consumer_->assignment(tps);
  if (code == RdKafka::ERR_NO_ERROR) code = consumer_->position(tps);
  std::vector<TopicPartitionOffset> out = ToOffsets(tps);
  RdKafka::TopicPartition::destroy(tps);
  if (code != RdKafka::ERR_NO_ERROR) return KafkaStatus(code, "position");
  return out;
}

absl::StatusOr<std::pair<int64_t, int64_t>> KafkaConsumer::Watermarks(const std::string& topic,
                                                                      int32_t partition,
                                                                      absl::Duration timeout) {
  // A topic created a moment ago may not have a leader yet: retry such answers until the
  // timeout instead of failing a restore on a transient cluster state.
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    int64_t low = 0, high = 0;
    const int64_t left_ms = std::max<int64_t>(1, absl::ToInt64Milliseconds(deadline - absl::Now()));
    RdKafka::ErrorCode code = consumer_->query_watermark_offsets(
        topic, partition, &low, &high, static_cast<int>(std::min<int64_t>(left_ms, 5000)));
    if (code == RdKafka::ERR_NO_ERROR) return std::make_pair(low, high);
    const bool transient = code == RdKafka::ERR_NOT_LEADER_FOR_PARTITION ||
                           code == RdKafka::ERR_LEADER_NOT_AVAILABLE ||
                           code == RdKafka::ERR_UNKNOWN_TOPIC_OR_PART ||
                           code == RdKafka::ERR__UNKNOWN_PARTITION ||
                           code == RdKafka::ERR__TRANSPORT || code == RdKafka::ERR__TIMED_OUT;
    if (!transient || absl::Now() + absl::Milliseconds(100) >= deadline) {
      return KafkaStatus(code, absl::StrCat("watermarks of ", topic, "[", partition, "]"));
    }
    absl::SleepFor(absl::Milliseconds(100));
  }
}

absl::Status KafkaConsumer::Close() {
  if (closed_) return absl::OkStatus();
  closed_ = true;
  return KafkaStatus(consumer_->close(), "close consumer");
}

}  // namespace cybersyn
