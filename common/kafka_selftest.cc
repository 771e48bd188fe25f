#include "common/kafka_selftest.h"

#include <map>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/kafka_admin.h"
#include "common/kafka_consumer.h"
#include "common/kafka_producer.h"
#include "cybersyn/v1/record.pb.h"

namespace cybersyn {

absl::StatusOr<RoundTripResult> RunKafkaRoundTrip(const KafkaClientOptions& client,
                                                  const RoundTripOptions& options) {
  RoundTripResult result;
  auto info = DescribeCluster(client, absl::Seconds(10));
  if (!info.ok()) return info.status();
  result.brokers = info->brokers;
  // A fresh topic name per run keeps reruns against the same cluster independent.
  const std::string topic = absl::StrCat(options.topic, ".", absl::ToUnixMicros(absl::Now()));
  const std::vector<TopicSpec> specs = {{topic, 2, 1, {}}};
  if (absl::Status s =
          options.ensure_topics ? options.ensure_topics(specs) : EnsureTopics(client, specs);
      !s.ok()) {
    return s;
  }

  // Build the batches first so that what we read back can be compared with what we sent.
  std::vector<std::string> sent;
  std::vector<std::string> keys;
  for (int b = 0; b < options.batches; ++b) {
    v1::RecordBatch batch;
    batch.set_enterprise(absl::StrCat("selftest/enterprise-", b % 3));
    batch.set_gateway_id("selftest");
    batch.set_produced_at_ms(absl::ToUnixMillis(absl::Now()));
    for (int r = 0; r < options.records_per_batch; ++r) {
      v1::Record* rec = batch.add_records();
      rec->set_node(absl::StrCat(batch.enterprise(), "/unit-", r % 4));
      rec->set_indicator("output");
      rec->set_value(b * 1000.0 + r + 0.25);
      rec->set_event_time_ms(1'700'000'000'000 + b * 1000 + r);
      rec->set_sequence(static_cast<uint64_t>(b) * options.records_per_batch + r + 1);
      (*rec->mutable_labels())["shift"] = "a";
    }
    keys.push_back(batch.enterprise());
    sent.push_back(batch.SerializeAsString());
  }

  int delivered = 0;
  absl::Status delivery_error = absl::OkStatus();
  ProducerOptions popts;
  popts.client = client;
  popts.transactional_id = absl::StrCat("cybersyn-selftest-", absl::ToUnixMicros(absl::Now()));
  popts.on_delivery = [&](const DeliveryReport& r) {
    if (r.status.ok()) {
      ++delivered;
    } else if (delivery_error.ok()) {
      delivery_error = r.status;
    }
  };
  absl::Time t0 = absl::Now();
  {
    auto producer = KafkaProducer::Create(popts);
    if (!producer.ok()) return producer.status();
    KafkaProducer& p = **producer;
    if (absl::Status s = p.InitTransactions(options.timeout); !s.ok()) return s;
    if (absl::Status s = p.BeginTransaction(); !s.ok()) return s;
    for (size_t i = 0; i < sent.size(); ++i) {
      if (absl::Status s = p.Produce(topic, -1, keys[i], sent[i]); !s.ok()) return s;
    }
    if (absl::Status s = p.CommitTransaction(options.timeout); !s.ok()) return s;
    p.Poll(absl::ZeroDuration());
  }
  if (!delivery_error.ok()) return delivery_error;
  if (delivered != options.batches) {
    return absl::InternalError(
        absl::StrCat("only ", delivered, " of ", options.batches, " batches confirmed"));
  }
  result.batches_sent = delivered;
  result.produce_time = absl::Now() - t0;

  t0 = absl::Now();
  ConsumerOptions copts;
  copts.client = client;
  auto consumer = KafkaConsumer::Create(copts);
  if (!consumer.ok()) return consumer.status();
  if (absl::Status s = (*consumer)->Assign({{topic, 0, 0}, {topic, 1, 0}}); !s.ok()) return s;
  std::map<std::string, int> seen;  // serialized batch -> times read
  const absl::Time deadline = absl::Now() + options.timeout;
  while (result.batches_read < options.batches && absl::Now() < deadline) {
    auto msgs = (*consumer)->ConsumeBatch(100, absl::Milliseconds(200));
    if (!msgs.ok()) return msgs.status();
    for (const ConsumedMessage& m : *msgs) {
      v1::RecordBatch batch;
      if (!batch.ParseFromArray(m.value().data(), static_cast<int>(m.value().size()))) {
        return absl::DataLossError(
            absl::StrCat("undecodable batch at ", m.topic(), "[", m.partition(), "]@", m.offset()));
      }
      if (batch.enterprise() != m.key()) {
        return absl::DataLossError(
            absl::StrCat("key ", m.key(), " does not match batch ", batch.enterprise()));
      }
      ++seen[std::string(m.value())];
      ++result.batches_read;
      result.records_read += batch.records_size();
    }
  }
  (void)(*consumer)->Close();
  result.consume_time = absl::Now() - t0;
  for (const std::string& s : sent) {
    auto it = seen.find(s);
    if (it == seen.end()) return absl::DataLossError("a sent batch was not read back");
    if (it->second != 1) {
      return absl::DataLossError(absl::StrCat("a batch was read ", it->second, " times"));
    }
  }
  if (result.batches_read != options.batches) {
    return absl::DataLossError(
        absl::StrCat("read ", result.batches_read, " batches, sent ", options.batches));
  }
  return result;
}

}  // namespace cybersyn
