// Model: the configuration the aggregator needs, interned into small integers so the per-record
// path does hash lookups on ints instead of strings: node index = position in the hierarchy's
// pre-order, indicator index = position in the config, window index = position in
// aggregator.windows.
// Thread-safety: immutable after construction; share one instance across threads.
#ifndef CYBERSYN_AGGREGATOR_MODEL_H_
#define CYBERSYN_AGGREGATOR_MODEL_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "aggregator/window_state.h"
#include "common/config.h"

namespace cybersyn::aggregator {

// Names of Beer's derived indices, emitted as indicators with WindowAggregate.derived = true.
inline constexpr absl::string_view kProductivity = "productivity";  // A / C
inline constexpr absl::string_view kLatency = "latency";            // C / P
inline constexpr absl::string_view kPerformance = "performance";    // A / P

class Model {
 public:
  struct NodeInfo {
    const Hierarchy::Node* node = nullptr;
    int parent = -1;      // node index, -1 for the root
    int enterprise = -1;  // ancestor-or-self at the enterprise level; -1 above it
    int depth = 0;
    int children = 0;
  };

  // REQUIRES: config.hierarchy != nullptr and a level named "enterprise".
  explicit Model(std::shared_ptr<const Config> config);

  const Config& config() const { return *config_; }
  const AggregatorConfig& aggregator() const { return config_->aggregator; }

  int NodeIndex(absl::string_view path) const;       // -1 if unknown
  int IndicatorIndex(absl::string_view name) const;  // -1 if unknown
  int WindowIndex(int64_t window_ms) const;          // -1 if not configured

  const NodeInfo& node(int i) const { return nodes_[i]; }
  const std::string& path(int i) const { return nodes_[i].node->path; }
  int num_nodes() const { return static_cast<int>(nodes_.size()); }
  const IndicatorConfig& indicator(int i) const { return config_->indicators[i]; }
  int num_indicators() const { return static_cast<int>(config_->indicators.size()); }
  int64_t window_ms(int w) const { return windows_ms_[w]; }
  // Start of window size `w`'s window containing t (WindowStart without a division).
  int64_t window_start(int w, int64_t t_ms) const { return window_sizes_[w].Start(t_ms); }
  int num_windows() const { return static_cast<int>(windows_ms_.size()); }
  // Indicator index of the A/C/P role, or -1 when not configured.
  int role_indicator(Role r) const;

  int64_t allowed_lateness_ms() const { return lateness_ms_; }
  int64_t grace_ms() const { return grace_ms_; }
  int64_t idle_advance_ms() const { return idle_ms_; }
  int64_t max_future_ms() const { return max_future_ms_; }
  // How long a roll-up window is kept after it was published, to absorb re-published children.
  int64_t rollup_retention_ms() const;

 private:
  std::shared_ptr<const Config> config_;
  std::vector<NodeInfo> nodes_;
  absl::flat_hash_map<std::string, int> node_index_;
  absl::flat_hash_map<std::string, int> indicator_index_;
  std::vector<int64_t> windows_ms_;
  std::vector<WindowSizeMs> window_sizes_;  // the same, for window_start
  int roles_[4] = {-1, -1, -1, -1};
  int64_t lateness_ms_ = 0, grace_ms_ = 0, idle_ms_ = 0, max_future_ms_ = 0;
};

}  // namespace cybersyn::aggregator

#endif  // CYBERSYN_AGGREGATOR_MODEL_H_
