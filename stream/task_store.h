// The local store layout of the runtime's tasks, and the checkpoint that says which changelog
// offset a task's local state reflects.
//
//   t/<sub-topology>/<partition>/s/<key>   one state entry (the processor's key)
//   t/<sub-topology>/<partition>/m         checkpoint: "<next changelog offset>@<unix ms written>"
//
// The checkpoint is written in the same WriteBatch as the state it describes, so the two never
// disagree. Older stores wrote "<offset>" alone (read as written at an unknown time).
//
// Thread-safety: stateless functions; the KvStore is thread-safe.
#ifndef CYBERSYN_STREAM_TASK_STORE_H_
#define CYBERSYN_STREAM_TASK_STORE_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "common/kv_store.h"

namespace cybersyn::stream {

std::string TaskPrefix(absl::string_view subtopology, int32_t partition);
std::string StatePrefix(absl::string_view task_prefix);  // "<prefix>s/"
std::string CheckpointKey(absl::string_view task_prefix);

struct Checkpoint {
  int64_t next_offset = 0;    // the changelog offset to replay from
  int64_t written_at_ms = 0;  // 0: unknown (an older store)
};
std::string EncodeCheckpoint(const Checkpoint& c);
std::optional<Checkpoint> DecodeCheckpoint(absl::string_view value);

// Deletes every key of a task (state and checkpoint). Errors are the store's.
absl::Status WipeTask(KvStore& store, absl::string_view task_prefix);
// Deletes every key starting with `prefix`; returns how many.
absl::StatusOr<uint64_t> DeletePrefix(KvStore& store, absl::string_view prefix);

}  // namespace cybersyn::stream

#endif  // CYBERSYN_STREAM_TASK_STORE_H_
