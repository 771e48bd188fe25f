// Durations and byte sizes as people write them in the config: "500ms", "30s", "15m", "4h", "1d",
// "1h30m"; "256MiB", "1GiB", "64KB", "1000". Parsing is strict (no spaces, no signs, no fractions)
// so a typo is an error rather than a surprise.
// Thread-safety: pure functions, safe from any thread.
#ifndef CYBERSYN_COMMON_DURATION_H_
#define CYBERSYN_COMMON_DURATION_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace cybersyn {

// Parses one or more <integer><unit> components, units in decreasing order, each at most once:
// d (24h), h, m, s, ms. "0" alone is the zero duration. Errors are InvalidArgument with the message
// `expected a duration like 15m, got "<text>"` (plus a hint when a number lacks its unit), which
// the config loader prefixes with the key's path.
absl::StatusOr<absl::Duration> ParseDuration(std::string_view text);

// The shortest form ParseDuration reads back: "1h30m", "500ms", "0s". Negative durations get a
// leading '-'; sub-millisecond parts are dropped.
std::string DurationToString(absl::Duration d);

// Parses an integer number of bytes with an optional unit: B; KB, MB, GB, TB (powers of 1000);
// KiB, MiB, GiB, TiB (powers of 1024). Errors are InvalidArgument with the message
// `expected a byte size like 256MiB, got "<text>"`; values that overflow 64 bits are errors too.
absl::StatusOr<uint64_t> ParseByteSize(std::string_view text);

// "256MiB", "1GiB", "64KB" or plain "1000": the largest unit that divides `bytes` exactly.
std::string ByteSizeToString(uint64_t bytes);

}  // namespace cybersyn

#endif  // CYBERSYN_COMMON_DURATION_H_
