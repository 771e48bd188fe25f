#include "alerter/shared_view.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "cybersyn/v1/state.pb.h"

namespace cybersyn::alerter {

void SharedView::Apply(const v1::ViewUpdate& update) {
  const int32_t from = update.from_partition();
  for (const v1::Signal& s : update.signals()) {
    if (s.id().empty()) continue;
    if (s.state() == v1::SIGNAL_STATE_RESOLVED) {
      if (signals_.erase(s.id()) > 0) dirty_signals_.insert(s.id());
      continue;
    }
    Entry& e = signals_[s.id()];
    e.signal = s;
    e.signal.clear_history();
    e.from_partition = from;
    dirty_signals_.insert(s.id());
  }
  if (update.progress().empty()) return;
  Progress& p = progress_[from];
  for (const v1::ViewProgress& g : update.progress()) {
    int64_t& covered = p[{g.window_ms(), g.depth()}];
    if (g.covered_to_ms() > covered) covered = g.covered_to_ms();
  }
  dirty_progress_.insert(from);
}

absl::Status SharedView::Load(absl::string_view key, absl::string_view value) {
  v1::ViewEntry e;
  if (!e.ParseFromArray(value.data(), static_cast<int>(value.size()))) {
    return absl::DataLossError(absl::StrCat("view entry '", key, "' does not parse"));
  }
  absl::string_view k = key;
  if (absl::ConsumePrefix(&k, kViewSignalKeyPrefix)) {
    signals_[std::string(k)] = {std::move(*e.mutable_signal()), e.from_partition()};
    return absl::OkStatus();
  }
  int32_t q = 0;
  if (!absl::ConsumePrefix(&k, kViewProgressKeyPrefix) || !absl::SimpleAtoi(k, &q)) {
    return absl::DataLossError(absl::StrCat("view key '", key, "' is neither v/<id> nor g/<n>"));
  }
  Progress& p = progress_[q];
  for (const v1::ViewProgress& g : e.progress()) p[{g.window_ms(), g.depth()}] = g.covered_to_ms();
  return absl::OkStatus();
}

void SharedView::TakeChanges(std::vector<stream::StateChange>* out) {
  v1::ViewEntry e;
  for (const std::string& id : dirty_signals_) {
    auto it = signals_.find(id);
    std::string value;
    if (it != signals_.end()) {
      e.Clear();
      *e.mutable_signal() = it->second.signal;
      e.set_from_partition(it->second.from_partition);
      value = e.SerializeAsString();
    }
    out->push_back({absl::StrCat(kViewSignalKeyPrefix, id), std::move(value)});
  }
  dirty_signals_.clear();
  for (int32_t q : dirty_progress_) {
    e.Clear();
    e.set_from_partition(q);  // progress is never empty here, so neither is the value
    for (const auto& [key, covered] : progress_[q]) {
      v1::ViewProgress* g = e.add_progress();
      g->set_window_ms(key.first);
      g->set_depth(key.second);
      g->set_covered_to_ms(covered);
    }
    out->push_back({absl::StrCat(kViewProgressKeyPrefix, q), e.SerializeAsString()});
  }
  dirty_progress_.clear();
}

}  // namespace cybersyn::alerter
