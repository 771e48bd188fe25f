// Translation of librdkafka errors into absl::Status, so Kafka failures cross every boundary
// with a gRPC-compatible code and a message that names the operation.
#ifndef CYBERSYN_COMMON_KAFKA_ERROR_H_
#define CYBERSYN_COMMON_KAFKA_ERROR_H_

#include <map>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "common/kafka_properties.h"
#include "librdkafka/rdkafkacpp.h"

namespace cybersyn {

// Maps a librdkafka error code to a status: timeouts -> DEADLINE_EXCEEDED, full queues ->
// RESOURCE_EXHAUSTED, unreachable brokers and offsets pending in a transaction -> UNAVAILABLE,
// oversized or invalid input -> INVALID_ARGUMENT, fenced/fatal producers -> FAILED_PRECONDITION,
// abortable transaction errors -> ABORTED. `what` names the operation ("produce to
// cybersyn.records").
absl::Status KafkaStatus(RdKafka::ErrorCode code, absl::string_view what);

// Same for an RdKafka::Error (transactional API), which it deletes.
absl::Status KafkaStatus(RdKafka::Error* error, absl::string_view what);

// Builds an RdKafka::Conf for a client of `kind` from `options` and what the code sets (`code`),
// layered as common/kafka_properties.h says; configured values that replace the code's defaults
// are logged once per client. Errors name the property that librdkafka refused.
absl::Status BuildKafkaConf(const KafkaClientOptions& options, KafkaClientKind kind,
                            const std::map<std::string, std::string>& code, RdKafka::Conf* conf);

}  // namespace cybersyn

#endif  // CYBERSYN_COMMON_KAFKA_ERROR_H_
