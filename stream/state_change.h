// StateChange: one change of a task's persisted state, as a processor reports it (processor.h)
// and the runtime writes it to the changelog and the local store. Its own header so that pure
// state code (aggregator/windows.h) can produce changes without depending on Kafka.
#ifndef CYBERSYN_STREAM_STATE_CHANGE_H_
#define CYBERSYN_STREAM_STATE_CHANGE_H_

#include <string>

namespace cybersyn::stream {

// `value` empty deletes `key` (a tombstone). So a state value is never empty: serialise at
// least one field.
struct StateChange {
  std::string key;
  std::string value;
};

}  // namespace cybersyn::stream

#endif  // CYBERSYN_STREAM_STATE_CHANGE_H_
