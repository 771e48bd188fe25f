#include "common/number_grammar.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/safe_text.h"

namespace cybersyn {
namespace {

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// Scans the grammar; where the integer part ends (`int_end`) and whether it is an integer.
bool Scan(absl::string_view t, bool* integer) {
  size_t i = 0;
  const size_t n = t.size();
  if (i < n && t[i] == '-') ++i;
  if (i >= n || !IsDigit(t[i])) return false;
  if (t[i] == '0') {
    ++i;
  } else {
    while (i < n && IsDigit(t[i])) ++i;
  }
  *integer = true;
  if (i < n && t[i] == '.') {
    *integer = false;
    ++i;
    if (i >= n || !IsDigit(t[i])) return false;
    while (i < n && IsDigit(t[i])) ++i;
  }
  if (i < n && (t[i] == 'e' || t[i] == 'E')) {
    *integer = false;
    ++i;
    if (i < n && (t[i] == '+' || t[i] == '-')) ++i;
    if (i >= n || !IsDigit(t[i])) return false;
    while (i < n && IsDigit(t[i])) ++i;
  }
  return i == n;
}

// A hint for text that is not a number of the grammar, or "".
std::string Hint(absl::string_view t) {
  absl::string_view u = t;
  if (!u.empty() && (u[0] == '-' || u[0] == '+')) u.remove_prefix(1);
  if (absl::StartsWithIgnoreCase(u, "0x")) return " (hexadecimal is not accepted)";
  if (!t.empty() && t[0] == '+') return " (no leading '+')";
  if (!u.empty() && u[0] == '.') return " (write a digit before the point: 0.5)";
  if (absl::EndsWith(u, ".")) return " (write a digit after the point: 5.0)";
  if (u.size() > 1 && u[0] == '0' && IsDigit(u[1])) return " (no leading zeros)";
  if (u.find(',') != absl::string_view::npos && u.find('.') == absl::string_view::npos) {
    return " (the decimal separator is '.')";
  }
  return "";
}

bool IsNonFiniteWord(absl::string_view t, std::string* canonical) {
  bool negative = false;
  if (!t.empty() && (t[0] == '-' || t[0] == '+')) {
    negative = t[0] == '-';
    t.remove_prefix(1);
  }
  if (absl::EqualsIgnoreCase(t, "nan")) {
    *canonical = "nan";
    return true;
  }
  if (absl::EqualsIgnoreCase(t, "inf") || absl::EqualsIgnoreCase(t, "infinity")) {
    *canonical = negative ? "-inf" : "inf";
    return true;
  }
  return false;
}

}  // namespace

bool IsNumberSyntax(absl::string_view text) {
  bool integer = false;
  return Scan(text, &integer);
}

bool IsIntegerSyntax(absl::string_view text) {
  bool integer = false;
  return Scan(text, &integer) && integer;
}

std::string NumberOutOfRangeMessage(absl::string_view text) {
  return absl::StrCat(SafeName(text), " is out of range for a number (a double reaches about ",
                      "1.8e308)");
}

absl::StatusOr<double> ParseNumber(absl::string_view text) {
  bool integer = false;
  if (!Scan(text, &integer)) {
    std::string word;
    if (IsNonFiniteWord(text, &word)) {
      return absl::InvalidArgumentError(absl::StrCat("must be finite, got ", word));
    }
    return absl::InvalidArgumentError(
        absl::StrCat("expected a number, got ", SafeQuote(text), Hint(text)));
  }
  // strtod takes more than the grammar (hex, inf), but the grammar was checked; it needs a
  // terminated string.
  const std::string s(text);
  errno = 0;
  char* end = nullptr;
  const double d = std::strtod(s.c_str(), &end);
  if (std::isinf(d)) return absl::InvalidArgumentError(NumberOutOfRangeMessage(text));
  return d;  // an underflow (ERANGE with a tiny or zero result) reads as that result
}

absl::StatusOr<int64_t> ParseInteger(absl::string_view text) {
  if (!IsIntegerSyntax(text)) {
    return absl::InvalidArgumentError(
        absl::StrCat("expected an integer, got ", SafeQuote(text), Hint(text)));
  }
  int64_t v = 0;
  if (!absl::SimpleAtoi(text, &v)) {
    return absl::InvalidArgumentError(
        absl::StrCat(SafeName(text), " is out of range (a signed 64-bit integer)"));
  }
  return v;
}

}  // namespace cybersyn
