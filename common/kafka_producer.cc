#include "common/kafka_producer.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/status.h"
#include "librdkafka/rdkafka.h"
#include "spdlog/spdlog.h"

namespace cybersyn {

void KafkaProducer::ReportCb::dr_cb(RdKafka::Message& message) {
  if (!fn_) return;
  DeliveryReport report;
  // (No message text to build for the common case: this runs once per message.)
  if (message.err() != RdKafka::ERR_NO_ERROR) {
    report.status = KafkaStatus(message.err(), absl::StrCat("deliver to ", message.topic_name()));
    report.error = message.err();
  }
  report.topic = message.topic_name();
  report.partition = message.partition();
  report.offset = message.offset();
  report.opaque = message.msg_opaque();
  fn_(report);
}

namespace {

// librdkafka's log, as it prints it by default, except the warning that
// enable.gapless.guarantee is experimental: the gateway's publisher relies on that setting, and a
// warning on every run that the user can do nothing about teaches them to ignore warnings.
void LogToStderr(const rd_kafka_t* rk, int level, const char* fac, const char* buf) {
  if (absl::string_view(fac) == "CONFWARN" &&
      absl::StrContains(buf, "enable.gapless.guarantee is experimental")) {
    spdlog::debug("kafka {}: {}", rd_kafka_name(rk), buf);
    return;
  }
  rd_kafka_log_print(rk, level, fac, buf);
}

}  // namespace

absl::StatusOr<std::unique_ptr<KafkaProducer>> KafkaProducer::Create(ProducerOptions options) {
  std::unique_ptr<KafkaProducer> p(new KafkaProducer());
  p->report_cb_ = std::make_unique<ReportCb>(std::move(options.on_delivery));
  std::unique_ptr<RdKafka::Conf> conf(RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL));
  std::map<std::string, std::string> overrides = options.overrides;
  if (options.idempotent || !options.transactional_id.empty()) {
    overrides.emplace("enable.idempotence", "true");
    overrides.emplace("acks", "all");
  }
  if (!options.transactional_id.empty()) {
    overrides["transactional.id"] = options.transactional_id;
  }
  KafkaStats::AddDefaults(options.client, &overrides);
  if (absl::Status s =
          BuildKafkaConf(options.client, KafkaClientKind::kProducer, overrides, conf.get());
      !s.ok())
    return s;
  rd_kafka_conf_set_log_cb(conf->c_ptr_global(), &LogToStderr);
  std::string err;
  if (conf->set("dr_cb", p->report_cb_.get(), err) != RdKafka::Conf::CONF_OK) {
    return absl::InternalError(absl::StrCat("setting delivery report callback: ", err));
  }
  ASSIGN_OR_RETURN(p->stats_cb_, KafkaStats::Attach(options.client, conf.get()));
  p->producer_.reset(RdKafka::Producer::create(conf.get(), err));
  if (!p->producer_) return absl::InvalidArgumentError(absl::StrCat("creating producer: ", err));
  p->name_ = p->producer_->name();
  return p;
}

KafkaProducer::~KafkaProducer() {
  if (!producer_) return;
  if (producer_->flush(10000) != RdKafka::ERR_NO_ERROR && producer_->outq_len() > 0) {
    spdlog::warn("kafka producer {}: {} messages undelivered at shutdown", name_,
                 producer_->outq_len());
  }
  producer_.reset();
}

