#include "common/time_grammar.h"

#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/duration.h"
#include "common/number_grammar.h"
#include "common/safe_text.h"

namespace cybersyn {
namespace {

constexpr int64_t kMsPerDay = 86'400'000;
constexpr int64_t kYear0Ms = -62'167'219'200'000;      // 0000-01-01T00:00:00Z
constexpr int64_t kYear10000Ms = 253'402'300'800'000;  // 10000-01-01T00:00:00Z

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil).
int64_t DaysFromCivil(int64_t y, int m, int d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const int64_t yoe = y - era * 400;
  const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

int DaysInMonth(int y, int m) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  return m == 2 && leap ? 29 : kDays[m - 1];
}

bool Digits(absl::string_view t, size_t at, size_t n, int* out) {
  if (at + n > t.size()) return false;
  int v = 0;
  for (size_t i = at; i < at + n; ++i) {
    if (t[i] < '0' || t[i] > '9') return false;
    v = v * 10 + (t[i] - '0');
  }
  *out = v;
  return true;
}

absl::Status Bad(absl::string_view text, absl::string_view hint = "") {
  return absl::InvalidArgumentError(absl::StrCat("expected RFC 3339 or epoch milliseconds, got ",
                                                 SafeQuote(text), hint.empty() ? "" : " (", hint,
                                                 hint.empty() ? "" : ")"));
}

// RFC 3339 (see the header); `text` starts with four digits and '-'.
absl::StatusOr<int64_t> ParseRfc3339(absl::string_view t) {
  int y, mo, d, h, mi, s;
  if (!Digits(t, 0, 4, &y) || t.size() < 10 || t[4] != '-' || !Digits(t, 5, 2, &mo) ||
      t[7] != '-' || !Digits(t, 8, 2, &d)) {
    return Bad(t, "a date is written YYYY-MM-DD");
  }
  if (mo < 1 || mo > 12) return Bad(t, absl::StrCat("month ", mo, " is out of range"));
  if (d < 1 || d > DaysInMonth(y, mo)) {
    return Bad(t, absl::StrFormat("day %d is out of range for %04d-%02d", d, y, mo));
  }
  if (t.size() == 10) return Bad(t, "add the time of day and a zone: T00:00:00Z");
  if (t[10] != 'T' && t[10] != 't' && t[10] != ' ') return Bad(t, "the date and time join with T");
  if (!Digits(t, 11, 2, &h) || t.size() < 19 || t[13] != ':' || !Digits(t, 14, 2, &mi) ||
      t[16] != ':' || !Digits(t, 17, 2, &s)) {
    return Bad(t, "a time of day is written hh:mm:ss");
  }
  if (h > 23) return Bad(t, absl::StrCat("hour ", h, " is out of range"));
  if (mi > 59) return Bad(t, absl::StrCat("minute ", mi, " is out of range"));
  if (s > 59) return Bad(t, absl::StrCat("second ", s, " is out of range"));
  size_t i = 19;
  int64_t ms = 0;
  if (i < t.size() && t[i] == '.') {
    ++i;
    const size_t start = i;
    while (i < t.size() && t[i] >= '0' && t[i] <= '9') {
      if (i - start < 3) ms = ms * 10 + (t[i] - '0');
      ++i;
    }
    if (i == start) return Bad(t, "a fraction of a second needs digits after the point");
    for (size_t k = i - start; k < 3; ++k) ms *= 10;
  }
  int64_t offset_min = 0;
  if (i >= t.size()) return Bad(t, "add a zone: Z or +hh:mm");
  if (t[i] == 'Z' || t[i] == 'z') {
    ++i;
  } else if (t[i] == '+' || t[i] == '-') {
    const int sign = t[i] == '-' ? -1 : 1;
    int oh, om;
    if (Digits(t, i + 1, 4, &oh) && t.size() == i + 5) {
      return Bad(t, absl::StrCat("the zone offset needs a colon: ", t.substr(i, 3), ":",
                                 t.substr(i + 3, 2)));
    }
    if (!Digits(t, i + 1, 2, &oh) || i + 3 >= t.size() || t[i + 3] != ':' ||
        !Digits(t, i + 4, 2, &om)) {
      return Bad(t, "a zone offset is written +hh:mm");
    }
    if (oh > 23 || om > 59) return Bad(t, "the zone offset is out of range");
    offset_min = sign * (oh * 60 + om);
    i += 6;
  } else {
    return Bad(t, "add a zone: Z or +hh:mm");
  }
  if (i != t.size()) return Bad(t, "unexpected text after the zone");
  return DaysFromCivil(y, mo, d) * kMsPerDay + ((h * 60 + mi) * 60 + s) * int64_t{1000} + ms -
         offset_min * 60'000;
}

std::string OutOfRange(absl::string_view text) {
  return absl::StrCat(SafeName(text),
                      " is out of range for epoch milliseconds (a signed 64-bit integer)");
}

// `ms` as the user wrote it, for messages: the number, with its date, or the RFC 3339 form.
std::string Shown(int64_t ms, TimeForm form) {
  if (form == TimeForm::kRfc3339) return FormatEventTime(ms);
  return absl::StrCat(ms, " (", FormatEventTime(ms), ")");
}

// A hint when `ms` read as another unit (ms * scale, or ms / divisor) is a plausible time.
std::optional<std::string> UnitHint(int64_t ms, const TimeBounds& b, int64_t now_ms) {
  const int64_t latest = now_ms + absl::ToInt64Milliseconds(b.max_future);
  auto plausible = [&](int64_t t) { return t >= b.min_ms && t <= latest; };
  if (ms > 0 && ms <= std::numeric_limits<int64_t>::max() / 1000 && plausible(ms * 1000)) {
    return absl::StrCat(ms, " looks like epoch seconds (", FormatEventTime(ms * 1000),
                        "); epoch milliseconds are expected, e.g. ", ms * 1000);
  }
  for (const auto& [divisor, unit] : {std::pair<int64_t, const char*>{1000, "microseconds"},
                                      std::pair<int64_t, const char*>{1'000'000, "nanoseconds"}}) {
    if (ms > latest && plausible(ms / divisor)) {
      return absl::StrCat(ms, " looks like epoch ", unit, " (", FormatEventTime(ms / divisor),
                          "); epoch milliseconds are expected, e.g. ", ms / divisor);
    }
  }
  return std::nullopt;
}

}  // namespace

