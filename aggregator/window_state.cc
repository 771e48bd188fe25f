#include "aggregator/window_state.h"

namespace cybersyn::aggregator {
namespace {

// The "last" order: event time, then value. A total order on what a window holds, so the last
// value depends only on the window's records, never on their arrival order or on how windows
// were merged (children into a parent, in any order, on any level).
bool IsLater(int64_t t, double v, int64_t last_t, double last_v) {
  return t > last_t || (t == last_t && v > last_v);
}

}  // namespace

void Stats::Add(double value, int64_t event_time_ms) {
  ++count;
  sum += value;
  if (value < min) min = value;
  if (value > max) max = value;
  const double delta = value - mean;
  mean += delta / static_cast<double>(count);
  m2 += delta * (value - mean);
  if (count == 1 || IsLater(event_time_ms, value, last_event_time_ms, last_value)) {
    last_value = value;
    last_event_time_ms = event_time_ms;
  }
}

void Stats::Merge(const Stats& other) {
  if (other.count == 0) return;
  if (count == 0) {
    *this = other;
    return;
  }
  const double n_a = static_cast<double>(count);
  const double n_b = static_cast<double>(other.count);
  const double n = n_a + n_b;
  const double delta = other.mean - mean;
  mean += delta * (n_b / n);
  m2 += other.m2 + delta * delta * (n_a * n_b / n);
  count += other.count;
  sum += other.sum;
  if (other.min < min) min = other.min;
  if (other.max > max) max = other.max;
  if (IsLater(other.last_event_time_ms, other.last_value, last_event_time_ms, last_value)) {
    last_value = other.last_value;
    last_event_time_ms = other.last_event_time_ms;
  }
}

double RollupValue(Rollup rule, const Stats& s) {
  switch (rule) {
    case Rollup::kSum:
      return s.sum;
    case Rollup::kMin:
      return s.min;
    case Rollup::kMax:
      return s.max;
    case Rollup::kLast:
      return s.last_value;
    case Rollup::kMean:
    case Rollup::kNone:
      return s.mean;
  }
  return s.mean;
}

namespace {

// WindowState (changelog) and WindowAggregate (output) carry the same statistics fields.
template <typename Proto>
void CopyStats(const Stats& s, Proto* out) {
  out->set_count(s.count);
  out->set_sum(s.sum);
  out->set_min(s.min);
  out->set_max(s.max);
  out->set_mean(s.mean);
  out->set_m2(s.m2);
  out->set_last_value(s.last_value);
  out->set_last_event_time_ms(s.last_event_time_ms);
}

template <typename Proto>
Stats ReadStats(const Proto& p) {
  Stats s;
  s.count = p.count();
  s.sum = p.sum();
  s.min = p.min();
  s.max = p.max();
  s.mean = p.mean();
  s.m2 = p.m2();
  s.last_value = p.last_value();
  s.last_event_time_ms = p.last_event_time_ms();
  return s;
}

}  // namespace

void StatsToProto(const Stats& s, v1::WindowState* out) { CopyStats(s, out); }

Stats StatsFromProto(const v1::WindowState& p) { return ReadStats(p); }

void StatsToAggregate(const Stats& s, Rollup rule, v1::WindowAggregate* out) {
  CopyStats(s, out);
  out->set_variance(s.Variance());
  out->set_value(RollupValue(rule, s));
}

Stats StatsFromAggregate(const v1::WindowAggregate& a) { return ReadStats(a); }

}  // namespace cybersyn::aggregator