absl::Status KafkaProducer::Produce(absl::string_view topic, int32_t partition,
                                    absl::string_view key, absl::string_view value,
                                    const KafkaHeaders& headers, void* opaque,
                                    absl::Duration block_for) {
  const absl::Time deadline = absl::Now() + block_for;
  while (true) {
    RdKafka::Headers* hdrs = nullptr;
    if (!headers.empty()) {
      hdrs = RdKafka::Headers::create();
      for (const auto& [k, v] : headers) hdrs->add(k, v.data(), v.size());
    }
    RdKafka::ErrorCode code =
        producer_->produce(std::string(topic), partition, RdKafka::Producer::RK_MSG_COPY,
                           const_cast<char*>(value.data()), value.size(),
                           key.empty() ? nullptr : key.data(), key.size(), 0, hdrs, opaque);
    if (code == RdKafka::ERR_NO_ERROR) return absl::OkStatus();
    delete hdrs;  // only freed by librdkafka on success
    if (code != RdKafka::ERR__QUEUE_FULL || absl::Now() >= deadline) {
      return KafkaStatus(code, absl::StrCat("produce to ", topic));
    }
    producer_->poll(50);  // serve delivery reports, which frees queue space
  }
}

int KafkaProducer::Poll(absl::Duration timeout) {
  return producer_->poll(static_cast<int>(absl::ToInt64Milliseconds(timeout)));
}

absl::Status KafkaProducer::Flush(absl::Duration timeout) {
  RdKafka::ErrorCode code = producer_->flush(static_cast<int>(absl::ToInt64Milliseconds(timeout)));
  if (code == RdKafka::ERR__TIMED_OUT) {
    return absl::DeadlineExceededError(absl::StrCat("flush: ", producer_->outq_len(),
                                                    " messages still outstanding after ",
                                                    absl::FormatDuration(timeout)));
  }
  return KafkaStatus(code, "flush");
}

int KafkaProducer::OutstandingMessages() const { return producer_->outq_len(); }

absl::Status KafkaProducer::InitTransactions(absl::Duration timeout) {
  return KafkaStatus(
      producer_->init_transactions(static_cast<int>(absl::ToInt64Milliseconds(timeout))),
      "init transactions");
}

absl::Status KafkaProducer::BeginTransaction() {
  return KafkaStatus(producer_->begin_transaction(), "begin transaction");
}

absl::Status KafkaProducer::SendOffsetsToTransaction(
    const std::vector<RdKafka::TopicPartition*>& offsets, RdKafka::KafkaConsumer* consumer,
    absl::Duration timeout) {
  std::unique_ptr<RdKafka::ConsumerGroupMetadata> meta(consumer->groupMetadata());
  return KafkaStatus(producer_->send_offsets_to_transaction(
                         offsets, meta.get(), static_cast<int>(absl::ToInt64Milliseconds(timeout))),
                     "send offsets to transaction");
}

absl::Status KafkaProducer::SendOffsetsToTransaction(
    const std::vector<TopicPartitionOffset>& offsets, const RdKafka::ConsumerGroupMetadata& group,
    absl::Duration timeout) {
  TopicPartitionList list(offsets);
  return KafkaStatus(producer_->send_offsets_to_transaction(
                         list.get(), const_cast<RdKafka::ConsumerGroupMetadata*>(&group),
                         static_cast<int>(absl::ToInt64Milliseconds(timeout))),
                     "send offsets to transaction");
}

absl::Status KafkaProducer::FatalError() {
  std::string reason;
  const RdKafka::ErrorCode code = producer_->fatal_error(reason);
  if (code == RdKafka::ERR_NO_ERROR) return absl::OkStatus();
  return KafkaStatus(code, absl::StrCat("producer ", name_, " failed: ", reason));
}

void KafkaProducer::Purge() {
  producer_->purge(RdKafka::Producer::PURGE_QUEUE | RdKafka::Producer::PURGE_INFLIGHT);
}

absl::Status KafkaProducer::CommitTransaction(absl::Duration timeout) {
  return KafkaStatus(
      producer_->commit_transaction(static_cast<int>(absl::ToInt64Milliseconds(timeout))),
      "commit transaction");
}

absl::Status KafkaProducer::AbortTransaction(absl::Duration timeout) {
  return KafkaStatus(
      producer_->abort_transaction(static_cast<int>(absl::ToInt64Milliseconds(timeout))),
      "abort transaction");
}

}  // namespace cybersyn
