#include "ingest/event_time.h"

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"

namespace cybersyn::ingest {

absl::StatusOr<int64_t> ParseEventTime(absl::string_view text) {
  auto bad = [&] {
    return absl::InvalidArgumentError(
        absl::StrCat("expected RFC 3339 or epoch milliseconds, got \"", text, "\""));
  };
  if (text.empty()) return bad();
  bool digits = true;
  for (char c : text) digits = digits && absl::ascii_isdigit(static_cast<unsigned char>(c));
  if (digits) {
    int64_t ms = 0;
    if (!absl::SimpleAtoi(text, &ms)) return bad();
    return ms;
  }
  // RFC 3339 needs a date, 'T' (or 't'/' ') and a zone; absl parses fractions and Z/+hh:mm.
  if (text.size() < 20) return bad();
  absl::Time t;
  std::string err;
  if (!absl::ParseTime(absl::RFC3339_full, text, &t, &err)) return bad();
  return absl::ToUnixMillis(t);
}

std::string FormatEventTime(int64_t epoch_ms) {
  return absl::FormatTime("%Y-%m-%d%ET%H:%M:%E3SZ", absl::FromUnixMillis(epoch_ms),
                          absl::UTCTimeZone());
}

}  // namespace cybersyn::ingest
