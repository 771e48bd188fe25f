// Event times as people write them in input files: RFC 3339 ("2024-05-01T12:00:00Z",
// "2024-05-01T09:00:00.250-03:00") or Unix epoch milliseconds ("1714564800000").
// Thread-safety: pure functions.
#ifndef CYBERSYN_INGEST_EVENT_TIME_H_
#define CYBERSYN_INGEST_EVENT_TIME_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace cybersyn::ingest {

// Epoch milliseconds. InvalidArgument with the message
// `expected RFC 3339 or epoch milliseconds, got "<text>"`.
absl::StatusOr<int64_t> ParseEventTime(absl::string_view text);

// RFC 3339 in UTC with milliseconds: "2024-05-01T12:00:00.000Z".
std::string FormatEventTime(int64_t epoch_ms);

}  // namespace cybersyn::ingest

#endif  // CYBERSYN_INGEST_EVENT_TIME_H_
