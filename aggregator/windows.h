// Event-time tumbling windows of one input partition (aggregator stage 1): validation, dedup on
// (gateway id, sequence), window assignment for every configured size at the record's own node,
// the watermark, closing, and the state changes to persist.
//
// Roll-up to the enterprise: records are keyed by enterprise, so every node from a unit up to
// its enterprise lives in one partition. Only the record's own node keeps a window (the state and
// the changelog hold own-node windows only); when windows close, each ancestor's window up to the
// enterprise is built from its children's closing windows (and its own, when records name the
// ancestor itself), merged in ascending node order like stage 2 (MergeInNodeOrder). All windows
// of one size and start end together, so every part of a parent closes in the same CloseDue.
//   - Completeness of an ancestor = its direct children with a window at close (children that
//     had a record in the window, directly or below them); of a unit = its record count.
//   - Last value = by (event time, value), see Stats::Add: independent of arrival order.
//   - Restore from an older version, which persisted ancestor windows holding their children's
//     records too (recognisable by a non-empty children list): such an entry is dropped on Load
//     (counted in legacy_windows_dropped(), tombstoned by the next TakeChanges) and rebuilt from
//     the children at close, so nothing is counted twice. Records that named that ancestor
//     itself within that one window are lost with it.
//
// Time: the watermark is max(event time seen) - allowed_lateness, advanced record by record so
// that whether a record is late depends only on the partition's content, never on how it was
// split into poll batches (a restarted process sees other batch boundaries). A window [s, e)
// closes once watermark >= e + grace. A record whose smallest window is already closed is late
// (it is applied to no window, so every window size sees the same records). An idle partition
// (caught up with the log and nothing offered for idle_advance of clock time) moves its watermark
// to now - allowed_lateness, so windows of silent plants still close.
//
// Thread-safety: not thread-safe; one owner thread (the processor's loop).
#ifndef CYBERSYN_AGGREGATOR_WINDOWS_H_
#define CYBERSYN_AGGREGATOR_WINDOWS_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/container/node_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "aggregator/model.h"
#include "aggregator/window_state.h"
#include "cybersyn/v1/aggregate.pb.h"
#include "cybersyn/v1/record.pb.h"
#include "stream/state_change.h"

namespace cybersyn::aggregator {

// What happened to one offered record. Every outcome but kApplied and kDuplicate is
// dead-lettered with OutcomeReason() as its reason.
enum class Outcome {
  kApplied,
  kDuplicate,
  kUnknownNode,
  kNodeAboveEnterprise,
  kWrongEnterprise,
  kUnknownIndicator,
  kNotFinite,
  kBadTimestamp,
  kLate,
};
absl::string_view OutcomeReason(Outcome o);  // "applied", "duplicate", "unknown_node", ...

// One change of persisted state: `value` empty deletes `key`.
using StateChange = stream::StateChange;

// A closed window to publish to <prefix>.aggregates (keyed by aggregate.series().node); when
// `rollup_parent` is set it is also a child contribution for that parent's roll-up.
struct Emission {
  v1::WindowAggregate aggregate;
  std::string rollup_parent;
};

// Beer's indices for one node and window from the role indicators' stats (any may be null;
// an index is emitted only when both its inputs exist and its denominator is non-zero).
void DeriveIndices(const Model& model, int node, int64_t window_ms, int64_t start_ms,
                   const Stats* actuality, const Stats* capability, const Stats* potentiality,
                   int64_t closed_at_ms, std::vector<Emission>* out);

// Earliest event time accepted: 2000-01-01T00:00:00Z.
inline constexpr int64_t kMinEventTimeMs = 946'684'800'000;
// Latest window start a state entry may carry (10000-01-01T00:00:00Z): a later one is corrupt,
// and start + size would overflow.
inline constexpr int64_t kMaxWindowStartMs = 253'402'300'800'000;

class PartitionWindows {
 public:
  // `model` must outlive this. `now_ms` starts the idle timer.
  PartitionWindows(const Model* model, int64_t now_ms);

  // Offers one record. `gateway_id` is the batch's (or the record's own); `key_enterprise` is
  // the node index of the Kafka key's enterprise, or -1 when the key names none.
  //
  // Dedup: a gateway numbers all its records with one increasing sequence but batches them per
  // enterprise, and several enterprises may share a partition, so the partition sees one
  // gateway's sequences interleaved across enterprises. Order holds per (gateway, enterprise)
  // (one Kafka key, one idempotent producer), so that is the high-water mark's key.
  Outcome Offer(absl::string_view gateway_id, const v1::Record& record, int key_enterprise,
                int64_t now_ms);

