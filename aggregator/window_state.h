// Mergeable, numerically stable window statistics (Welford's online update, Chan et al.'s
// parallel merge) and the conversions between them and the protos that carry them.
//
// Stats is a plain value: count, sum, min, max, mean, m2 (sum of squared deviations from the
// mean) and the last value by event time. Adding records one by one and merging partial results
// give the same count/sum/min/max exactly and mean/variance up to rounding, so a parent can be
// computed from its children's windows instead of from their records.
// Thread-safety: plain values and pure functions.
#ifndef CYBERSYN_AGGREGATOR_WINDOW_STATE_H_
#define CYBERSYN_AGGREGATOR_WINDOW_STATE_H_

#include <cstdint>
#include <limits>

#include "common/config.h"
#include "cybersyn/v1/aggregate.pb.h"
#include "cybersyn/v1/state.pb.h"

namespace cybersyn::aggregator {

struct Stats {
  uint64_t count = 0;
  double sum = 0;
  double min = std::numeric_limits<double>::infinity();
  double max = -std::numeric_limits<double>::infinity();
  double mean = 0;
  double m2 = 0;
  double last_value = 0;
  int64_t last_event_time_ms = std::numeric_limits<int64_t>::min();

  // Adds one observation. The last value is the one with the latest event time; among equal
  // times the largest value wins. That tie-break makes "last" a function of the window's
  // records alone: independent of arrival order, batch boundaries, restarts, and of whether the
  // window was built from records or merged from child windows.
  void Add(double value, int64_t event_time_ms);
  // Merges `other` in (Chan et al.); "last" by the same (event time, value) order as Add.
  void Merge(const Stats& other);
  // Population variance m2 / count (0 for an empty window).
  double Variance() const { return count == 0 ? 0.0 : m2 / static_cast<double>(count); }
  bool empty() const { return count == 0; }

  bool operator==(const Stats&) const = default;
};

// The value the alerter forecasts: the indicator's roll-up rule applied to the window.
// kNone reports the mean (a series that does not roll up is still a series at its own node).
double RollupValue(Rollup rule, const Stats& stats);

void StatsToProto(const Stats& stats, v1::WindowState* out);
Stats StatsFromProto(const v1::WindowState& state);
// Fills count..last_event_time_ms, variance and value of `out` (series and completeness are
// the caller's).
void StatsToAggregate(const Stats& stats, Rollup rule, v1::WindowAggregate* out);
Stats StatsFromAggregate(const v1::WindowAggregate& agg);

// A parent window from its parts (its own window and its children's), merged in ascending node
// index, so that the rounding of mean and variance does not depend on arrival order either.
// `parts` iterates (node index, part) pairs in ascending node order; `stats_of(part)` returns
// the part's Stats. Shared by stage 1 (unit -> enterprise, at close) and stage 2 (roll-up).
template <typename Parts, typename StatsOf>
Stats MergeInNodeOrder(const Parts& parts, StatsOf stats_of) {
  Stats s;
  for (const auto& [node, part] : parts) s.Merge(stats_of(part));
  return s;
}

// Start of the tumbling window of size `window_ms` that contains `t_ms` (floor, also for
// negative times). REQUIRES: window_ms > 0.
inline int64_t WindowStart(int64_t t_ms, int64_t window_ms) {
  int64_t r = t_ms % window_ms;
  if (r < 0) r += window_ms;
  return t_ms - r;
}

// WindowStart for one window size without a 64-bit division (40-90 cycles; the per-record path
// needs one per window size): the quotient from a multiplication by the reciprocal is off by at
// most one for event times, and is then corrected exactly. Same result as WindowStart for every t.
class WindowSizeMs {
 public:
  // REQUIRES: ms > 0.
  explicit WindowSizeMs(int64_t ms) : ms_(ms), inverse_(1.0 / static_cast<double>(ms)) {}
  int64_t ms() const { return ms_; }
  int64_t Start(int64_t t_ms) const {
    // Beyond 2^52 the double no longer holds t exactly (and q * ms_ could overflow).
    constexpr int64_t kExact = int64_t{1} << 52;
    if (t_ms >= kExact || t_ms <= -kExact) return WindowStart(t_ms, ms_);
    int64_t s = static_cast<int64_t>(static_cast<double>(t_ms) * inverse_) * ms_;
    while (s > t_ms) s -= ms_;
    while (t_ms - s >= ms_) s += ms_;
    return s;
  }

 private:
  int64_t ms_;
  double inverse_;
};

}  // namespace cybersyn::aggregator

#endif  // CYBERSYN_AGGREGATOR_WINDOW_STATE_H_
