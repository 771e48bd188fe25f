// SharedView: one alerter task's replica of every task's open signals and progress, the view
// that attribution across nodes reads (docs/attribution.md, "The shared view").
//
// Every task broadcasts its signals' transitions (raised, updated, resolved) and its progress as
// ViewUpdate commands to every partition of <prefix>.commands, which is co-partitioned with
// <prefix>.aggregates: each task reads the updates in its own input, in log order, and keeps
// them in its own changelog ("v/<signal id>", "g/<partition>"). The view a task decides with is
// therefore a function of its input log: a restore reads it back with the task's state, and a
// replay sees the same view at the same input offset.
//
// Progress is per (window size, depth): the window end up to which every series of that size
// at that depth that the task owns has been processed and decided. Besides, each task reports
// its watermark (depth kWatermarkDepth): the newest window end it has processed. A (size, depth)
// the task has reported nothing of is covered only up to its watermark: a task that had no
// series when it reported may get some later (its aggregates had not arrived yet), so "owns
// none" is never a claim about windows it has not reached. A task that has reported no
// watermark (no series yet) covers nothing.
//
// Thread-safety: none (owned by one task's processor).
#ifndef CYBERSYN_ALERTER_SHARED_VIEW_H_
#define CYBERSYN_ALERTER_SHARED_VIEW_H_

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/btree_set.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "cybersyn/v1/command.pb.h"
#include "cybersyn/v1/signal.pb.h"
#include "stream/state_change.h"

namespace cybersyn::alerter {

inline constexpr absl::string_view kViewSignalKeyPrefix = "v/";
inline constexpr absl::string_view kViewProgressKeyPrefix = "g/";
// The depth of a task's watermark entry in its progress (window size 0).
inline constexpr int32_t kWatermarkDepth = -1;

class SharedView {
 public:
  struct Entry {
    v1::Signal signal;  // without history
    int32_t from_partition = 0;
  };
  // (window ms, depth) -> covered to (a window end, ms).
  using Progress = std::map<std::pair<int64_t, int32_t>, int64_t>;

  // Applies a task's update: signals replace or (state RESOLVED) drop their entries, progress
  // replaces that task's progress per (size, depth) where it moves forward.
  void Apply(const v1::ViewUpdate& update);

  // Whether every one of `partitions` tasks has processed, at every (size, depth) that
  // `needed(window_ms, depth)` selects, up to at least `until_ms` (`needed` is never asked about
  // the watermark entry).
  template <typename Needed>
  bool Covers(int partitions, int64_t until_ms, Needed needed) const {
    for (int q = 0; q < partitions; ++q) {
      auto it = progress_.find(q);
      if (it == progress_.end()) return false;
      auto mark = it->second.find({0, kWatermarkDepth});
      if (mark == it->second.end() || mark->second < until_ms) return false;
      for (const auto& [key, covered] : it->second) {
        if (key.second != kWatermarkDepth && needed(key.first, key.second) && covered < until_ms) {
          return false;
        }
      }
    }
    return true;
  }

  const absl::flat_hash_map<std::string, Entry>& signals() const { return signals_; }
  const std::map<int32_t, Progress>& progress() const { return progress_; }

  // Restore: `key` is a full state key with one of the prefixes above.
  absl::Status Load(absl::string_view key, absl::string_view value);
  // Entries changed since the last call (an empty value deletes).
  void TakeChanges(std::vector<stream::StateChange>* out);

 private:
  absl::flat_hash_map<std::string, Entry> signals_;
  std::map<int32_t, Progress> progress_;
  absl::btree_set<std::string> dirty_signals_;
  absl::btree_set<int32_t> dirty_progress_;
};

}  // namespace cybersyn::alerter

#endif  // CYBERSYN_ALERTER_SHARED_VIEW_H_
