// Roll-up above the enterprise (aggregator stage 2): enterprise -> sector -> nation. Stage 1
// publishes every closed enterprise window to the roll-up topic keyed by its parent's path, so
// one partition (one RollupWindows) sees every child of a parent. A parent window keeps the
// latest contribution of each child (replaced, never added, so a re-published child cannot be
// double counted) and is published when every child in the hierarchy has reported, or, when
// some never do, after idle_advance + grace of processing time with the completeness it has.
// A child arriving after publication re-publishes the parent (consumers keep the last value per
// series and window). Published parents with a parent of their own feed the next level the same
// way (the recursion). Merges run in child order, so the result does not depend on arrival order.
//
// Thread-safety: not thread-safe; one owner thread.
#ifndef CYBERSYN_AGGREGATOR_ROLLUP_H_
#define CYBERSYN_AGGREGATOR_ROLLUP_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "aggregator/model.h"
#include "aggregator/window_state.h"
#include "aggregator/windows.h"
#include "cybersyn/v1/aggregate.pb.h"

namespace cybersyn::aggregator {

class RollupWindows {
 public:
  // `model` must outlive this.
  explicit RollupWindows(const Model* model);

  // Offers one child's closed window. INVALID_ARGUMENT (nothing changes) when it does not fit
  // the config: unknown node or indicator, a root, an indicator that does not roll up, a window
  // size not configured.
  absl::Status Offer(const v1::WindowAggregate& child, int64_t now_ms, std::vector<Emission>* out);
  // Publishes incomplete parents whose deadline passed and forgets expired ones.
  void Tick(int64_t now_ms, std::vector<Emission>* out);

  void TakeChanges(std::vector<StateChange>* out);
  absl::Status Load(absl::string_view key, absl::string_view value);
  size_t open_windows() const { return windows_.size(); }

 private:
  struct Key {
    int32_t node;
    int16_t indicator;
    int16_t window;
    int64_t start;
    bool operator==(const Key&) const = default;
    template <typename H>
    friend H AbslHashValue(H h, const Key& k) {
      return H::combine(std::move(h), k.node, k.indicator, k.window, k.start);
    }
  };
  struct Child {
    Stats stats;
    uint32_t reported = 0;
    uint32_t expected = 0;
  };
  struct Parent {
    std::map<int32_t, Child> children;  // by node index: merge order is fixed
    int64_t emit_deadline_ms = 0;
    int64_t expire_at_ms = 0;
    bool emitted = false;
  };

  void Emit(const Key& k, Parent& p, int64_t now_ms, std::vector<Emission>* out);
  Stats Merged(const Parent& p) const;
  std::string KeyString(const Key& k) const;
  std::string Value(const Key& k, const Parent& p) const;

  const Model* model_;
  absl::flat_hash_map<Key, Parent> windows_;
  absl::flat_hash_set<Key> dirty_;
  std::vector<Key> deleted_;
};

}  // namespace cybersyn::aggregator

#endif  // CYBERSYN_AGGREGATOR_ROLLUP_H_
