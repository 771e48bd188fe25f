// Decoding a RecordBatch (<prefix>.records message value) so that one bad record costs only
// itself. Protobuf's parser rejects a whole message when any of its strings is not valid UTF-8
// (proto3), so one such label used to send every good record of its batch to the dead-letter
// topic with it. DecodeRecordBatch parses the batch at once when it can (the fast path) and
// otherwise walks its wire format record by record, keeping the records that parse.
// The gateway uses it too, to re-pack a batch the broker refuses.
// Thread-safety: pure functions.
#ifndef CYBERSYN_COMMON_BATCH_DECODE_H_
#define CYBERSYN_COMMON_BATCH_DECODE_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "cybersyn/v1/record.pb.h"

namespace cybersyn {

// A record of the batch that could not be decoded.
struct BadRecord {
  int index = 0;           // its position among the batch's records (0-based, bad ones counted)
  std::string reason;      // "invalid UTF-8 in labels", "malformed record", ...
  absl::string_view wire;  // its bytes (into the input), or the rest of the batch when the
                           // batch's framing broke there
};

// Decodes `wire` into `batch` (which is overwritten; its Record objects are reused). OK: every
// record that decodes is in batch->records(), in order, and `bad` (cleared first) lists the
// others with their reasons. InvalidArgument when the batch's own fields (enterprise, gateway id,
// produced_at) cannot be read, so no record of it can be attributed, or when its framing breaks
// before any record decoded (random bytes, a batch cut inside its first record).
absl::Status DecodeRecordBatch(absl::string_view wire, v1::RecordBatch* batch,
                               std::vector<BadRecord>* bad);

// Why `wire` is not a valid Record ("invalid UTF-8 in labels", "malformed record"), or "".
std::string RecordProblem(absl::string_view wire);

}  // namespace cybersyn

#endif  // CYBERSYN_COMMON_BATCH_DECODE_H_
