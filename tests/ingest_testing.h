// Test support for the ingest tests: reads RecordBatches back from a records topic.
#ifndef CYBERSYN_TESTS_INGEST_TESTING_H_
#define CYBERSYN_TESTS_INGEST_TESTING_H_

#include <map>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/time/clock.h"
#include "common/kafka_admin.h"
#include "common/kafka_consumer.h"
#include "cybersyn/v1/record.pb.h"

namespace cybersyn::testing {

struct ReadBack {
  std::vector<v1::RecordBatch> batches;
  // (gateway_id, sequence) -> record, after dedup; and how many duplicates were dropped.
  std::map<std::pair<std::string, uint64_t>, v1::Record> unique;
  uint64_t records = 0;     // including duplicates
  uint64_t duplicates = 0;  // resent batches (same gateway id and sequence)
  bool keys_match = true;   // Kafka key == batch.enterprise for every message
  bool order_ok = true;     // sequences increase per enterprise in partition order
};

// Reads `topic` (all partitions from the beginning) until `want_unique` distinct records were
// seen or `timeout` passed.
inline ReadBack ReadRecords(const KafkaClientOptions& client, const std::string& topic,
                            uint64_t want_unique, absl::Duration timeout) {
  ReadBack out;
  auto consumer = KafkaConsumer::Create({client});
  if (!consumer.ok()) return out;
  auto info = DescribeCluster(client, absl::Seconds(10));
  int partitions = info.ok() && info->topics.contains(topic) ? info->topics.at(topic) : 1;
  std::vector<TopicPartitionOffset> tps;
  for (int p = 0; p < partitions; ++p) tps.push_back({topic, p, 0});
  if (!(*consumer)->Assign(tps).ok()) return out;
  std::map<std::string, uint64_t> last_seq;  // per enterprise, in consumption order
  const absl::Time deadline = absl::Now() + timeout;
  while (out.unique.size() < want_unique && absl::Now() < deadline) {
    auto msgs = (*consumer)->ConsumeBatch(1000, absl::Milliseconds(200));
    if (!msgs.ok()) break;
    for (const auto& m : *msgs) {
      v1::RecordBatch b;
      if (!b.ParseFromArray(m.value().data(), static_cast<int>(m.value().size()))) continue;
      if (m.key() != b.enterprise()) out.keys_match = false;
      for (const v1::Record& r : b.records()) {
        ++out.records;
        auto key = std::make_pair(b.gateway_id(), r.sequence());
        if (out.unique.contains(key)) {
          ++out.duplicates;
          continue;
        }
        uint64_t& last = last_seq[b.enterprise()];
        if (r.sequence() <= last) out.order_ok = false;
        last = r.sequence();
        out.unique.emplace(key, r);
      }
      out.batches.push_back(std::move(b));
    }
  }
  (void)(*consumer)->Close();
  return out;
}

// What an aggregator keeps of `back`: per (gateway, enterprise) a record counts only if its
// sequence number is above the highest seen so far (aggregator/windows.cc Offer), in the order
// the batches were consumed (one enterprise's batches share a partition, so that is their order).
inline std::vector<v1::Record> HighWaterMarkDedup(const ReadBack& back) {
  std::vector<v1::Record> kept;
  std::map<std::pair<std::string, std::string>, uint64_t> hwm;
  for (const v1::RecordBatch& b : back.batches) {
    uint64_t& mark = hwm[{b.gateway_id(), b.enterprise()}];
    for (const v1::Record& r : b.records()) {
      if (r.sequence() <= mark) continue;
      mark = r.sequence();
      kept.push_back(r);
    }
  }
  return kept;
}

}  // namespace cybersyn::testing

#endif  // CYBERSYN_TESTS_INGEST_TESTING_H_
