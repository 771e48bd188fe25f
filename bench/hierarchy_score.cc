#include "bench/hierarchy_score.h"

#include <algorithm>
#include <cstdlib>

#include "common/hierarchy.h"

namespace cybersyn::bench {

const char* KindName(TruthEvent::Kind k) {
  switch (k) {
    case TruthEvent::Kind::kFault:
      return "fault";
    case TruthEvent::Kind::kParentOnly:
      return "parent-only";
    case TruthEvent::Kind::kCommonCause:
      return "common cause";
  }
  return "?";
}

bool IsBaseOrDerivedFrom(const Config& config, const std::string& index, const std::string& base) {
  if (index == base) return true;
  for (const IndicatorConfig* b : config.BasesOf(index)) {
    if (b->name == base) return true;
  }
  return false;
}

std::vector<RaisedSignal> RaisedSignals(const std::vector<v1::SignalEvent>& events) {
  std::vector<RaisedSignal> out;
  for (const v1::SignalEvent& e : events) {
    if (e.transition().kind() != v1::TRANSITION_KIND_RAISED) continue;
    const v1::Signal& s = e.signal();
    out.push_back({.id = s.id(),
                   .node = s.origin_node(),
                   .indicator = s.series().indicator(),
                   .window_ms = s.series().window_ms(),
                   .window_start_ms = s.window_start_ms(),
                   .kind = s.kind(),
                   .severity = s.severity()});
  }
  return out;
}

namespace {

// `node` is `of` or one of its ancestors.
bool AncestorOrSelf(const std::string& node, const std::string& of) {
  return Hierarchy::PathIsInSubtree(of, node);
}

bool Matches(const Config& config, const TruthEvent& e, const RaisedSignal& s) {
  const int64_t w = std::max<int64_t>(s.window_ms, 1);
  if (s.window_start_ms + w <= e.start_ms || s.window_start_ms > e.end_ms + 2 * w) return false;
  if (!IsBaseOrDerivedFrom(config, s.indicator, e.indicator)) return false;
  if (AncestorOrSelf(s.node, e.node)) return true;
  return std::any_of(e.units.begin(), e.units.end(),
                     [&](const std::string& u) { return AncestorOrSelf(s.node, u); });
}

bool Counted(const RaisedSignal& s, int64_t from_ms, int64_t to_ms) {
  return s.window_start_ms >= from_ms && s.window_start_ms <= to_ms &&
         s.kind != v1::SIGNAL_KIND_REWARD && s.severity != v1::SEVERITY_REWARD &&
         s.kind != v1::SIGNAL_KIND_NO_DATA;
}

// Counted signals in [from, to] with a counted signal at a strict descendant on the same
// indicator whose window ends within kEchoWithinMs of theirs.
int ParentEchoes(const std::vector<RaisedSignal>& signals, int64_t from_ms, int64_t to_ms) {
  int echoes = 0;
  for (const RaisedSignal& p : signals) {
    if (!Counted(p, from_ms, to_ms)) continue;
    const int64_t end = p.window_start_ms + p.window_ms;
    echoes += std::any_of(signals.begin(), signals.end(), [&](const RaisedSignal& d) {
      return Counted(d, from_ms, to_ms) && d.node != p.node && d.indicator == p.indicator &&
             Hierarchy::PathIsInSubtree(d.node, p.node) &&
             std::abs(d.window_start_ms + d.window_ms - end) <= kEchoWithinMs;
    });
  }
  return echoes;
}

}  // namespace

Score ScoreSignals(const Config& config, const std::vector<TruthEvent>& truth,
                   const std::vector<RaisedSignal>& signals, int64_t from_ms, int64_t to_ms) {
  Score score;
  score.events.resize(truth.size());
  for (size_t i = 0; i < truth.size(); ++i) score.events[i].event = &truth[i];
  for (const RaisedSignal& s : signals) {
    if (s.window_start_ms < from_ms || s.window_start_ms > to_ms) continue;
    if (s.kind == v1::SIGNAL_KIND_REWARD || s.severity == v1::SEVERITY_REWARD) {
      ++score.rewards;
      continue;
    }
    if (s.kind == v1::SIGNAL_KIND_NO_DATA) {
      ++score.no_data;
      continue;
    }
    ++score.counted;
    if (!config.BasesOf(s.indicator).empty()) ++score.derived;
    // The event that started last before the signal's window ended.
    int best = -1;
    for (size_t i = 0; i < truth.size(); ++i) {
      if (!Matches(config, truth[i], s)) continue;
      if (best < 0 || truth[i].start_ms > truth[best].start_ms) best = static_cast<int>(i);
    }
    if (best < 0) {
      ++score.false_signals;
      score.false_ids.push_back(s.id);
      continue;
    }
    ++score.matched;
    EventOutcome& o = score.events[best];
    const TruthEvent& e = truth[best];
    ++o.signals;
    o.signal_ids.push_back(s.id);
    if (s.node == e.node) o.at_node = true;  // on the indicator or an index derived from it
    if (e.kind != TruthEvent::Kind::kFault &&
        std::find(e.units.begin(), e.units.end(), s.node) != e.units.end()) {
      ++o.at_units;
    }
  }
  score.parent_echoes = ParentEchoes(signals, from_ms, to_ms);
  return score;
}

Score::Totals Score::TotalsOf(TruthEvent::Kind kind, const std::string& what) const {
  Totals t;
  for (const EventOutcome& o : events) {
    if (!o.event->scored || o.event->kind != kind || (!what.empty() && o.event->what != what)) {
      continue;
    }
    ++t.events;
    t.caught += o.signals > 0;
    t.signals += o.signals;
    t.at_node += o.at_node;
    t.at_units += o.at_units;
  }
  return t;
}

}  // namespace cybersyn::bench
