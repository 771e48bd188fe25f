#include "common/duration.h"

#include <array>
#include <cctype>
#include <limits>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace cybersyn {
namespace {

// Debian's Abseil is built with its own string_view type; StrCat and friends take only that.
absl::string_view Av(std::string_view s) { return absl::string_view(s.data(), s.size()); }

struct DurationUnit {
  std::string_view suffix;
  absl::Duration unit;
};
// Ordered from largest to smallest: components must appear in this order.
constexpr int kNumDurationUnits = 5;
const std::array<DurationUnit, kNumDurationUnits>& DurationUnits() {
  static const std::array<DurationUnit, kNumDurationUnits> units = {{
      {"d", absl::Hours(24)},
      {"h", absl::Hours(1)},
      {"m", absl::Minutes(1)},
      {"s", absl::Seconds(1)},
      {"ms", absl::Milliseconds(1)},
  }};
  return units;
}

absl::Status BadDuration(std::string_view text, std::string_view hint = "") {
  return absl::InvalidArgumentError(
      absl::StrCat("expected a duration like 15m, got \"", Av(text), "\"", Av(hint)));
}

absl::Status BadSize(std::string_view text) {
  return absl::InvalidArgumentError(
      absl::StrCat("expected a byte size like 256MiB, got \"", Av(text), "\""));
}

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// Reads the leading decimal integer of `*s` (at most 18 digits so it cannot overflow) and
// removes it. Returns false if there is none or it is too long.
bool ConsumeInteger(std::string_view* s, uint64_t* out) {
  size_t n = 0;
  uint64_t v = 0;
  while (n < s->size() && IsDigit((*s)[n])) {
    if (n == 18) return false;
    v = v * 10 + static_cast<uint64_t>((*s)[n] - '0');
    ++n;
  }
  if (n == 0) return false;
  *out = v;
  s->remove_prefix(n);
  return true;
}

}  // namespace

absl::StatusOr<absl::Duration> ParseDuration(std::string_view text) {
  if (text == "0") return absl::ZeroDuration();
  std::string_view rest = text;
  if (rest.empty()) return BadDuration(text);
  absl::Duration total = absl::ZeroDuration();
  int next_unit = 0;  // index into DurationUnits() of the smallest unit not yet passed
  while (!rest.empty()) {
    uint64_t value = 0;
    if (!ConsumeInteger(&rest, &value)) return BadDuration(text);
    size_t letters = 0;
    while (letters < rest.size() && std::isalpha(static_cast<unsigned char>(rest[letters]))) {
      ++letters;
    }
    if (letters == 0) {
      if (rest.empty() && total == absl::ZeroDuration()) {
        return BadDuration(text, " (add a unit: ms, s, m, h or d)");
      }
      return BadDuration(text);
    }
    std::string_view suffix = rest.substr(0, letters);
    rest.remove_prefix(letters);
    int found = -1;
    for (int i = next_unit; i < kNumDurationUnits; ++i) {
      if (DurationUnits()[i].suffix == suffix) {
        found = i;
        break;
      }
    }
    if (found < 0) return BadDuration(text);
    total += DurationUnits()[found].unit * static_cast<int64_t>(value);
    next_unit = found + 1;
  }
  if (total == absl::InfiniteDuration()) return BadDuration(text);  // saturated: far too long
  return total;
}

std::string DurationToString(absl::Duration d) {
  std::string out;
  if (d < absl::ZeroDuration()) {
    out = "-";
    d = -d;
  }
  int64_t ms = absl::ToInt64Milliseconds(d);
  if (ms == 0) return out + "0s";
  for (const DurationUnit& u : DurationUnits()) {
    const int64_t unit_ms = absl::ToInt64Milliseconds(u.unit);
    if (ms >= unit_ms) {
      absl::StrAppend(&out, ms / unit_ms, Av(u.suffix));
      ms %= unit_ms;
    }
  }
  return out;
}

namespace {

struct SizeUnit {
  std::string_view suffix;
  uint64_t multiplier;
};
constexpr uint64_t kKi = 1024;
constexpr std::array<SizeUnit, 9> kSizeUnits = {{
    {"B", 1},
    {"KB", 1000},
    {"MB", 1000 * 1000},
    {"GB", 1000 * 1000 * 1000},
    {"TB", uint64_t{1000} * 1000 * 1000 * 1000},
    {"KiB", kKi},
    {"MiB", kKi* kKi},
    {"GiB", kKi* kKi* kKi},
    {"TiB", kKi* kKi* kKi* kKi},
}};

}  // namespace

absl::StatusOr<uint64_t> ParseByteSize(std::string_view text) {
  std::string_view rest = text;
  uint64_t value = 0;
  if (!ConsumeInteger(&rest, &value)) return BadSize(text);
  if (rest.empty()) return value;
  for (const SizeUnit& u : kSizeUnits) {
    if (rest == u.suffix) {
      if (value > std::numeric_limits<uint64_t>::max() / u.multiplier) return BadSize(text);
      return value * u.multiplier;
    }
  }
  return BadSize(text);
}

std::string ByteSizeToString(uint64_t bytes) {
  if (bytes == 0) return "0";
  static constexpr std::array<SizeUnit, 8> kLargestFirst = {{
      {"TiB", kKi * kKi * kKi * kKi},
      {"TB", uint64_t{1000} * 1000 * 1000 * 1000},
      {"GiB", kKi * kKi * kKi},
      {"GB", 1000 * 1000 * 1000},
      {"MiB", kKi * kKi},
      {"MB", 1000 * 1000},
      {"KiB", kKi},
      {"KB", 1000},
  }};
  for (const SizeUnit& u : kLargestFirst) {
    if (bytes % u.multiplier == 0) return absl::StrCat(bytes / u.multiplier, Av(u.suffix));
  }
  return absl::StrCat(bytes);
}

}  // namespace cybersyn
