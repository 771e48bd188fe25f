#include "aggregator/windows.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "cybersyn/v1/state.pb.h"

namespace cybersyn::aggregator {

absl::string_view OutcomeReason(Outcome o) {
  switch (o) {
    case Outcome::kApplied:
      return "applied";
    case Outcome::kDuplicate:
      return "duplicate";
    case Outcome::kUnknownNode:
      return "unknown_node";
    case Outcome::kNodeAboveEnterprise:
      return "node_above_enterprise";
    case Outcome::kWrongEnterprise:
      return "wrong_enterprise";
    case Outcome::kUnknownIndicator:
      return "unknown_indicator";
    case Outcome::kNotFinite:
      return "not_finite";
    case Outcome::kBadTimestamp:
      return "bad_timestamp";
    case Outcome::kLate:
      return "late";
  }
  return "unknown";
}

namespace {

// Persisted values carry a one-byte tag so that an empty value can mean "deleted" in the
// changelog even for an all-default proto.
constexpr char kValueTag = 'S';

uint32_t Clamp32(uint64_t v) {
  return v > std::numeric_limits<uint32_t>::max() ? std::numeric_limits<uint32_t>::max()
                                                  : static_cast<uint32_t>(v);
}

void AppendDerived(const Model& model, int node, int64_t window_ms, int64_t start_ms,
                   absl::string_view name, double num, double den, int64_t closed_at_ms,
                   std::vector<Emission>* out) {
  if (den == 0 || !std::isfinite(num / den)) return;
  const double v = num / den;
  Emission e;
  v1::WindowAggregate& a = e.aggregate;
  a.mutable_series()->set_node(model.path(node));
  a.mutable_series()->set_indicator(std::string(name));
  a.mutable_series()->set_window_ms(window_ms);
  a.set_window_start_ms(start_ms);
  a.set_window_end_ms(start_ms + window_ms);
  Stats s;
  s.Add(v, start_ms + window_ms - 1);
  StatsToAggregate(s, Rollup::kLast, &a);
  a.set_level(model.node(node).depth);
  a.set_derived(true);
  a.set_closed_at_ms(closed_at_ms);
  out->push_back(std::move(e));
}

}  // namespace

void DeriveIndices(const Model& model, int node, int64_t window_ms, int64_t start_ms,
                   const Stats* a, const Stats* c, const Stats* p, int64_t closed_at_ms,
                   std::vector<Emission>* out) {
  auto value = [&](Role r, const Stats* s) {
    return RollupValue(model.indicator(model.role_indicator(r)).rollup, *s);
  };
  if (a && c) {
    AppendDerived(model, node, window_ms, start_ms, kProductivity, value(Role::kActuality, a),
                  value(Role::kCapability, c), closed_at_ms, out);
  }
  if (c && p) {
    AppendDerived(model, node, window_ms, start_ms, kLatency, value(Role::kCapability, c),
                  value(Role::kPotentiality, p), closed_at_ms, out);
  }
  if (a && p) {
    AppendDerived(model, node, window_ms, start_ms, kPerformance, value(Role::kActuality, a),
                  value(Role::kPotentiality, p), closed_at_ms, out);
  }
}

PartitionWindows::PartitionWindows(const Model* model, int64_t now_ms)
    : model_(model),
      num_indicators_(static_cast<size_t>(model->num_indicators())),
      num_windows_(static_cast<size_t>(model->num_windows())),
      node_cache_(
          std::clamp<size_t>(std::bit_ceil(2 * static_cast<size_t>(model->num_nodes())), 64, 4096)),
      node_cache_shift_(64 - std::countr_zero(node_cache_.size())),
      last_offer_ms_(now_ms) {
  const size_t slots =
      static_cast<size_t>(model_->num_nodes()) * model_->num_indicators() * model_->num_windows();
  if (slots <= (size_t{1} << 22)) slots_.resize(slots);  // at most 64 MiB
}

int PartitionWindows::IndicatorIndex(absl::string_view name) const {
  // A few indicators: comparing names is cheaper than hashing one.
  const int n = model_->num_indicators();
  if (n > 8) return model_->IndicatorIndex(name);
  for (int i = 0; i < n; ++i) {
    if (model_->indicator(i).name == name) return i;
  }
  return -1;
}

Outcome PartitionWindows::Offer(absl::string_view gateway_id, const v1::Record& r,
                                int key_enterprise, int64_t now_ms) {
  last_offer_ms_ = now_ms;
  // Dedup first: a replayed batch must not be dead-lettered twice either.
  const absl::string_view gw = r.gateway_id().empty() ? gateway_id : r.gateway_id();
  if (last_hwm_ != nullptr && key_enterprise == last_key_enterprise_ && gw == last_gateway_) {
    if (r.sequence() <= *last_hwm_) return Outcome::kDuplicate;
    *last_hwm_ = r.sequence();
  } else {
    dedup_key_.assign(gw.data(), gw.size());
    dedup_key_.push_back('|');
    if (key_enterprise >= 0) dedup_key_.append(model_->path(key_enterprise));
    auto [it, inserted] = gateway_sequence_.try_emplace(dedup_key_, 0);
    last_hwm_ = &it->second;  // valid until the next insert, which replaces it
    last_gateway_.assign(gw.data(), gw.size());
    last_key_enterprise_ = key_enterprise;
    if (!inserted && r.sequence() <= it->second) return Outcome::kDuplicate;
    it->second = r.sequence();
  }
  partition_dirty_ = true;

  const int node = NodeOf(r.node());
  if (node < 0) return Outcome::kUnknownNode;
  const Model::NodeInfo& info = model_->node(node);
  if (info.enterprise < 0) return Outcome::kNodeAboveEnterprise;
  if (key_enterprise >= 0 && info.enterprise != key_enterprise) return Outcome::kWrongEnterprise;
  const int indicator = IndicatorIndex(r.indicator());
  if (indicator < 0) return Outcome::kUnknownIndicator;
  if (!std::isfinite(r.value())) return Outcome::kNotFinite;
  const int64_t t = r.event_time_ms();
  if (t < kMinEventTimeMs || t > now_ms + model_->max_future_ms()) return Outcome::kBadTimestamp;
  if (model_->num_windows() == 0) return Outcome::kApplied;
  const int64_t w0 = model_->window_ms(0);
  if (model_->window_start(0, t) + w0 + model_->grace_ms() <= watermark_ms_) return Outcome::kLate;

  Apply(node, indicator, r.value(), t);
  if (t > max_event_time_ms_) {
    max_event_time_ms_ = t;
    watermark_ms_ = std::max(watermark_ms_, t - model_->allowed_lateness_ms());
  }
  return Outcome::kApplied;
}

int PartitionWindows::NodeOf(absl::string_view path) {
  // Hash: the length and the last (up to) 8 bytes, where sibling paths differ.
  uint64_t tail = 0;
  const size_t n = path.size();
  if (n > 0) std::memcpy(&tail, path.data() + (n >= 8 ? n - 8 : 0), std::min<size_t>(n, 8));
  // The product's top bits depend on every bit of the tail (fibonacci hashing).
  const size_t h = static_cast<size_t>(((tail ^ n) * 0x9E3779B97F4A7C15ull) >> node_cache_shift_);
  NodeCacheEntry& e = node_cache_[h];
  if (e.size == n && std::memcmp(e.path, path.data(), n) == 0) return e.index;
  const int i = model_->NodeIndex(path);
  if (i >= 0 && n <= sizeof(e.path)) {
    std::memcpy(e.path, path.data(), n);
    e.size = static_cast<uint8_t>(n);
    e.index = i;
  }
  return i;
}

PartitionWindows::Open& PartitionWindows::Window(const Key& k) {
  Slot* slot = SlotOf(k);
  Open* open;
  if (slot != nullptr && slot->open != nullptr && slot->start == k.start) {
    open = slot->open;
  } else {
    auto [it, inserted] = windows_.try_emplace(k);
    if (inserted) by_end_[k.start + model_->window_ms(k.window)].push_back(k);
    open = &it->second;
    if (slot != nullptr) *slot = Slot{k.start, open};
  }
  if (!open->dirty) {
    open->dirty = true;
    dirty_.push_back(k);
  }
  return *open;
}

void PartitionWindows::Apply(int node, int indicator, double value, int64_t t) {
  // The own node only: ancestors up to the enterprise are built at close (see the header).
  for (int w = 0; w < model_->num_windows(); ++w) {
    Window(Key{node, static_cast<int16_t>(indicator), static_cast<int16_t>(w),
               model_->window_start(w, t)})
        .stats.Add(value, t);
  }
}

void PartitionWindows::CloseDue(int64_t now_ms, std::vector<Emission>* out) {
  struct RoleStats {
    const Stats* s[4] = {nullptr, nullptr, nullptr, nullptr};
  };
  std::map<std::tuple<int, int, int64_t>, RoleStats> roles;  // (node, window, start)
  // Every closing window and the ancestors built from them, sorted so that within one
  // (window, start, indicator) a parent (smaller pre-order index) precedes its children.
  struct Part {
    Key key;
    Stats stats;                                         // own records, then the merged result
    std::vector<std::pair<int32_t, const Stats*>> kids;  // children's results, descending
  };
  auto less = [](const Key& a, const Key& b) {
    return std::tie(a.window, a.start, a.indicator, a.node) <
           std::tie(b.window, b.start, b.indicator, b.node);
  };
  std::vector<Part> closed;
  while (!by_end_.empty() && by_end_.begin()->first + model_->grace_ms() <= watermark_ms_) {
    for (const Key& k : by_end_.begin()->second) {
      auto it = windows_.find(k);
      if (it == windows_.end()) continue;
      if (Slot* slot = SlotOf(k); slot != nullptr && slot->open == &it->second) *slot = Slot{};
      if (it->second.persisted) deleted_.push_back(k);
      closed.push_back(Part{k, it->second.stats, {}});
      windows_.erase(it);
    }
    by_end_.erase(by_end_.begin());
  }
  // An empty part for each ancestor up to the enterprise (merged into one entry per key below).
  const size_t own = closed.size();
  for (size_t i = 0; i < own; ++i) {
    const Key k = closed[i].key;
    if (model_->indicator(k.indicator).rollup == Rollup::kNone) continue;
    for (int n = k.node; model_->node(n).enterprise >= 0 && n != model_->node(n).enterprise;) {
      n = model_->node(n).parent;
      closed.push_back(Part{Key{n, k.indicator, k.window, k.start}, Stats{}, {}});
    }
  }
  std::sort(closed.begin(), closed.end(),
            [&](const Part& a, const Part& b) { return less(a.key, b.key); });
  size_t kept = 0;
  for (size_t i = 0; i < closed.size(); ++i) {
    if (kept > 0 && closed[kept - 1].key == closed[i].key) {
      closed[kept - 1].stats.Merge(closed[i].stats);  // an own window and empty placeholders
    } else {
      if (kept != i) closed[kept] = std::move(closed[i]);
      ++kept;
    }
  }
  closed.resize(kept);  // no reallocation from here on: kids point into it
  // Bottom-up: in descending order every child comes before its parent.
  for (size_t i = closed.size(); i-- > 0;) {
    Part& part = closed[i];
    const Key& k = part.key;
    if (!part.kids.empty()) {
      // Own window first (the parent's index is below its children's), then children ascending.
      std::vector<std::pair<int32_t, const Stats*>> parts;
      parts.reserve(part.kids.size() + 1);
      if (!part.stats.empty()) parts.emplace_back(k.node, &part.stats);
      parts.insert(parts.end(), part.kids.rbegin(), part.kids.rend());
      part.stats = MergeInNodeOrder(parts, [](const Stats* s) -> const Stats& { return *s; });
    }
    const Model::NodeInfo& info = model_->node(k.node);
    if (model_->indicator(k.indicator).rollup == Rollup::kNone || k.node == info.enterprise ||
        info.enterprise < 0) {
      continue;
    }
    const Key pk{info.parent, k.indicator, k.window, k.start};
    auto parent = std::lower_bound(closed.begin(), closed.begin() + static_cast<ptrdiff_t>(i), pk,
                                   [&](const Part& a, const Key& b) { return less(a.key, b); });
    if (parent == closed.begin() + static_cast<ptrdiff_t>(i) || !(parent->key == pk)) continue;
    parent->kids.emplace_back(k.node, &part.stats);  // (always present: added above)
  }
  for (const Part& part : closed) {
    const Key& k = part.key;
    const Stats& stats = part.stats;
    const Model::NodeInfo& info = model_->node(k.node);
    const IndicatorConfig& ind = model_->indicator(k.indicator);
    const int64_t size = model_->window_ms(k.window);
    Emission e;
    v1::WindowAggregate& a = e.aggregate;
    a.mutable_series()->set_node(model_->path(k.node));
    a.mutable_series()->set_indicator(ind.name);
    a.mutable_series()->set_window_ms(size);
    a.set_window_start_ms(k.start);
    a.set_window_end_ms(k.start + size);
    StatsToAggregate(stats, ind.rollup, &a);
    if (info.children == 0) {
      a.set_children_reported(Clamp32(stats.count));
      a.set_children_expected(0);
    } else {
      a.set_children_reported(static_cast<uint32_t>(part.kids.size()));
      a.set_children_expected(static_cast<uint32_t>(info.children));
    }
    a.set_level(info.depth);
    a.set_closed_at_ms(now_ms);
    if (k.node == info.enterprise && info.parent >= 0 && ind.rollup != Rollup::kNone) {
      e.rollup_parent = model_->path(info.parent);
    }
    out->push_back(std::move(e));
    const Role r = ind.role;
    if (r != Role::kNone && model_->role_indicator(r) == k.indicator) {
      roles[{k.node, k.window, k.start}].s[static_cast<int>(r)] = &stats;
    }
  }
  for (const auto& [k, rs] : roles) {
    const auto& [node, window, start] = k;
    DeriveIndices(*model_, node, model_->window_ms(window), start,
                  rs.s[static_cast<int>(Role::kActuality)],
                  rs.s[static_cast<int>(Role::kCapability)],
                  rs.s[static_cast<int>(Role::kPotentiality)], now_ms, out);
  }
}

void PartitionWindows::AdvanceIdle(int64_t now_ms, bool caught_up, std::vector<Emission>* out) {
  if (!caught_up || now_ms - last_offer_ms_ < model_->idle_advance_ms()) return;
  const int64_t target = now_ms - model_->allowed_lateness_ms();
  if (target > watermark_ms_) {
    watermark_ms_ = target;
    partition_dirty_ = true;
  }
  CloseDue(now_ms, out);
}

std::string PartitionWindows::KeyString(const Key& k) const {
  return absl::StrCat("w/", model_->window_ms(k.window), "/", k.start, "/",
                      model_->indicator(k.indicator).name, "/", model_->path(k.node));
}

std::string PartitionWindows::WindowValue(const Key& k, const Open& w) const {
  v1::WindowState s;
  s.set_node(model_->path(k.node));
  s.set_indicator(model_->indicator(k.indicator).name);
  s.set_window_ms(model_->window_ms(k.window));
  s.set_window_start_ms(k.start);
  StatsToProto(w.stats, &s);  // no children: an own-node window (see Load)
  std::string out(1, kValueTag);
  s.AppendToString(&out);
  return out;
}

std::string PartitionWindows::PartitionValue() const {
  v1::PartitionState p;
  p.set_max_event_time_ms(max_event_time_ms_);
  p.set_watermark_ms(watermark_ms_);
  for (const auto& [gw, seq] : gateway_sequence_) (*p.mutable_gateway_sequence())[gw] = seq;
  std::string out(1, kValueTag);
  p.AppendToString(&out);
  return out;
}

void PartitionWindows::TakeChanges(std::vector<StateChange>* out) {
  for (const Key& k : deleted_) out->push_back({KeyString(k), ""});
  deleted_.clear();
  for (std::string& key : legacy_deleted_) out->push_back({std::move(key), ""});
  legacy_deleted_.clear();
  for (const Key& k : dirty_) {
    auto it = windows_.find(k);
    if (it == windows_.end() || !it->second.dirty) continue;  // closed since, or listed twice
    it->second.dirty = false;
    it->second.persisted = true;
    out->push_back({KeyString(k), WindowValue(k, it->second)});
  }
  dirty_.clear();
  if (partition_dirty_) {
    out->push_back({std::string(kPartitionStateKey), PartitionValue()});
    partition_dirty_ = false;
  }
}

absl::Status PartitionWindows::Load(absl::string_view key, absl::string_view value) {
  if (value.empty() || value[0] != kValueTag) {
    return absl::DataLossError(absl::StrCat("state entry ", key, ": bad value tag"));
  }
  value.remove_prefix(1);
  if (key == kPartitionStateKey) {
    v1::PartitionState p;
    if (!p.ParseFromArray(value.data(), static_cast<int>(value.size()))) {
      return absl::DataLossError("partition state does not parse");
    }
    max_event_time_ms_ = p.max_event_time_ms();
    watermark_ms_ = p.watermark_ms();
    gateway_sequence_.clear();
    last_hwm_ = nullptr;
    for (const auto& [gw, seq] : p.gateway_sequence()) gateway_sequence_[gw] = seq;
    return absl::OkStatus();
  }
  v1::WindowState s;
  if (!absl::StartsWith(key, "w/") ||
      !s.ParseFromArray(value.data(), static_cast<int>(value.size()))) {
    return absl::DataLossError(absl::StrCat("state entry ", key, " does not parse"));
  }
  const int node = model_->NodeIndex(s.node());
  const int indicator = model_->IndicatorIndex(s.indicator());
  const int window = model_->WindowIndex(s.window_ms());
  if (node < 0 || indicator < 0 || window < 0) return absl::OkStatus();
  if (s.window_start_ms() < 0 || s.window_start_ms() > kMaxWindowStartMs) {  // found by fuzz/
    return absl::DataLossError(
        absl::StrCat("state entry ", key, ": window start ", s.window_start_ms(), " out of range"));
  }
  if (s.children_size() > 0) {
    // An older version's ancestor window: it holds its children's records, which their own
    // windows hold too. Keeping it would count them twice; it is rebuilt from them at close.
    ++legacy_windows_dropped_;
    legacy_deleted_.emplace_back(key);
    return absl::OkStatus();
  }
  const Key k{node, static_cast<int16_t>(indicator), static_cast<int16_t>(window),
              s.window_start_ms()};
  auto [it, inserted] = windows_.try_emplace(k);
  if (inserted) by_end_[k.start + model_->window_ms(window)].push_back(k);
  it->second.stats = StatsFromProto(s);
  it->second.persisted = true;
  return absl::OkStatus();
}

const Stats* PartitionWindows::FindForTest(absl::string_view node, absl::string_view indicator,
                                           int64_t window_ms, int64_t t_ms) const {
  const int n = model_->NodeIndex(node);
  const int i = model_->IndicatorIndex(indicator);
  const int w = model_->WindowIndex(window_ms);
  if (n < 0 || i < 0 || w < 0) return nullptr;
  auto it = windows_.find(
      Key{n, static_cast<int16_t>(i), static_cast<int16_t>(w), WindowStart(t_ms, window_ms)});
  return it == windows_.end() ? nullptr : &it->second.stats;
}

}  // namespace cybersyn::aggregator