absl::StatusOr<EventTime> ParseEventTime(absl::string_view text) {
  if (text.empty()) return Bad(text);
  if (text.size() >= 5 && text[4] == '-' && text[0] >= '0' && text[0] <= '9') {
    absl::StatusOr<int64_t> ms = ParseRfc3339(text);
    if (!ms.ok()) return ms.status();
    return EventTime{*ms, TimeForm::kRfc3339};
  }
  if (IsIntegerSyntax(text)) {
    absl::StatusOr<int64_t> ms = ParseInteger(text);
    if (!ms.ok()) return absl::InvalidArgumentError(OutOfRange(text));
    return EventTime{*ms, TimeForm::kEpochMillis};
  }
  if (IsNumberSyntax(text)) return Bad(text, "epoch milliseconds are a whole number");
  return Bad(text);
}

absl::StatusOr<int64_t> EpochMillisFromUnsigned(uint64_t value) {
  if (value > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    return absl::InvalidArgumentError(OutOfRange(absl::StrCat(value)));
  }
  return static_cast<int64_t>(value);
}

std::string FormatEventTime(int64_t epoch_ms) {
  if (epoch_ms < kYear0Ms || epoch_ms >= kYear10000Ms) {
    return absl::StrCat(epoch_ms, " ms since 1970");
  }
  return absl::FormatTime("%E4Y-%m-%d%ET%H:%M:%E3SZ", absl::FromUnixMillis(epoch_ms),
                          absl::UTCTimeZone());
}

std::optional<TimeProblem> CheckEventTime(int64_t ms, TimeForm form, const TimeBounds& b,
                                          int64_t now_ms) {
  const int64_t latest = now_ms + absl::ToInt64Milliseconds(b.max_future);
  if (ms < b.min_ms) {
    if (form == TimeForm::kEpochMillis) {
      if (auto hint = UnitHint(ms, b, now_ms)) {
        return TimeProblem{TimeProblem::Kind::kTooEarly, *std::move(hint)};
      }
    }
    return TimeProblem{
        TimeProblem::Kind::kTooEarly,
        absl::StrCat(Shown(ms, form), " is before gateway.min_time ", FormatEventTime(b.min_ms),
                     " (a time that early is almost always a unit mistake)")};
  }
  if (b.max_age > absl::ZeroDuration() && ms < now_ms - absl::ToInt64Milliseconds(b.max_age)) {
    return TimeProblem{
        TimeProblem::Kind::kTooOld,
        absl::StrCat(Shown(ms, form), " is ", DurationToString(absl::Milliseconds(now_ms - ms)),
                     " older than the gateway clock (max_age ", DurationToString(b.max_age), ")")};
  }
  if (ms > latest) {
    if (form == TimeForm::kEpochMillis) {
      if (auto hint = UnitHint(ms, b, now_ms)) {
        return TimeProblem{TimeProblem::Kind::kTooFarAhead, *std::move(hint)};
      }
    }
    return TimeProblem{
        TimeProblem::Kind::kTooFarAhead,
        absl::StrCat(FormatEventTime(ms), " is ", DurationToString(absl::Milliseconds(ms - now_ms)),
                     " ahead of the gateway clock (max_future ", DurationToString(b.max_future),
                     ")")};
  }
  return std::nullopt;
}

}  // namespace cybersyn
