// libFuzzer target: gateway JSON-lines input (ingest/record_source).
#include "fuzz/record_source_fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  cybersyn::fuzz::FuzzRecordSource(cybersyn::ingest::InputFormat::kJsonLines, data, size);
  return 0;
}
