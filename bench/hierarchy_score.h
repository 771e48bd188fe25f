// HierarchyScore: what an operator received for what was injected, over a hierarchy (the
// quality harness's hierarchy mode, bench/hierarchy_run.h runs the pipeline).
//
// Ground truth is a list of TruthEvents: the simulator's own faults (one unit, one indicator) and
// the harness's patterns (a parent-only drift of several units, none past its own threshold; a
// common cause, most units of a node stepping together). The alerter's output is the RAISED
// transitions of <prefix>.signals.
//
// Counted signals are alerts and crises: not rewards, not no-data. A signal matches an event when
// it is at the event's node or an ancestor (for a common cause or a parent-only pattern: at the
// event's node, an ancestor, or one of the affected units and the nodes between), on the event's
// indicator or an index derived from it, and its window [s, s + w) satisfies s + w > start and
// s <= end + 2w (raised between the event's start and 2 windows after its end). A signal that
// matches several events is counted once, for the one that started last before its window. A
// counted signal that matches nothing is false. Signals whose window starts before `from_ms` or
// after `to_ms` are not scored (warm-up, tail).
//
// Thread-safety: plain values and functions.
#ifndef CYBERSYN_BENCH_HIERARCHY_SCORE_H_
#define CYBERSYN_BENCH_HIERARCHY_SCORE_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/config.h"
#include "cybersyn/v1/signal.pb.h"

namespace cybersyn::bench {

struct TruthEvent {
  enum class Kind { kFault, kParentOnly, kCommonCause };
  Kind kind = Kind::kFault;
  std::string node;                // the faulty unit; the pattern's parent
  std::string indicator;           // a base indicator
  std::vector<std::string> units;  // patterns: the units that moved
  std::string what;                // "step", "slope", ..., "drift", "common step"
  int64_t start_ms = 0;
  int64_t end_ms = 0;
  bool scored = true;  // in the totals (false: it started in the warm-up; signals still match it)
};
const char* KindName(TruthEvent::Kind k);  // "fault", "parent-only", "common cause"

// One raised signal, as the harness saw it on <prefix>.signals.
struct RaisedSignal {
  std::string id;
  std::string node;  // origin node
  std::string indicator;
  int64_t window_ms = 0;
  int64_t window_start_ms = 0;
  v1::SignalKind kind = v1::SIGNAL_KIND_UNSPECIFIED;
  v1::Severity severity = v1::SEVERITY_UNSPECIFIED;
};

// The raised signals of a transition log, in raise order.
std::vector<RaisedSignal> RaisedSignals(const std::vector<v1::SignalEvent>& events);

// Per event: the counted signals matched to it, and which nodes they were at.
struct EventOutcome {
  const TruthEvent* event = nullptr;
  int signals = 0;
  bool at_node = false;  // a signal at the event's node on its indicator (any window size)
  int at_units = 0;      // signals at the pattern's units (parent-only: should be none)
  std::vector<std::string> signal_ids;
};

struct Score {
  std::vector<EventOutcome> events;  // in the order of the truth events
  int counted = 0;                   // counted signals in [from, to]
  int matched = 0;
  int false_signals = 0;
  int rewards = 0;  // raised rewards (not counted)
  int no_data = 0;  // raised no-data signals (not counted)
  // Counted signals at a node whose descendant has a counted signal on the same indicator with a
  // window ending within 10 s of event time of this one's (the issue's "at a parent within 10 s
  // of a descendant"): what attribution should fold into the descendant's signal.
  int parent_echoes = 0;
  int derived = 0;  // counted signals on a derived index (productivity, latency, performance)
  std::vector<std::string> false_ids;

  // Over events of `kind` (or all): events, events with at least one signal, signals matched.
  struct Totals {
    int events = 0, caught = 0, signals = 0, at_node = 0, at_units = 0;
    double SignalsPerCaught() const { return caught ? double(signals) / caught : 0; }
    double Recall() const { return events ? double(caught) / events : 0; }
    double RecallAtNode() const { return events ? double(at_node) / events : 0; }
  };
  Totals TotalsOf(TruthEvent::Kind kind, const std::string& what = "") const;
};

// A parent echo is within this much event time of its descendant's signal (window ends).
inline constexpr int64_t kEchoWithinMs = 10'000;

// Scores `signals` against `truth` over window starts in [from_ms, to_ms].
Score ScoreSignals(const Config& config, const std::vector<TruthEvent>& truth,
                   const std::vector<RaisedSignal>& signals, int64_t from_ms, int64_t to_ms);

// True when `index` is `base` or a Beer index derived from it (productivity from actuality and
// capability, latency from capability and potentiality, performance from actuality and
// potentiality).
bool IsBaseOrDerivedFrom(const Config& config, const std::string& index, const std::string& base);

}  // namespace cybersyn::bench

#endif  // CYBERSYN_BENCH_HIERARCHY_SCORE_H_
