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
// Entries keep their detections and stay after they resolve (until Prune), so a decision "as of"
// window W reads the same signals and departures however far ahead the owner has gone since.
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
  // One detection of a signal (its window, observed, forecast).
  struct Detected {
    int64_t window_start_ms = 0;
    double observed = 0;
    double forecast = 0;
  };
  struct Entry {
    v1::Signal signal;  // without history; its latest state
    int32_t from_partition = 0;
    // Oldest first, at most kMaxDetections: a decision reads the signal as it stood at the
    // window it is "as of", not as it stands when the decision happens to be taken.
    std::vector<Detected> detections;
    bool resolved = false;  // resolved entries stay until Prune: a replay may still ask about them
  };
  static constexpr size_t kMaxDetections = 16;

  // The latest detection of `e` whose window ends at or before `until_ms`; null when none.
  static const Detected* AsOf(const Entry& e, int64_t until_ms);
  // (window ms, depth) -> covered to (a window end, ms).
  using Progress = std::map<std::pair<int64_t, int32_t>, int64_t>;

  // Applies a task's update: a signal's entry takes its latest state and adds its detection
  // (state RESOLVED marks it resolved), progress replaces that task's progress per (size, depth)
  // where it moves forward.
  void Apply(const v1::ViewUpdate& update);
  // Drops resolved entries whose last detection ended before `before_ms`.
  void Prune(int64_t before_ms);

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