  // Closes every window the watermark has passed (end + grace <= watermark), appending its
  // aggregate (and derived indices) to `out`.
  void CloseDue(int64_t now_ms, std::vector<Emission>* out);
  // If `caught_up` and nothing was offered for idle_advance, moves the watermark to
  // now - allowed_lateness and closes what became due.
  void AdvanceIdle(int64_t now_ms, bool caught_up, std::vector<Emission>* out);

  // Moves the changes since the last call to `out` (window puts/deletes, partition state). A
  // window both opened and closed since the last call appears in neither.
  void TakeChanges(std::vector<StateChange>* out);
  // Applies one persisted entry (restore). Entries for nodes, indicators or window sizes no
  // longer configured are dropped with OK, and so are an older version's rolled-up ancestor
  // windows (counted, tombstoned by the next TakeChanges); unparseable entries are DATA_LOSS.
  absl::Status Load(absl::string_view key, absl::string_view value);
  // Rolled-up ancestor windows of an older version that Load dropped.
  uint64_t legacy_windows_dropped() const { return legacy_windows_dropped_; }

  int64_t watermark_ms() const { return watermark_ms_; }
  size_t open_windows() const { return windows_.size(); }
  // Open window of (node path, indicator, window_ms) containing t, or null (for tests). Holds
  // the node's own records only: ancestors are built at close.
  const Stats* FindForTest(absl::string_view node, absl::string_view indicator, int64_t window_ms,
                           int64_t t_ms) const;

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
  struct Open {
    Stats stats;         // the node's own records
    bool dirty = false;  // listed in dirty_ (changed since the last TakeChanges)
    // Handed out by TakeChanges or loaded: closing needs a tombstone. A window that opens and
    // closes between two TakeChanges (a catching-up partition) never reaches the changelog.
    bool persisted = false;
  };
  // The open window a series last touched per window size: most records of a series fall into
  // the window its previous record did, so the hot path skips the hash lookup.
  struct Slot {
    int64_t start = 0;
    Open* open = nullptr;
  };

  void Apply(int node, int indicator, double value, int64_t t);
  Open& Window(const Key& k);
  Slot* SlotOf(const Key& k) {
    if (slots_.empty()) return nullptr;
    return &slots_[(static_cast<size_t>(k.node) * num_indicators_ + k.indicator) * num_windows_ +
                   k.window];
  }
  int IndicatorIndex(absl::string_view name) const;
  std::string KeyString(const Key& k) const;
  std::string WindowValue(const Key& k, const Open& w) const;
  std::string PartitionValue() const;

  const Model* model_;
  size_t num_indicators_;  // the model's, for SlotOf
  size_t num_windows_;
  int64_t max_event_time_ms_ = kMinEventTimeMs;
  int64_t watermark_ms_ = kMinEventTimeMs;
  // "<gateway id>|<enterprise index>" -> highest sequence seen.
  absl::flat_hash_map<std::string, uint64_t> gateway_sequence_;
  std::string dedup_key_;  // scratch
  // The entry of the last (gateway id, key enterprise) seen: consecutive records of a batch
  // share it. Reset whenever gateway_sequence_ may rehash.
  uint64_t* last_hwm_ = nullptr;
  std::string last_gateway_;
  int last_key_enterprise_ = -2;
  // NodeIndex cache, direct-mapped by a cheap hash of the path. An entry holds a copy of the
  // path (checked on a hit) so that a hit touches only the cache, not the hierarchy's nodes;
  // longer paths always take the hash-map lookup.
  struct NodeCacheEntry {
    char path[27];
    uint8_t size = 0xff;  // 0xff: empty
    int32_t index = -1;
  };
  int NodeOf(absl::string_view path);
  std::vector<NodeCacheEntry> node_cache_;  // a power of two >= 2 x nodes, in [64, 4096]
  int node_cache_shift_;                    // 64 - log2(node_cache_.size())
  // Pointer-stable (Slot and Apply hold pointers into it).
  absl::node_hash_map<Key, Open> windows_;
  std::vector<Slot> slots_;  // by (node, indicator, window); empty when that would be too big
  std::map<int64_t, std::vector<Key>> by_end_;  // window end -> windows ending then
  int64_t last_offer_ms_;

  std::vector<Key> dirty_;  // windows whose Open::dirty is set (some may have closed since)
  std::vector<Key> deleted_;
  std::vector<std::string> legacy_deleted_;  // keys of dropped legacy entries, to tombstone
  uint64_t legacy_windows_dropped_ = 0;
  bool partition_dirty_ = false;
};

// Changelog/state key of the partition's progress entry.
inline constexpr absl::string_view kPartitionStateKey = "p";

}  // namespace cybersyn::aggregator

#endif  // CYBERSYN_AGGREGATOR_WINDOWS_H_
