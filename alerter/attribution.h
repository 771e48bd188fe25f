// Attribution (docs/attribution.md): whether the open signals of other series explain a series'
// deviation, so that it raises nothing of its own and is recorded as "also visible at" on the
// explaining signal instead.
//
// This first step covers Beer's derived indices at the node of their bases: productivity = A / C,
// latency = C / P, performance = A / P at node N move with the open signals on A, C or P at N.
// The aggregator emits a node's index for a window right after that window's bases (same key,
// same partition), so the task that owns N has already applied the bases' window when the index's
// arrives: the decision depends on the task's own input order only, and a replay repeats it.
//
// Thread-safety: plain functions.
#ifndef CYBERSYN_ALERTER_ATTRIBUTION_H_
#define CYBERSYN_ALERTER_ATTRIBUTION_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace cybersyn::alerter {

// An open signal's last detection on a base indicator: its departure is observed - forecast.
struct BaseMove {
  double observed = 0;
  double forecast = 0;
};

// The move of the index D = X / Y that the base moves explain, with D's forecast f_D:
// f_D * ((1 + dX / f_X) / (1 + dY / f_Y) - 1), a base without a move (nullptr) or without a
// usable forecast counting as unmoved.
double ExpectedIndexMove(double index_forecast, const BaseMove* numerator,
                         const BaseMove* denominator);

// Whether `move` explains the deviation of `observed` from `forecast`: the part of it in the
// deviation's direction, at most the deviation, is not zero, and what it leaves falls back
// inside the interval [lower, upper] (with no interval, lower == upper == 0, the part must be
// the whole deviation).
bool Explains(double observed, double forecast, double lower, double upper, double move);

// How a departure shows at an ancestor (rule 1 across nodes): a signal's departure `departure`
// on a series of window `window_ms` at a node with `leaves` units, as a move of the same
// indicator at an ancestor-or-self with window `at_window_ms` and `at_leaves` units. Sums scale
// with the window (a 1-minute departure spread over six 10-second windows); means and derived
// indices (`intensive`) are shared among the ancestor's units; min, max and last pass as they
// are (`pass`).
enum class RollupShape { kSum, kIntensive, kPass };
double RolledUpDeparture(RollupShape shape, double departure, int64_t window_ms, int leaves,
                         int64_t at_window_ms, int at_leaves);

}  // namespace cybersyn::alerter

#endif  // CYBERSYN_ALERTER_ATTRIBUTION_H_
