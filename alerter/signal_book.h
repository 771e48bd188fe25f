// SignalBook: the lifecycle of algedonic signals of one partition of series, without I/O.
//
// It holds the open signals (at most one per (series, kind)), raises and updates them from
// detections, resolves them automatically after `auto_resolve_after` consecutive normal windows
// (hysteresis), applies operator commands (acknowledge, resolve, silence, unsilence) and
// escalates signals whose deadlines passed. Every change is returned as SignalEvents (the
// transition and the signal as it stands after it), which the alerter publishes to
// <prefix>.signals; the changed signals are reported by TakeDirty() for the state changelog.
//
// Rules (see docs/detection.md, "Signals, escalation and the new level"):
// - A signal is raised at the series' node with deadlines from that node's effective
//   ack_within / resolve_within. If it is not acknowledged by the ack deadline, or not resolved by
//   the resolve deadline, it escalates to the parent node (TRANSITION_KIND_ESCALATED, state
//   ESCALATED, acknowledged cleared) with fresh deadlines from the parent's level counted from the
//   moment of escalation, and so on up to the root. At the root a passed deadline is cleared
//   (there is nobody above) without a transition.
// - Acknowledging stops the ack deadline of the current level only; the resolve deadline runs on.
//   Resolving (by an operator or by hysteresis) ends the signal.
// - A repeat detection of an open (series, kind) is TRANSITION_KIND_UPDATED: no new id, no new
//   deadlines, no page.
// - Reward signals (favourable shifts) have severity REWARD, no deadlines and never escalate.
// - Silences set silenced_until_ms: they mute delivery (the Watch stream skips RAISED/UPDATED
//   events of a silenced signal) but never detection, resolution or escalation (a level cannot
//   hide a problem from its parent by silencing it). A silence lifts itself at its end
//   (UNSILENCED by "system").
// - Time only moves through the `now_ms` arguments: Tick(now) fires every deadline <= now, so a
//   deadline that passed while the process was down fires at the first tick after restart.
//
// Thread-safety: none; one thread at a time (the alerter's processing loop).
#ifndef CYBERSYN_ALERTER_SIGNAL_BOOK_H_
#define CYBERSYN_ALERTER_SIGNAL_BOOK_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/hierarchy.h"
#include "cybersyn/v1/command.pb.h"
#include "cybersyn/v1/signal.pb.h"

namespace cybersyn::alerter {

inline constexpr absl::string_view kSystemActor = "system";

struct SignalBookOptions {
  int auto_resolve_after = 3;  // consecutive normal windows that resolve a signal (>= 1)
  size_t max_history = 64;     // transitions kept in state; <prefix>.signals has them all
};

// One detection of the alerter, ready to become a signal.
struct Detection {
  v1::SeriesKey series;
  v1::SignalKind kind = v1::SIGNAL_KIND_UNSPECIFIED;
  v1::Severity severity = v1::SEVERITY_ALERT;
  double score = 0;
  v1::ModelProbabilities probs;
  double observed = 0;
  double forecast = 0;
  double lower = 0;
  double upper = 0;
  int64_t window_start_ms = 0;
  std::string reason;
};

// How one closed window of a series looked, for hysteresis.
struct WindowHealth {
  bool detector_anomalous = false;  // the detector's score crossed its level
  bool threshold_breached = false;  // a static limit was crossed
  // The detector took the level a step (or slope) signal announced as the new normal
  // (Verdict::new_level): an open step, slope or reward signal resolves at once, "new level".
  bool new_level = false;
};

// An open signal and its hysteresis counter: the unit of persisted signal state.
struct OpenSignal {
  v1::Signal signal;
  int normal_windows = 0;
};

// The stable series key string "<node>|<indicator>|<window_ms>".
std::string SeriesId(const v1::SeriesKey& series);
// Deterministic signal id from series, kind and the window that raised it: "sig-<16 hex>".
std::string SignalId(const v1::SeriesKey& series, v1::SignalKind kind, int64_t window_start_ms);

// Severity from the detector's score and the size of the departure, measured in half-widths of the
// forecast interval: crisis when score >= 0.99 or the observation lies at least 3 half-widths
// from the forecast; alert otherwise. With no usable interval only the score decides.
v1::Severity SeverityFor(double score, double observed, double forecast, double lower,
                         double upper);

// (The persisted form of an OpenSignal: alerter_state.h.)

class SignalBook {
 public:
  // `hierarchy` must contain every node a detection or command names (unknown nodes are
  // treated as the root: no parent to escalate to).
  SignalBook(std::shared_ptr<const Hierarchy> hierarchy, SignalBookOptions options);

