// One number grammar for every input format (CSV, JSON lines, and the MQTT/OTLP sources to come):
// JSON's (RFC 8259 section 6), so that a value a CSV file accepts is one a JSON line accepts too.
//
//   number  = [ "-" ] int [ "." 1*DIGIT ] [ ( "e" / "E" ) [ "+" / "-" ] 1*DIGIT ]
//   int     = "0" / ( %x31-39 *DIGIT )                  ; no leading zeros
//
// Not numbers: hexadecimal ("0x10", "0x1p3"), a leading "+", ".5", "5.", "1,5", spaces inside.
// The words nan, inf and infinity (any case, optional sign) are recognised only to say that a
// value must be finite. A number beyond a double's range ("1e999") is an error, not infinity;
// one too small for it ("1e-400") is 0, as in JSON parsers.
// Thread-safety: pure functions.
#ifndef CYBERSYN_COMMON_NUMBER_GRAMMAR_H_
#define CYBERSYN_COMMON_NUMBER_GRAMMAR_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace cybersyn {

// Whether `text` is exactly one number of the grammar above.
bool IsNumberSyntax(absl::string_view text);

// Whether `text` is an integer of the grammar (a number without fraction or exponent).
bool IsIntegerSyntax(absl::string_view text);

// Parses a number of the grammar. InvalidArgument messages (the caller adds the field name):
//   expected a number, got "0x10" (hexadecimal is not accepted)      and other hints
//   must be finite, got nan                                           (also inf, -inf)
//   1e999 is out of range for a number (a double reaches about 1.8e308)
absl::StatusOr<double> ParseNumber(absl::string_view text);

// Parses an integer of the grammar into int64. InvalidArgument: `expected an integer, got "..."`,
// or `<text> is out of range (a signed 64-bit integer)`.
absl::StatusOr<int64_t> ParseInteger(absl::string_view text);

// The out-of-range message of ParseNumber for `text` (a JSON parser reports the overflow itself).
std::string NumberOutOfRangeMessage(absl::string_view text);

}  // namespace cybersyn

#endif  // CYBERSYN_COMMON_NUMBER_GRAMMAR_H_
