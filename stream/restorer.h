// Changelog restore: replays changelog partitions into the local store, each from an offset to
// its end. This is the runtime's one definition of "restored": a partition is restored when a
// read_committed reader has reached the end of its log (partition EOF), so every committed
// transaction up to that moment is in the store, and the store's checkpoint says where the
// next restore starts. Written in batches, each with the checkpoints it reaches, so an
// interrupted restore resumes where it stopped.
//
// Reusable for any compacted topic a role keeps a local copy of (a global table read from every
// partition works the same way: one target per partition).
//
// Thread-safety: one call at a time per reader.
#ifndef CYBERSYN_STREAM_RESTORER_H_
#define CYBERSYN_STREAM_RESTORER_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/kv_store.h"
#include "stream/io.h"

namespace cybersyn::stream {

struct RestoreTarget {
  std::string changelog;
  int32_t partition = 0;
  std::string task_prefix;  // task_store.h
  int64_t from = kOffsetBeginning;
  // Out: the next offset to read (what the checkpoint now says), or -1 when nothing was read.
  int64_t next = -1;
  uint64_t entries = 0;  // out: changelog entries replayed
  // Out: the log no longer covers `from` (recreated, or its start moved past it): the task's
  // local state was wiped and replayed from the beginning.
  bool reset = false;
};

struct RestoreOptions {
  absl::Duration timeout = absl::Minutes(10);
  Clock* clock = Clock::Real();            // stamps the checkpoints
  std::function<void(uint64_t)> progress;  // every 10,000 entries, with the total so far
  std::function<void(const RestoreTarget&)> on_replay;  // each target that has entries to read
};

// Replays every target to its end. DEADLINE_EXCEEDED after `timeout`; the reader's and the
// store's errors as they are.
absl::Status RestoreChangelogs(ChangelogReader& reader, KvStore& store,
                               std::vector<RestoreTarget>& targets,
                               const RestoreOptions& options = {});

}  // namespace cybersyn::stream

#endif  // CYBERSYN_STREAM_RESTORER_H_
