// How large a Kafka message the gateway may produce, and what fits in one. The broker refuses a
// record batch larger than the topic's max.message.bytes ("Message size too large"); librdkafka
// refuses a message larger than its message.max.bytes before sending it. The smaller of the two
// is the gateway's message limit. A RecordBatch value must also leave room for Kafka's framing
// around it: the record batch header, the record's own fields, the key.
// Thread-safety: pure functions.
#ifndef CYBERSYN_INGEST_MESSAGE_LIMIT_H_
#define CYBERSYN_INGEST_MESSAGE_LIMIT_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "cybersyn/v1/record.pb.h"

namespace cybersyn::ingest {

// The publisher's producer's message.max.bytes, and so the limit until the topic's is known.
inline constexpr uint64_t kDefaultMessageLimit = 1'000'000;
// Below this the gateway does not go: the topic limit is read from the broker, and a value this
// small is a misconfiguration that would set aside most records.
inline constexpr uint64_t kMinMessageLimit = 4096;

// The largest RecordBatch value a message keyed with `key_size` bytes may carry under `limit`:
// 4000 bytes (an eighth of smaller limits) are left for Kafka's framing, then the key. (Inline:
// the publisher checks it per record.)
inline uint64_t MaxBatchValueBytes(uint64_t limit, size_t key_size) {
  const uint64_t margin = limit / 8 < 4000 ? limit / 8 : 4000;
  return limit > margin + key_size ? limit - margin - key_size : 0;
}

// The encoded size of a RecordBatch that carries only `record` (with a sequence number of the
// widest encoding, as the gateway adds it), for `enterprise` from `gateway_id`.
uint64_t SingleRecordBatchBytes(const v1::Record& record, absl::string_view enterprise,
                                absl::string_view gateway_id);

// A byte count for messages, in decimal units as Kafka's limits are usually quoted: "900 bytes",
// "65.5 kB", "1 MB", "1.2 MB".
std::string FormatMessageBytes(uint64_t bytes);

}  // namespace cybersyn::ingest

#endif  // CYBERSYN_INGEST_MESSAGE_LIMIT_H_
