#include "alerter/signal_book.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace cybersyn::alerter {
namespace {

uint64_t Fnv1a(absl::string_view s, uint64_t h = 1469598103934665603ull) {
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

std::string SeriesKindKey(const v1::SeriesKey& series, v1::SignalKind kind) {
  return absl::StrCat(SeriesId(series), "#", static_cast<int>(kind));
}

bool Pages(const v1::Signal& s) { return s.severity() != v1::SEVERITY_REWARD; }

}  // namespace

std::string SeriesId(const v1::SeriesKey& series) {
  return absl::StrCat(series.node(), "|", series.indicator(), "|", series.window_ms());
}

std::string SignalId(const v1::SeriesKey& series, v1::SignalKind kind, int64_t window_start_ms) {
  const uint64_t h =
      Fnv1a(absl::StrCat(SeriesId(series), "#", static_cast<int>(kind), "@", window_start_ms));
  return absl::StrFormat("sig-%016x", h);
}

v1::Severity SeverityFor(double score, double observed, double forecast, double lower,
                         double upper) {
  if (score >= 0.99) return v1::SEVERITY_CRISIS;
  const double half = (upper - lower) / 2;
  if (std::isfinite(half) && half > 0 && std::isfinite(observed) && std::isfinite(forecast) &&
      std::abs(observed - forecast) >= 3 * half) {
    return v1::SEVERITY_CRISIS;
  }
  return v1::SEVERITY_ALERT;
}

SignalBook::SignalBook(std::shared_ptr<const Hierarchy> hierarchy, SignalBookOptions options)
    : hierarchy_(std::move(hierarchy)), options_(options) {
  if (options_.auto_resolve_after < 1) options_.auto_resolve_after = 1;
}

void SignalBook::SetDeadlines(v1::Signal& s, const Hierarchy::Node* node, int64_t now_ms) {
  s.set_current_node(node != nullptr ? node->path : s.current_node());
  if (node != nullptr) {
    s.set_current_level(static_cast<uint32_t>(node->depth));
    s.set_current_level_name(node->level);
  }
  if (!Pages(s) || node == nullptr) {
    s.set_ack_deadline_ms(0);
    s.set_resolve_deadline_ms(0);
    return;
  }
  s.set_ack_deadline_ms(now_ms + absl::ToInt64Milliseconds(node->ack_within));
  s.set_resolve_deadline_ms(now_ms + absl::ToInt64Milliseconds(node->resolve_within));
}

v1::SignalEvent SignalBook::Transition(OpenSignal& s, v1::TransitionKind kind, int64_t now_ms,
                                       absl::string_view actor, absl::string_view reason) {
  v1::Transition t;
  t.set_kind(kind);
  t.set_at_ms(now_ms);
  t.set_actor(std::string(actor));
  t.set_reason(std::string(reason));
  t.set_state(s.signal.state());
  s.signal.set_revision(s.signal.revision() + 1);
  *s.signal.add_history() = t;
  auto* h = s.signal.mutable_history();
  if (static_cast<size_t>(h->size()) > options_.max_history) {
    h->DeleteSubrange(0, h->size() - static_cast<int>(options_.max_history));
  }
  dirty_.insert(s.signal.id());
  v1::SignalEvent e;
  *e.mutable_signal() = s.signal;
  *e.mutable_transition() = t;
  return e;
}

std::vector<v1::SignalEvent> SignalBook::OnDetection(const Detection& d, int64_t now_ms) {
  std::vector<v1::SignalEvent> out;
  const std::string sk = SeriesKindKey(d.series, d.kind);
  auto fill = [&](v1::Signal& s) {
    s.set_severity(std::max(s.severity(), d.severity));
    *s.mutable_probabilities() = d.probs;
    s.set_score(d.score);
    s.set_observed(d.observed);
    s.set_forecast(d.forecast);
    s.set_forecast_lower(d.lower);
    s.set_forecast_upper(d.upper);
    s.set_window_start_ms(d.window_start_ms);
  };
  if (auto it = by_series_kind_.find(sk); it != by_series_kind_.end()) {
    OpenSignal& s = open_.at(it->second);
    fill(s.signal);
    s.normal_windows = 0;
    out.push_back(Transition(s, v1::TRANSITION_KIND_UPDATED, now_ms, kSystemActor, d.reason));
    return out;
  }
  OpenSignal s;
  v1::Signal& sig = s.signal;
  sig.set_id(SignalId(d.series, d.kind, d.window_start_ms));
  *sig.mutable_series() = d.series;
  sig.set_kind(d.kind);
  sig.set_severity(d.severity);
  fill(sig);
  sig.set_origin_node(d.series.node());
  sig.set_current_node(d.series.node());
  sig.set_state(v1::SIGNAL_STATE_FIRING);
  sig.set_raised_at_ms(now_ms);
  SetDeadlines(sig, hierarchy_->Find(d.series.node()), now_ms);
  const std::string id = sig.id();
  OpenSignal& stored = open_[id] = std::move(s);
  by_series_kind_[sk] = id;
  ++open_per_series_[SeriesId(d.series)];
  out.push_back(Transition(stored, v1::TRANSITION_KIND_RAISED, now_ms, kSystemActor, d.reason));
  return out;
}

std::vector<v1::SignalEvent> SignalBook::AlsoVisible(const std::string& id,
                                                     const v1::SeriesKey& series,
                                                     int64_t window_start_ms, int64_t now_ms) {
  auto it = open_.find(id);
  if (it == open_.end()) return {};
  v1::Signal& s = it->second.signal;
  for (const v1::AlsoVisible& a : s.also_visible_at()) {
    if (SeriesId(a.series()) == SeriesId(series)) return {};
  }
  v1::AlsoVisible* a = s.add_also_visible_at();
  *a->mutable_series() = series;
  a->set_window_start_ms(window_start_ms);
  return {Transition(it->second, v1::TRANSITION_KIND_ALSO_VISIBLE, now_ms, kSystemActor,
                     absl::StrCat("also visible at ", series.node(), " ", series.indicator(), " (",
                                  series.window_ms() / 1000, " s windows)"))};
}

v1::SignalEvent SignalBook::Resolve(const std::string& id, int64_t now_ms, absl::string_view actor,
                                    absl::string_view reason) {
  auto it = open_.find(id);
  OpenSignal& s = it->second;
  s.signal.set_state(v1::SIGNAL_STATE_RESOLVED);
  s.signal.set_ack_deadline_ms(0);
  s.signal.set_resolve_deadline_ms(0);
  v1::SignalEvent e = Transition(s, v1::TRANSITION_KIND_RESOLVED, now_ms, actor, reason);
  by_series_kind_.erase(SeriesKindKey(s.signal.series(), s.signal.kind()));
  if (auto c = open_per_series_.find(SeriesId(s.signal.series()));
      c != open_per_series_.end() && --c->second <= 0) {
    open_per_series_.erase(c);
  }
  open_.erase(it);
  return e;
}

std::vector<v1::SignalEvent> SignalBook::OnWindow(const v1::SeriesKey& series,
                                                  const WindowHealth& health, int64_t now_ms) {
  return OnWindow(series, SeriesId(series), health, now_ms);
}

std::vector<v1::SignalEvent> SignalBook::OnWindow(const v1::SeriesKey& series,
                                                  absl::string_view series_id,
                                                  const WindowHealth& health, int64_t now_ms) {
  std::vector<v1::SignalEvent> out;
  if (!open_per_series_.contains(series_id)) return out;
  for (int k = v1::SignalKind_MIN; k <= v1::SignalKind_MAX; ++k) {
    const auto kind = static_cast<v1::SignalKind>(k);
    auto it = by_series_kind_.find(SeriesKindKey(series, kind));
    if (it == by_series_kind_.end()) continue;
    const std::string id = it->second;
    OpenSignal& s = open_.at(id);
    bool abnormal = health.detector_anomalous;
    if (kind == v1::SIGNAL_KIND_THRESHOLD) abnormal = health.threshold_breached;
    if (kind == v1::SIGNAL_KIND_NO_DATA) abnormal = false;
    if (health.new_level && (kind == v1::SIGNAL_KIND_STEP || kind == v1::SIGNAL_KIND_SLOPE ||
                             kind == v1::SIGNAL_KIND_REWARD)) {
      out.push_back(Resolve(id, now_ms, kSystemActor, "new level"));
      continue;
    }
    const int before = s.normal_windows;
    s.normal_windows = abnormal ? 0 : s.normal_windows + 1;
    if (s.normal_windows != before) dirty_.insert(id);
    if (s.normal_windows >= options_.auto_resolve_after) {
      out.push_back(Resolve(id, now_ms, kSystemActor,
                            absl::StrCat("normal for ", s.normal_windows, " windows")));
    }
  }
  return out;
}

absl::StatusOr<std::vector<v1::SignalEvent>> SignalBook::Apply(const v1::Command& c,
                                                               absl::string_view scope,
                                                               int64_t now_ms) {
  auto it = open_.find(c.signal_id());
  if (it == open_.end()) {
    return absl::NotFoundError(absl::StrCat("no open signal ", c.signal_id()));
  }
  OpenSignal& s = it->second;
  if (scope.empty() || !Hierarchy::PathIsInSubtree(s.signal.origin_node(),
                                                   std::string_view(scope.data(), scope.size()))) {
    return absl::PermissionDeniedError(absl::StrCat("signal ", c.signal_id(), " at ",
                                                    s.signal.origin_node(), " is outside ", scope));
  }
  const std::string actor = c.operator_id().empty() ? "unknown" : c.operator_id();
  std::vector<v1::SignalEvent> out;
  switch (c.kind()) {
    case v1::COMMAND_KIND_ACKNOWLEDGE:
      if (s.signal.acknowledged()) return out;
      s.signal.set_acknowledged(true);
      s.signal.set_ack_deadline_ms(0);
      s.signal.set_state(v1::SIGNAL_STATE_ACKNOWLEDGED);
      out.push_back(Transition(s, v1::TRANSITION_KIND_ACKNOWLEDGED, now_ms, actor, c.reason()));
      return out;
    case v1::COMMAND_KIND_RESOLVE:
      out.push_back(Resolve(c.signal_id(), now_ms, actor, c.reason()));
      return out;
    case v1::COMMAND_KIND_SILENCE:
      if (c.silence_for_ms() <= 0) {
        return absl::InvalidArgumentError("silence needs a positive duration");
      }
      // Saturated: a huge duration ("forever", or forged) must not wrap to the past.
      s.signal.set_silenced_until_ms(c.silence_for_ms() >= std::numeric_limits<int64_t>::max() -
                                                               std::max<int64_t>(now_ms, 0)
                                         ? std::numeric_limits<int64_t>::max()
                                         : now_ms + c.silence_for_ms());
      out.push_back(Transition(s, v1::TRANSITION_KIND_SILENCED, now_ms, actor, c.reason()));
      return out;
    case v1::COMMAND_KIND_UNSILENCE:
      if (s.signal.silenced_until_ms() == 0) return out;
      s.signal.set_silenced_until_ms(0);
      out.push_back(Transition(s, v1::TRANSITION_KIND_UNSILENCED, now_ms, actor, c.reason()));
      return out;
    default:
      return absl::InvalidArgumentError(absl::StrCat("unknown command kind ", c.kind()));
  }
}

std::vector<v1::SignalEvent> SignalBook::Tick(int64_t now_ms) {
  std::vector<v1::SignalEvent> out;
  for (auto& [id, s] : open_) {
    v1::Signal& sig = s.signal;
    if (sig.silenced_until_ms() != 0 && sig.silenced_until_ms() <= now_ms) {
      sig.set_silenced_until_ms(0);
      out.push_back(
          Transition(s, v1::TRANSITION_KIND_UNSILENCED, now_ms, kSystemActor, "silence ended"));
    }
    // Each pass escalates at most one level; a long outage climbs several (bounded by depth).
    for (int guard = 0; guard < 64; ++guard) {
      const bool ack_due =
          !sig.acknowledged() && sig.ack_deadline_ms() != 0 && sig.ack_deadline_ms() <= now_ms;
      const bool resolve_due =
          sig.resolve_deadline_ms() != 0 && sig.resolve_deadline_ms() <= now_ms;
      if (!ack_due && !resolve_due) break;
      const Hierarchy::Node* node = hierarchy_->Find(sig.current_node());
      const Hierarchy::Node* parent = node != nullptr ? node->parent : nullptr;
      if (parent == nullptr) {  // the top: nobody left to tell
        if (ack_due) sig.set_ack_deadline_ms(0);
        if (resolve_due) sig.set_resolve_deadline_ms(0);
        dirty_.insert(id);
        break;
      }
      const std::string from = sig.current_node();
      const std::string why = ack_due && !resolve_due
                                  ? absl::StrCat("not acknowledged at ", from, " in time")
                                  : absl::StrCat("not resolved at ", from, " in time");
      sig.set_acknowledged(false);
      sig.set_state(v1::SIGNAL_STATE_ESCALATED);
      SetDeadlines(sig, parent, now_ms);
      v1::SignalEvent e = Transition(s, v1::TRANSITION_KIND_ESCALATED, now_ms, kSystemActor, why);
      auto* t = sig.mutable_history(sig.history_size() - 1);
      t->set_from_node(from);
      t->set_to_node(parent->path);
      *e.mutable_transition() = *t;
      *e.mutable_signal() = sig;
      out.push_back(std::move(e));
    }
  }
  return out;
}

const OpenSignal* SignalBook::Find(absl::string_view id) const {
  auto it = open_.find(std::string(id));
  return it == open_.end() ? nullptr : &it->second;
}

const OpenSignal* SignalBook::FindOpen(const v1::SeriesKey& series, v1::SignalKind kind) const {
  auto it = by_series_kind_.find(SeriesKindKey(series, kind));
  return it == by_series_kind_.end() ? nullptr : Find(it->second);
}

std::vector<std::string> SignalBook::TakeDirty() {
  std::vector<std::string> out(dirty_.begin(), dirty_.end());
  std::sort(out.begin(), out.end());
  dirty_.clear();
  return out;
}

void SignalBook::Restore(OpenSignal s) {
  const std::string id = s.signal.id();
  const std::string sk = SeriesKindKey(s.signal.series(), s.signal.kind());
  if (auto old = by_series_kind_.find(sk); old != by_series_kind_.end() && old->second != id) {
    open_.erase(old->second);  // (two open signals of one series and kind: keep the last)
  } else if (old == by_series_kind_.end()) {
    ++open_per_series_[SeriesId(s.signal.series())];
  }
  by_series_kind_[sk] = id;
  open_[id] = std::move(s);
}

void SignalBook::Clear() {
  open_.clear();
  by_series_kind_.clear();
  open_per_series_.clear();
  dirty_.clear();
}

int64_t SignalBook::NextDeadline() const {
  int64_t next = std::numeric_limits<int64_t>::max();
  for (const auto& [id, s] : open_) {
    const v1::Signal& sig = s.signal;
    if (!sig.acknowledged() && sig.ack_deadline_ms() != 0) {
      next = std::min(next, sig.ack_deadline_ms());
    }
    if (sig.resolve_deadline_ms() != 0) next = std::min(next, sig.resolve_deadline_ms());
    if (sig.silenced_until_ms() != 0) next = std::min(next, sig.silenced_until_ms());
  }
  return next;
}

}  // namespace cybersyn::alerter
