// Input text made safe to print in messages (error lines on stderr, logs, gRPC statuses). Text from
// a file or a client can carry terminal escape sequences (ESC [2J clears the operator's screen),
// a CR that overwrites the line, a NUL that cuts a C string short, megabytes of one field, or
// look-alike letters (a Cyrillic "с" in "сl/textiles" prints like a valid node).
// Thread-safety: pure functions.
#ifndef CYBERSYN_COMMON_SAFE_TEXT_H_
#define CYBERSYN_COMMON_SAFE_TEXT_H_

#include <cstddef>
#include <string>

#include "absl/strings/string_view.h"

namespace cybersyn {

// Input text past this many bytes is cut from messages (its full length is shown instead).
inline constexpr size_t kSafeTextMaxBytes = 100;

// `text` as a double-quoted, one-line, ASCII-only string: \" \\ \n \r \t; \xhh for other control
// bytes, DEL and bytes that are not valid UTF-8; \uhhhh (\Uhhhhhhhh above U+FFFF) for every
// non-ASCII character (lower-case hex digits). Text longer than `max_bytes` is cut at a character
// boundary and followed by its length: "aaaa"... (1048576 bytes).
std::string SafeQuote(absl::string_view text, size_t max_bytes = kSafeTextMaxBytes);

// The same escaping without the quotes, for names taken from input (a JSON field name).
std::string SafeName(absl::string_view text, size_t max_bytes = kSafeTextMaxBytes);

// Escapes only what harms a terminal or a one-line log (control bytes, DEL, invalid UTF-8, as
// \xHH) and keeps printable Unicode and backslashes as they are: the last line of defence for a
// message assembled from SafeQuote'd input and trusted names (a file path).
std::string SafeLine(absl::string_view text);

}  // namespace cybersyn

#endif  // CYBERSYN_COMMON_SAFE_TEXT_H_