  // Raises a signal for (series, kind), or updates the open one. REQUIRES: kind set.
  std::vector<v1::SignalEvent> OnDetection(const Detection& d, int64_t now_ms);

  // Hysteresis: counts a normal window for every open signal of the series (by kind: threshold
  // signals look at `threshold_breached`, no-data signals count any window as normal, the rest
  // look at `detector_anomalous`); an abnormal window resets the count. Resolves (actor
  // "system") signals that reached auto_resolve_after, and step, slope and reward signals at
  // once when the window confirms their new level (`new_level`).
  std::vector<v1::SignalEvent> OnWindow(const v1::SeriesKey& series, const WindowHealth& health,
                                        int64_t now_ms);
  // The same with the series' SeriesId at hand (the alerter's per-window path: a series without
  // an open signal costs one lookup).
  std::vector<v1::SignalEvent> OnWindow(const v1::SeriesKey& series, absl::string_view series_id,
                                        const WindowHealth& health, int64_t now_ms);

  // Applies an operator command. NOT_FOUND for an unknown or already resolved signal,
  // PERMISSION_DENIED when the signal's origin node is outside `scope` (an operator may act on
  // signals that happened inside their subtree, wherever they have climbed since),
  // INVALID_ARGUMENT for a malformed command. Acknowledging an acknowledged signal is a no-op
  // (no events).
  absl::StatusOr<std::vector<v1::SignalEvent>> Apply(const v1::Command& command,
                                                     absl::string_view scope, int64_t now_ms);

  // Records on the open signal `id` that `series` deviated in the window at `window_start_ms` as
  // the signal explains (attribution.h): an entry in also_visible_at and an ALSO_VISIBLE
  // transition, once per series (later windows of a listed series add nothing). No events when
  // `id` is not open.
  std::vector<v1::SignalEvent> AlsoVisible(const std::string& id, const v1::SeriesKey& series,
                                           int64_t window_start_ms, int64_t now_ms);

  // Fires every deadline and silence end <= now_ms, in deadline order per signal, repeatedly
  // (a long outage may climb several levels in one tick).
  std::vector<v1::SignalEvent> Tick(int64_t now_ms);

  // The open signal with this id, or nullptr.
  const OpenSignal* Find(absl::string_view id) const;
  // The open signal of (series, kind), or nullptr.
  const OpenSignal* FindOpen(const v1::SeriesKey& series, v1::SignalKind kind) const;
  // Every open signal, by id.
  const std::map<std::string, OpenSignal>& open() const { return open_; }

  // Ids whose state changed since the last call (a resolved id is no longer in open()).
  std::vector<std::string> TakeDirty();

  // Puts back a persisted open signal (restore). Not marked dirty.
  void Restore(OpenSignal s);
  void Clear();

  // The earliest pending deadline or silence end, or INT64_MAX.
  int64_t NextDeadline() const;

 private:
  v1::SignalEvent Transition(OpenSignal& s, v1::TransitionKind kind, int64_t now_ms,
                             absl::string_view actor, absl::string_view reason);
  void SetDeadlines(v1::Signal& s, const Hierarchy::Node* node, int64_t now_ms);
  v1::SignalEvent Resolve(const std::string& id, int64_t now_ms, absl::string_view actor,
                          absl::string_view reason);

  std::shared_ptr<const Hierarchy> hierarchy_;
  SignalBookOptions options_;
  std::map<std::string, OpenSignal> open_;                        // by id
  absl::flat_hash_map<std::string, std::string> by_series_kind_;  // SeriesId#kind -> id
  absl::flat_hash_map<std::string, int> open_per_series_;         // SeriesId -> open signals
  absl::flat_hash_set<std::string> dirty_;
};

}  // namespace cybersyn::alerter

#endif  // CYBERSYN_ALERTER_SIGNAL_BOOK_H_
