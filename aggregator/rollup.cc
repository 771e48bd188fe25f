#include "aggregator/rollup.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "cybersyn/v1/state.pb.h"

namespace cybersyn::aggregator {
namespace {
constexpr char kValueTag = 'S';
}  // namespace

RollupWindows::RollupWindows(const Model* model) : model_(model) {}

absl::Status RollupWindows::Offer(const v1::WindowAggregate& child, int64_t now_ms,
                                  std::vector<Emission>* out) {
  const int c = model_->NodeIndex(child.series().node());
  if (c < 0) return absl::InvalidArgumentError("unknown_node");
  const int parent = model_->node(c).parent;
  if (parent < 0) return absl::InvalidArgumentError("node_is_root");
  const int indicator = model_->IndicatorIndex(child.series().indicator());
  if (indicator < 0) return absl::InvalidArgumentError("unknown_indicator");
  if (model_->indicator(indicator).rollup == Rollup::kNone) {
    return absl::InvalidArgumentError("indicator_does_not_roll_up");
  }
  const int window = model_->WindowIndex(child.series().window_ms());
  if (window < 0 ||
      WindowStart(child.window_start_ms(), child.series().window_ms()) != child.window_start_ms()) {
    return absl::InvalidArgumentError("unknown_window");
  }
  const Key k{parent, static_cast<int16_t>(indicator), static_cast<int16_t>(window),
              child.window_start_ms()};
  auto [it, inserted] = windows_.try_emplace(k);
  Parent& p = it->second;
  if (inserted) {
    p.emit_deadline_ms = now_ms + model_->idle_advance_ms() + model_->grace_ms();
  }
  Child& ch = p.children[c];
  ch.stats = StatsFromAggregate(child);
  ch.reported = child.children_reported();
  ch.expected = child.children_expected();
  dirty_.insert(k);
  const size_t expected = static_cast<size_t>(model_->node(parent).children);
  if (p.emitted || p.children.size() >= expected) Emit(k, p, now_ms, out);
  return absl::OkStatus();
}

Stats RollupWindows::Merged(const Parent& p) const {
  return MergeInNodeOrder(p.children, [](const Child& ch) -> const Stats& { return ch.stats; });
}

void RollupWindows::Emit(const Key& k, Parent& p, int64_t now_ms, std::vector<Emission>* out) {
  const Model::NodeInfo& info = model_->node(k.node);
  const IndicatorConfig& ind = model_->indicator(k.indicator);
  const int64_t size = model_->window_ms(k.window);
  const Stats merged = Merged(p);
  Emission e;
  v1::WindowAggregate& a = e.aggregate;
  a.mutable_series()->set_node(model_->path(k.node));
  a.mutable_series()->set_indicator(ind.name);
  a.mutable_series()->set_window_ms(size);
  a.set_window_start_ms(k.start);
  a.set_window_end_ms(k.start + size);
  StatsToAggregate(merged, ind.rollup, &a);
  a.set_children_reported(static_cast<uint32_t>(p.children.size()));
  a.set_children_expected(static_cast<uint32_t>(info.children));
  a.set_level(info.depth);
  a.set_closed_at_ms(now_ms);
  if (info.parent >= 0) e.rollup_parent = model_->path(info.parent);
  out->push_back(std::move(e));
  p.emitted = true;
  p.expire_at_ms = now_ms + model_->rollup_retention_ms();
  dirty_.insert(k);

  // Beer's indices that involve this indicator, when their other input was published too.
  const Role role = ind.role;
  if (role == Role::kNone || model_->role_indicator(role) != k.indicator) return;
  Stats others[4];
  const Stats* ptr[4] = {nullptr, nullptr, nullptr, nullptr};
  for (Role r : {Role::kActuality, Role::kCapability, Role::kPotentiality}) {
    const int ri = model_->role_indicator(r);
    if (ri < 0) continue;
    if (r == role) {
      ptr[static_cast<int>(r)] = &merged;
      continue;
    }
    auto it = windows_.find(Key{k.node, static_cast<int16_t>(ri), k.window, k.start});
    if (it == windows_.end() || !it->second.emitted) continue;
    others[static_cast<int>(r)] = Merged(it->second);
    ptr[static_cast<int>(r)] = &others[static_cast<int>(r)];
  }
  const Stats* a_s = ptr[static_cast<int>(Role::kActuality)];
  const Stats* c_s = ptr[static_cast<int>(Role::kCapability)];
  const Stats* p_s = ptr[static_cast<int>(Role::kPotentiality)];
  if (role == Role::kActuality) {
    DeriveIndices(*model_, k.node, size, k.start, a_s, c_s, nullptr, now_ms, out);
    DeriveIndices(*model_, k.node, size, k.start, a_s, nullptr, p_s, now_ms, out);
  } else if (role == Role::kCapability) {
    DeriveIndices(*model_, k.node, size, k.start, a_s, c_s, nullptr, now_ms, out);
    DeriveIndices(*model_, k.node, size, k.start, nullptr, c_s, p_s, now_ms, out);
  } else {
    DeriveIndices(*model_, k.node, size, k.start, nullptr, c_s, p_s, now_ms, out);
    DeriveIndices(*model_, k.node, size, k.start, a_s, nullptr, p_s, now_ms, out);
  }
}

void RollupWindows::Tick(int64_t now_ms, std::vector<Emission>* out) {
  std::vector<Key> due, expired;
  for (const auto& [k, p] : windows_) {
    if (!p.emitted && p.emit_deadline_ms <= now_ms) due.push_back(k);
    if (p.emitted && p.expire_at_ms <= now_ms) expired.push_back(k);
  }
  // Deterministic order of publication within one tick.
  auto less = [](const Key& a, const Key& b) {
    return std::tie(a.start, a.window, a.node, a.indicator) <
           std::tie(b.start, b.window, b.node, b.indicator);
  };
  std::sort(due.begin(), due.end(), less);
  for (const Key& k : due) Emit(k, windows_[k], now_ms, out);
  for (const Key& k : expired) {
    windows_.erase(k);
    dirty_.erase(k);
    deleted_.push_back(k);
  }
}

std::string RollupWindows::KeyString(const Key& k) const {
  return absl::StrCat("r/", model_->window_ms(k.window), "/", k.start, "/",
                      model_->indicator(k.indicator).name, "/", model_->path(k.node));
}

std::string RollupWindows::Value(const Key& k, const Parent& p) const {
  v1::RollupWindowState s;
  s.set_node(model_->path(k.node));
  s.set_indicator(model_->indicator(k.indicator).name);
  s.set_window_ms(model_->window_ms(k.window));
  s.set_window_start_ms(k.start);
  for (const auto& [c, ch] : p.children) {
    v1::ChildContribution* cc = s.add_children();
    cc->set_child(model_->path(c));
    StatsToProto(ch.stats, cc->mutable_stats());
    cc->set_children_reported(ch.reported);
    cc->set_children_expected(ch.expected);
  }
  s.set_emit_deadline_ms(p.emit_deadline_ms);
  s.set_emitted(p.emitted);
  s.set_expire_at_ms(p.expire_at_ms);
  std::string out(1, kValueTag);
  s.AppendToString(&out);
  return out;
}

void RollupWindows::TakeChanges(std::vector<StateChange>* out) {
  for (const Key& k : deleted_) out->push_back({KeyString(k), ""});
  deleted_.clear();
  for (const Key& k : dirty_) {
    auto it = windows_.find(k);
    if (it != windows_.end()) out->push_back({KeyString(k), Value(k, it->second)});
  }
  dirty_.clear();
}

absl::Status RollupWindows::Load(absl::string_view key, absl::string_view value) {
  if (value.empty() || value[0] != kValueTag || !absl::StartsWith(key, "r/")) {
    return absl::DataLossError(absl::StrCat("roll-up state entry ", key, ": bad key or tag"));
  }
  value.remove_prefix(1);
  v1::RollupWindowState s;
  if (!s.ParseFromArray(value.data(), static_cast<int>(value.size()))) {
    return absl::DataLossError(absl::StrCat("roll-up state entry ", key, " does not parse"));
  }
  const int node = model_->NodeIndex(s.node());
  const int indicator = model_->IndicatorIndex(s.indicator());
  const int window = model_->WindowIndex(s.window_ms());
  if (node < 0 || indicator < 0 || window < 0) return absl::OkStatus();
  if (s.window_start_ms() < 0 || s.window_start_ms() > kMaxWindowStartMs) {  // found by fuzz/
    return absl::DataLossError(absl::StrCat("roll-up state entry ", key, ": window start ",
                                            s.window_start_ms(), " out of range"));
  }
  Parent& p = windows_[Key{node, static_cast<int16_t>(indicator), static_cast<int16_t>(window),
                           s.window_start_ms()}];
  p.children.clear();
  for (const v1::ChildContribution& cc : s.children()) {
    const int c = model_->NodeIndex(cc.child());
    if (c < 0) continue;
    p.children[c] =
        Child{StatsFromProto(cc.stats()), cc.children_reported(), cc.children_expected()};
  }
  p.emit_deadline_ms = s.emit_deadline_ms();
  p.emitted = s.emitted();
  p.expire_at_ms = s.expire_at_ms();
  return absl::OkStatus();
}

}  // namespace cybersyn::aggregator
