// UTF-8 validity as protobuf's proto3 `string` fields require it (RFC 3629: no overlong forms, no
// surrogates, nothing above U+10FFFF). A record string that is not valid UTF-8 makes its whole
// RecordBatch unparseable downstream, so every source checks its strings with this at the edge.
// Thread-safety: pure functions.
#ifndef CYBERSYN_COMMON_UTF8_H_
#define CYBERSYN_COMMON_UTF8_H_

#include <cstddef>

#include "absl/strings/string_view.h"

namespace cybersyn {

// The length of the longest prefix of `s` that is valid UTF-8 (== s.size() when all of it is).
size_t ValidUtf8Prefix(absl::string_view s);

inline bool IsValidUtf8(absl::string_view s) { return ValidUtf8Prefix(s) == s.size(); }

// Decodes the code point at the start of `s`: its length in bytes (1-4), or 0 when `s` is empty
// or does not start with a valid UTF-8 sequence.
int DecodeUtf8(absl::string_view s, char32_t* code_point);

}  // namespace cybersyn

#endif  // CYBERSYN_COMMON_UTF8_H_
