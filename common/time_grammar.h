// One event-time grammar and one set of range checks for every source (CSV, JSON lines, gRPC, and
// the MQTT and OTLP sources to come), so that a time one format accepts is one every format does.
//
// Text (ParseEventTime):
//   RFC 3339, strictly:  2024-05-01T12:00:00Z   2024-05-01T09:00:00.250-03:00
//       YYYY-MM-DD "T" hh:mm:ss [ "." 1*DIGIT ] ( "Z" / ("+" / "-") hh:mm )
//       't' and 'z' may be lower case, and the "T" may be a space (RFC 3339 section 5.6 allows it);
//       every field is range-checked (no 2024-02-30, no hour 24, no second 60), the zone offset
//       needs its colon (+03:00, not +0300), fractions below a millisecond are cut off.
//   Integer epoch milliseconds:  1714564800000   (the number grammar's integers, int64 range)
// Numbers from a typed field (JSON integers, the gRPC int64) are epoch milliseconds too.
//
// Range (CheckEventTime), relative to the gateway clock:
//   not before `min_ms` (gateway.min_time, default 2000-01-01T00:00:00Z: an earlier time is almost
//   always a unit mistake, such as epoch seconds where milliseconds are expected, which is named
//   when the value fits it; also microseconds and nanoseconds past max_future);
//   not older than `max_age` (gateway.max_age; zero = off, the default: backfills are legitimate);
//   not further ahead than `max_future` (gateway.max_future, default 5m).
// Thread-safety: pure functions.
#ifndef CYBERSYN_COMMON_TIME_GRAMMAR_H_
#define CYBERSYN_COMMON_TIME_GRAMMAR_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace cybersyn {

// 2000-01-01T00:00:00Z: the default earliest event time.
inline constexpr int64_t kDefaultMinEventTimeMs = 946'684'800'000;

// How a time was written: the range check names epoch seconds only for integers.
enum class TimeForm { kEpochMillis, kRfc3339 };

struct EventTime {
  int64_t ms = 0;
  TimeForm form = TimeForm::kEpochMillis;
};

// Parses a time written as text. InvalidArgument with the message
// `expected RFC 3339 or epoch milliseconds, got "<text>"`, followed by a hint in parentheses when
// one applies (`(the zone offset needs a colon: +03:00)`, `(day 30 is out of range for 2024-02)`);
// or `<text> is out of range for epoch milliseconds (a signed 64-bit integer)`.
absl::StatusOr<EventTime> ParseEventTime(absl::string_view text);

// Epoch milliseconds from an unsigned integer (a JSON parser's): InvalidArgument with the
// out-of-range message above when it exceeds int64.
absl::StatusOr<int64_t> EpochMillisFromUnsigned(uint64_t value);

// RFC 3339 in UTC with milliseconds, "2024-05-01T12:00:00.000Z"; outside the years 0000-9999
// "<ms> ms since 1970".
std::string FormatEventTime(int64_t epoch_ms);

struct TimeBounds {
  int64_t min_ms = kDefaultMinEventTimeMs;
  absl::Duration max_age = absl::ZeroDuration();  // zero: no limit
  absl::Duration max_future = absl::Minutes(5);
};

struct TimeProblem {
  enum class Kind { kTooEarly, kTooOld, kTooFarAhead };
  Kind kind;
  std::string
      message;  // e.g. "2024-05-01T01:00:00.000Z is 1h ahead of the gateway clock (max_future 5m)"
};

// Checks `ms` against `bounds` at `now_ms`; nullopt when it is in range.
std::optional<TimeProblem> CheckEventTime(int64_t ms, TimeForm form, const TimeBounds& bounds,
                                          int64_t now_ms);

}  // namespace cybersyn

#endif  // CYBERSYN_COMMON_TIME_GRAMMAR_H_
