// The body of the CSV and JSON-lines fuzz targets: the input is a whole file, read through the
// gateway's stream source (line splitting, header/comment/blank handling, then ParseCsvLine /
// ParseJsonLine and the RecordValidator), plus the whole input as one line through the parser.
#ifndef CYBERSYN_FUZZ_RECORD_SOURCE_FUZZ_H_
#define CYBERSYN_FUZZ_RECORD_SOURCE_FUZZ_H_

#include <cstddef>
#include <cstdint>

#include "ingest/record_source.h"

namespace cybersyn::fuzz {

// Checks that whatever is accepted satisfies the validator's promises (known node at or below
// the enterprise level with that enterprise returned, known indicator, finite value, time in
// range, label count within gateway.max_labels, every string UTF-8) and that every rejection
// names its line and a reason in a message without control characters.
void FuzzRecordSource(ingest::InputFormat format, const uint8_t* data, size_t size);

}  // namespace cybersyn::fuzz

#endif  // CYBERSYN_FUZZ_RECORD_SOURCE_FUZZ_H_
