#include "aggregator/model.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>

namespace cybersyn::aggregator {

Model::Model(std::shared_ptr<const Config> config) : config_(std::move(config)) {
  if (config_ == nullptr || config_->hierarchy == nullptr) {
    std::fprintf(stderr, "aggregator::Model: config without a hierarchy\n");
    std::abort();
  }
  const Hierarchy& h = *config_->hierarchy;
  const int enterprise_depth = h.LevelIndex(Hierarchy::kEnterpriseLevel);
  const auto& all = h.nodes();
  nodes_.resize(all.size());
  absl::flat_hash_map<const Hierarchy::Node*, int> by_ptr;
  for (size_t i = 0; i < all.size(); ++i) {
    by_ptr[all[i]] = static_cast<int>(i);
    node_index_[all[i]->path] = static_cast<int>(i);
  }
  for (size_t i = 0; i < all.size(); ++i) {
    NodeInfo& n = nodes_[i];
    n.node = all[i];
    n.parent = all[i]->parent ? by_ptr[all[i]->parent] : -1;
    n.depth = all[i]->depth;
    n.children = static_cast<int>(all[i]->children.size());
    if (enterprise_depth >= 0 && n.depth >= enterprise_depth) {
      const Hierarchy::Node* e = all[i];
      while (e->depth > enterprise_depth) e = e->parent;
      n.enterprise = by_ptr[e];
    }
  }
  for (size_t i = 0; i < config_->indicators.size(); ++i) {
    indicator_index_[config_->indicators[i].name] = static_cast<int>(i);
    const Role r = config_->indicators[i].role;
    if (r != Role::kNone && roles_[static_cast<int>(r)] < 0) {
      roles_[static_cast<int>(r)] = static_cast<int>(i);
    }
  }
  const AggregatorConfig& a = config_->aggregator;
  for (absl::Duration d : a.windows) windows_ms_.push_back(absl::ToInt64Milliseconds(d));
  std::sort(windows_ms_.begin(), windows_ms_.end());
  for (int64_t ms : windows_ms_) window_sizes_.emplace_back(ms);
  lateness_ms_ = absl::ToInt64Milliseconds(a.allowed_lateness);
  grace_ms_ = absl::ToInt64Milliseconds(a.grace);
  idle_ms_ = absl::ToInt64Milliseconds(a.idle_advance);
  max_future_ms_ = absl::ToInt64Milliseconds(config_->gateway.max_future);
}

int Model::NodeIndex(absl::string_view path) const {
  auto it = node_index_.find(path);
  return it == node_index_.end() ? -1 : it->second;
}

int Model::IndicatorIndex(absl::string_view name) const {
  auto it = indicator_index_.find(name);
  return it == indicator_index_.end() ? -1 : it->second;
}

int Model::WindowIndex(int64_t window_ms) const {
  for (int i = 0; i < num_windows(); ++i) {
    if (windows_ms_[i] == window_ms) return i;
  }
  return -1;
}

int Model::role_indicator(Role r) const { return roles_[static_cast<int>(r)]; }

int64_t Model::rollup_retention_ms() const {
  const int64_t largest = windows_ms_.empty() ? 0 : windows_ms_.back();
  return largest + lateness_ms_ + grace_ms_ + idle_ms_;
}

}  // namespace cybersyn::aggregator
