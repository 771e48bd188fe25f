#include "alerter/shared_view.h"

#include <algorithm>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "cybersyn/v1/state.pb.h"

namespace cybersyn::alerter {

namespace {

void AddDetection(const v1::Signal& s, std::vector<SharedView::Detected>* d) {
  const SharedView::Detected x{s.window_start_ms(), s.observed(), s.forecast()};
  auto it = std::lower_bound(
      d->begin(), d->end(), x.window_start_ms,
      [](const SharedView::Detected& a, int64_t w) { return a.window_start_ms < w; });
  if (it != d->end() && it->window_start_ms == x.window_start_ms) {
    *it = x;
  } else {
    d->insert(it, x);
  }
  if (d->size() > SharedView::kMaxDetections) d->erase(d->begin());
}

}  // namespace

const SharedView::Detected* SharedView::AsOf(const Entry& e, int64_t until_ms) {
  const int64_t w = e.signal.series().window_ms();
  for (auto it = e.detections.rbegin(); it != e.detections.rend(); ++it) {
    if (it->window_start_ms + w <= until_ms) return &*it;
  }
  return nullptr;
}

void SharedView::Apply(const v1::ViewUpdate& update) {
  const int32_t from = update.from_partition();
  for (const v1::Signal& s : update.signals()) {
    if (s.id().empty()) continue;
    Entry& e = signals_[s.id()];
    if (e.resolved) continue;  // a late copy of an update: the entry is final
    e.signal = s;
    e.signal.clear_history();
    e.from_partition = from;
    e.resolved = s.state() == v1::SIGNAL_STATE_RESOLVED;
    AddDetection(s, &e.detections);
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

void SharedView::Prune(int64_t before_ms) {
  for (auto it = signals_.begin(); it != signals_.end();) {
    const Entry& e = it->second;
    const int64_t last_end =
        e.detections.empty() ? 0
                             : e.detections.back().window_start_ms + e.signal.series().window_ms();
    if (e.resolved && last_end < before_ms) {
      dirty_signals_.insert(it->first);
      signals_.erase(it++);
    } else {
      ++it;
    }
  }
}

absl::Status SharedView::Load(absl::string_view key, absl::string_view value) {
  v1::ViewEntry e;
  if (!e.ParseFromArray(value.data(), static_cast<int>(value.size()))) {
    return absl::DataLossError(absl::StrCat("view entry '", key, "' does not parse"));
  }
  absl::string_view k = key;
  if (absl::ConsumePrefix(&k, kViewSignalKeyPrefix)) {
    Entry& entry = signals_[std::string(k)];
    entry.from_partition = e.from_partition();
    entry.resolved = e.resolved();
    for (const v1::ViewDetection& d : e.detections()) {
      entry.detections.push_back({d.window_start_ms(), d.observed(), d.forecast()});
    }
    // Written before detections were kept: the latest state is the one detection known.
    if (entry.detections.empty()) AddDetection(e.signal(), &entry.detections);
    entry.signal = std::move(*e.mutable_signal());
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
      e.set_resolved(it->second.resolved);
      for (const Detected& d : it->second.detections) {
        v1::ViewDetection* x = e.add_detections();
        x->set_window_start_ms(d.window_start_ms);
        x->set_observed(d.observed);
        x->set_forecast(d.forecast);
      }
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
