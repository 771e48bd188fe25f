// A round trip through a Kafka cluster: produce RecordBatches in one transaction, read them
// back read_committed and compare byte for byte. `cybersyn kafka check` and the integration
// tests use it to prove a cluster (real or embedded) does what the pipeline needs.
#ifndef CYBERSYN_COMMON_KAFKA_SELFTEST_H_
#define CYBERSYN_COMMON_KAFKA_SELFTEST_H_

#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/kafka_admin.h"
#include "common/kafka_error.h"

namespace cybersyn {

struct RoundTripOptions {
  std::string topic = "cybersyn.selftest";
  int batches = 10;
  int records_per_batch = 100;
  absl::Duration timeout = absl::Seconds(60);
  // How topics get created; empty = the Kafka admin API (EnsureTopics). The embedded broker
  // passes its own (librdkafka's mock cluster has no CreateTopics).
  TopicEnsurer ensure_topics;
};

struct RoundTripResult {
  int batches_sent = 0;
  int batches_read = 0;
  int records_read = 0;
  int brokers = 0;
  absl::Duration produce_time;
  absl::Duration consume_time;
};

// Fails unless every batch came back intact, in order per key, exactly once.
absl::StatusOr<RoundTripResult> RunKafkaRoundTrip(const KafkaClientOptions& client,
                                                  const RoundTripOptions& options);

}  // namespace cybersyn

#endif  // CYBERSYN_COMMON_KAFKA_SELFTEST_H_
