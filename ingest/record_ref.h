// RecordRef: a record to validate and publish, by reference. The publisher encodes from it, so a
// source that has the fields at hand (the simulator: node and indicator strings it owns) skips
// building a v1::Record per record (two string copies, ~10% of the gateway's source thread).
#ifndef CYBERSYN_INGEST_RECORD_REF_H_
#define CYBERSYN_INGEST_RECORD_REF_H_

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "cybersyn/v1/record.pb.h"

namespace cybersyn::ingest {

struct RecordRef {
  absl::string_view node;
  absl::string_view indicator;
  double value = 0;
  int64_t event_time_ms = 0;
  // Null: no labels. The map (and the strings above) must outlive the use of the RecordRef.
  const google::protobuf::Map<std::string, std::string>* labels = nullptr;
  // Empty, or exactly the protobuf encoding of `node` and `indicator` as v1::Record fields 1 and 2
  // (tag, length, bytes; a field left out when empty), encoded once by a source whose records
  // repeat a few (node, indicator) pairs (the simulator: one per series). An encoder may copy it
  // instead of encoding both strings per record.
  absl::string_view node_indicator_pb;
  // The input line it came from (file sources), 0 when unknown: named when its batch fails.
  int64_t line = 0;

  static RecordRef Of(const v1::Record& r) {
    return RecordRef{r.node(),
                     r.indicator(),
                     r.value(),
                     r.event_time_ms(),
                     r.labels().empty() ? nullptr : &r.labels(),
                     {},
                     0};
  }
};

}  // namespace cybersyn::ingest

#endif  // CYBERSYN_INGEST_RECORD_REF_H_
