#include "alerter/topology.h"

#include <chrono>
#include <cmath>
#include <optional>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "alerter/alerter_state.h"
#include "alerter/attribution.h"
#include "alerter/no_data.h"
#include "common/kafka_admin.h"
#include "common/status.h"
#include "spdlog/spdlog.h"

namespace cybersyn::alerter {
namespace {

constexpr int64_t kCommandMemoryMs = int64_t{7} * 24 * 3600 * 1000;  // commands topic retention
constexpr int kMaxMissingFill = 16;  // missing windows fed to a detector per gap (bounded work)

std::string_view Std(absl::string_view s) { return std::string_view(s.data(), s.size()); }

std::optional<v1::SeriesKey> ParseSeriesId(absl::string_view id) {
  std::vector<absl::string_view> parts = absl::StrSplit(id, '|');
  int64_t window = 0;
  if (parts.size() != 3 || !absl::SimpleAtoi(parts[2], &window)) return std::nullopt;
  v1::SeriesKey k;
  k.set_node(std::string(parts[0]));
  k.set_indicator(std::string(parts[1]));
  k.set_window_ms(window);
  return k;
}

v1::SignalKind ToProto(SignalKind k) {
  switch (k) {
    case SignalKind::kStep:
      return v1::SIGNAL_KIND_STEP;
    case SignalKind::kSlope:
      return v1::SIGNAL_KIND_SLOPE;
    case SignalKind::kTransient:
      return v1::SIGNAL_KIND_TRANSIENT;
    case SignalKind::kThreshold:
      return v1::SIGNAL_KIND_THRESHOLD;
    case SignalKind::kNoData:
      return v1::SIGNAL_KIND_NO_DATA;
    default:
      return v1::SIGNAL_KIND_STEP;  // a signal without a class: treat as a level shift
  }
}

// Signals that may explain another series' deviation: the detectors' (not limits, not silence).
bool Explainer(v1::SignalKind k) {
  return k != v1::SIGNAL_KIND_THRESHOLD && k != v1::SIGNAL_KIND_NO_DATA;
}

// A waiting detection as a Signal (PendingDetection) and back.
v1::Signal ToSignal(const Detection& d) {
  v1::Signal s;
  *s.mutable_series() = d.series;
  s.set_kind(d.kind);
  s.set_severity(d.severity);
  s.set_score(d.score);
  *s.mutable_probabilities() = d.probs;
  s.set_observed(d.observed);
  s.set_forecast(d.forecast);
  s.set_forecast_lower(d.lower);
  s.set_forecast_upper(d.upper);
  s.set_window_start_ms(d.window_start_ms);
  return s;
}

Detection FromSignal(const v1::Signal& s, const std::string& reason) {
  Detection d;
  d.series = s.series();
  d.kind = s.kind();
  d.severity = s.severity();
  d.score = s.score();
  d.probs = s.probabilities();
  d.observed = s.observed();
  d.forecast = s.forecast();
  d.lower = s.forecast_lower();
  d.upper = s.forecast_upper();
  d.window_start_ms = s.window_start_ms();
  d.reason = reason;
  return d;
}

}  // namespace

int FavourableDirection(const IndicatorConfig* indicator, const std::string& name) {
  if (indicator != nullptr && indicator->role != Role::kNone) return +1;
  if (name == "productivity" || name == "latency" || name == "performance") return +1;
  return 0;
}

AlerterMetrics::AlerterMetrics(prometheus::Registry& r)
    : series(prometheus::BuildGauge()
                 .Name("cybersyn_alerter_series_tracked")
                 .Help("Series with a detector on this alerter instance")
                 .Register(r)
                 .Add({})),
      open(prometheus::BuildGauge()
               .Name("cybersyn_alerter_signals_open")
               .Help("Open signals by current level and kind")
               .Register(r)),
      escalations(prometheus::BuildCounter()
                      .Name("cybersyn_alerter_escalations_total")
                      .Help("Signals that climbed a level")
                      .Register(r)
                      .Add({})),
      update(prometheus::BuildHistogram()
                 .Name("cybersyn_alerter_detector_update_seconds")
                 .Help("Time of one detector update (every 16th is timed)")
                 .Register(r)
                 .Add({}, prometheus::Histogram::BucketBoundaries{1e-7, 2.5e-7, 5e-7, 1e-6, 2.5e-6,
                                                                  1e-5, 1e-4, 1e-3})),
      resets(prometheus::BuildCounter()
                 .Name("cybersyn_alerter_detector_resets_total")
                 .Help("Detector states reset because they became non-finite")
                 .Register(r)
                 .Add({})),
      attributed(prometheus::BuildCounter()
                     .Name("cybersyn_alerter_attributed_total")
                     .Help("Detections attributed to other signals (also visible at), not raised")
                     .Register(r)),
      aggregates(prometheus::BuildCounter()
                     .Name("cybersyn_alerter_aggregates_total")
                     .Help("Window aggregates consumed, by result")
                     .Register(r)),
      commands(prometheus::BuildCounter()
                   .Name("cybersyn_alerter_commands_total")
                   .Help("Operator commands consumed, by result")
                   .Register(r)),
      transitions(prometheus::BuildCounter()
                      .Name("cybersyn_alerter_transitions_total")
                      .Help("Signal transitions published, by kind")
                      .Register(r)),
      attribution_timeout_family(
          prometheus::BuildCounter()
              .Name("cybersyn_alerter_attribution_timeouts_total")
              .Help("Waiting detections decided without the whole shared view of open signals "
                    "(a task behind, down or without series): the only attribution decisions a "
                    "replay may not repeat")
              .Register(r)),
      applied(aggregates.Add({{"result", "applied"}})),
      duplicate(aggregates.Add({{"result", "duplicate"}})),
      bad_aggregate(aggregates.Add({{"result", "bad"}})),
      bad_detector(aggregates.Add({{"result", "bad_detector"}})),
      command_applied(commands.Add({{"result", "applied"}})),
      command_rejected(commands.Add({{"result", "rejected"}})),
      command_duplicate(commands.Add({{"result", "duplicate"}})),
      bad_command(commands.Add({{"result", "bad"}})),
      attributed_to_bases(attributed.Add({{"rule", "bases"}})),
      attributed_to_descendants(attributed.Add({{"rule", "descendants"}})),
      attribution_timeouts(attribution_timeout_family.Add({})) {}

AlerterProcessor::AlerterProcessor(const AlerterTopologyOptions& options, int32_t partition)
    : o_(options),
      partition_(partition),
      aggregates_topic_(TopicNames(options.prefix).aggregates),
      book_(options.config->hierarchy,
            SignalBookOptions{.auto_resolve_after = options.config->alerter.auto_resolve_after}) {}

uint64_t AlerterProcessor::WindowsOf(absl::string_view series_id) const {
  auto it = series_.find(series_id);
  return it == series_.end() ? 0 : it->second.windows;
}

absl::StatusOr<AlerterProcessor::Series> AlerterProcessor::NewSeries(const v1::SeriesKey& key) {
  Series s;
  s.key = key;
  const IndicatorConfig* ind = o_.config->FindIndicator(key.indicator());
  const DetectorKind kind = ind != nullptr ? ind->detector.kind : DetectorKind::kCyberstride;
  if (kind == DetectorKind::kNone) return s;
  DetectorParams params;
  if (ind != nullptr) {
    for (const auto& [k, v] : ind->detector.params) params[k] = v;
  }
  s.detector_kind = DetectorKindName(kind);
  ApplyAlertBudget(
      s.detector_kind,
      ind != nullptr && ind->alert_budget ? *ind->alert_budget : o_.config->alerter.alert_budget,
      params);
  ASSIGN_OR_RETURN(s.detector, MakeDetector(s.detector_kind, params));
  return s;
}

void AlerterProcessor::MarkDirty(const std::string& id, Series& s) {
  if (s.dirty) return;
  s.dirty = true;
  dirty_series_.push_back({&id, &s});
}

absl::Status AlerterProcessor::Load(absl::string_view key, absl::string_view value) {
  absl::string_view k = key;
  bool legacy = false;
  if (absl::ConsumePrefix(&k, kSeriesKeyPrefix)) {
    auto id = ParseSeriesId(k);
    if (!id) return absl::DataLossError(absl::StrCat("series key '", k, "' is not node|ind|ms"));
    ASSIGN_OR_RETURN(v1::AlerterSeriesState st, DecodeSeriesState(value, &legacy));
    ASSIGN_OR_RETURN(Series s, NewSeries(*id));
    bool fresh = false;
    if (s.detector != nullptr && !st.detector_kind().empty() &&
        st.detector_kind() != s.detector_kind) {
      // The configuration changed the series' detector: its state means nothing to the new one.
      spdlog::info("[alerter] series {}: detector {} configured instead of {}; starting afresh",
                   Std(k), s.detector_kind, st.detector_kind());
      fresh = true;
    } else if (s.detector != nullptr && !st.detector().empty()) {
      RETURN_IF_ERROR(Annotate(s.detector->Restore(st.detector()), "detector state"));
    }
    s.windows = st.windows();
    s.last_window_start = st.last_window_start_ms();
    s.last_arrival_ms = st.last_arrival_ms();
    s.no_data_raised_for = st.no_data_raised_for_ms();
    auto [it, inserted] = series_.insert_or_assign(std::string(k), std::move(s));
    if (legacy || fresh) MarkDirty(it->first, it->second);
    return absl::OkStatus();
  }
  if (absl::ConsumePrefix(&k, kSignalKeyPrefix)) {
    ASSIGN_OR_RETURN(OpenSignal s, DecodeOpenSignal(value, &legacy));
    if (legacy) changes_.push_back({std::string(key), EncodeOpenSignal(s)});
    book_.Restore(std::move(s));
    return absl::OkStatus();
  }
  if (absl::ConsumePrefix(&k, kCommandKeyPrefix)) {
    ASSIGN_OR_RETURN(int64_t at, DecodeAppliedCommand(value, &legacy));
    if (legacy) changes_.push_back({std::string(key), EncodeAppliedCommand(at)});
    commands_[std::string(k)] = at;
    return absl::OkStatus();
  }
  if (absl::StartsWith(key, kViewSignalKeyPrefix) ||
      absl::StartsWith(key, kViewProgressKeyPrefix)) {
    return view_.Load(key, value);
  }
  if (absl::ConsumePrefix(&k, kPendingKeyPrefix)) {
    v1::PendingDetection p;
    if (!p.ParseFromArray(value.data(), static_cast<int>(value.size()))) {
      return absl::DataLossError(absl::StrCat("pending detection '", k, "' does not parse"));
    }
    Pending& w = pending_[std::string(k)];
    w.d = FromSignal(p.detection(), p.reason());
    w.arrived_ms = p.arrived_at_ms();
    const Hierarchy::Node* n = o_.config->hierarchy->Find(w.d.series.node());
    w.depth = n != nullptr ? n->depth : 0;
    return absl::OkStatus();
  }
  return absl::DataLossError(absl::StrCat("unknown alerter state key '", key, "'"));
}

void AlerterProcessor::Init(stream::Emitter&) {
  if (o_.attribution && o_.partitions) partitions_ = std::max(0, o_.partitions());
  if (o_.observer == nullptr || book_.open().empty()) return;
  std::vector<v1::Signal> open;
  for (const auto& [id, s] : book_.open()) open.push_back(s.signal);
  o_.observer->OnRestored(open);
}

void AlerterProcessor::Close(bool revoked) {
  if (!pending_.empty()) {
    spdlog::info("[alerter] task {}: {} detection(s) waiting for the shared view (first {})",
                 partition_, pending_.size(), pending_.begin()->first);
  }
  if (!revoked || o_.observer == nullptr || book_.open().empty()) return;
  std::vector<std::string> ids;
  for (const auto& [id, s] : book_.open()) ids.push_back(id);
  o_.observer->OnRevoked(ids);
}

void AlerterProcessor::Emit(std::vector<v1::SignalEvent> events, stream::Emitter& out) {
  v1::ViewUpdate view;
  for (const v1::SignalEvent& e : events) {
    out.Send(kSignalsOut, e.signal().origin_node(), e.SerializeAsString());
    out.Count(kEvents);
    const v1::TransitionKind t = e.transition().kind();
    if (partitions_ > 0 && Explainer(e.signal().kind()) &&
        (t == v1::TRANSITION_KIND_RAISED || t == v1::TRANSITION_KIND_UPDATED ||
         t == v1::TRANSITION_KIND_RESOLVED)) {
      v1::Signal* s = view.add_signals();
      *s = e.signal();
      s->clear_history();
      s->clear_also_visible_at();
    }
  }
  if (view.signals_size() > 0) Broadcast(view, view.signals(0).origin_node(), out);
}

void AlerterProcessor::Broadcast(const v1::ViewUpdate& update, const std::string& key,
                                 stream::Emitter& out) {
  v1::Command c;
  c.set_kind(v1::COMMAND_KIND_VIEW);
  *c.mutable_view() = update;
  c.mutable_view()->set_from_partition(partition_);
  const std::string value = c.SerializeAsString();
  for (int q = 0; q < partitions_; ++q) out.Send(kCommandsOut, key, value, {}, q);
}

void AlerterProcessor::Process(const ConsumedMessage& m, stream::Emitter& out) {
  const absl::string_view value = m.value();
  const int64_t now = out.now_ms();
  if (m.topic() == aggregates_topic_) {
    if (!agg_.ParseFromArray(value.data(), static_cast<int>(value.size())) ||
        agg_.series().node().empty()) {
      o_.metrics->bad_aggregate.Increment();
      out.DeadLetter(m, "malformed", std::string(value));
      return;
    }
    ProcessAggregate(agg_, now, out);
    return;
  }
  v1::Command cmd;
  if (!cmd.ParseFromArray(value.data(), static_cast<int>(value.size()))) {
    o_.metrics->bad_command.Increment();
    out.DeadLetter(m, "malformed", std::string(value));
    return;
  }
  ProcessCommand(cmd, now, out);
}

AlerterProcessor::Series* AlerterProcessor::FindOrCreate(const v1::WindowAggregate& agg,
                                                         const std::string** id) {
  sid_.clear();
  absl::StrAppend(&sid_, agg.series().node(), "|", agg.series().indicator(), "|",
                  agg.series().window_ms());
  auto it = series_.find(sid_);
  if (it == series_.end()) {
    auto s = NewSeries(agg.series());
    if (!s.ok()) {
      spdlog::warn("[alerter] series {}: {}", sid_, s.status().ToString());
      return nullptr;
    }
    it = series_.emplace(sid_, std::move(*s)).first;
  }
  *id = &it->first;
  return &it->second;
}

void AlerterProcessor::ProcessAggregate(const v1::WindowAggregate& agg, int64_t now,
                                        stream::Emitter& out) {
  const std::string* id = nullptr;
  Series* found = FindOrCreate(agg, &id);
  if (found == nullptr) {
    o_.metrics->bad_detector.Increment();
    return;
  }
  Series& ss = *found;
  if (ss.windows > 0 && agg.window_start_ms() <= ss.last_window_start) {
    out.Count(kDuplicates);
    ++duplicates_;
    return;
  }
  const IndicatorConfig* ind = o_.config->FindIndicator(agg.series().indicator());
  const double value = agg.value();
  Verdict verdict;
  if (ss.detector != nullptr) {
    const int64_t w = agg.series().window_ms();
    if (ss.windows > 0 && w > 0) {
      int fill = 0;
      for (int64_t t = ss.last_window_start + w;
           t < agg.window_start_ms() && fill < kMaxMissingFill; t += w, ++fill) {
        ss.detector->Update({t, 0.0, true});
      }
    }
    if (updates_++ % 16 == 0) {
      const auto t0 = std::chrono::steady_clock::now();
      verdict = ss.detector->Update({agg.window_start_ms(), value, false});
      o_.metrics->update.Observe(
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    } else {
      verdict = ss.detector->Update({agg.window_start_ms(), value, false});
    }
    if (verdict.reset) o_.metrics->resets.Increment();
  }
  bool breached = false;
  if (ind != nullptr) {
    breached = (ind->thresholds.min && value < *ind->thresholds.min) ||
               (ind->thresholds.max && value > *ind->thresholds.max);
  }
  ss.windows++;
  ss.last_window_start = agg.window_start_ms();
  ss.last_arrival_ms = now;
  MarkDirty(*id, ss);
  const bool warm = ss.windows > static_cast<uint64_t>(std::max(0, o_.config->alerter.warmup));
  Emit(book_.OnWindow(agg.series(), *id,
                      {.detector_anomalous = verdict.score >= 0.5,
                       .threshold_breached = breached,
                       .new_level = verdict.new_level},
                      now),
       out);
  auto detection = [&](v1::SignalKind kind) {
    Detection d;
    d.series = agg.series();
    d.kind = kind;
    d.score = verdict.score;
    d.probs.set_steady(verdict.probs.steady);
    d.probs.set_transient(verdict.probs.transient);
    d.probs.set_step(verdict.probs.step);
    d.probs.set_slope(verdict.probs.slope);
    d.observed = value;
    d.forecast = std::isfinite(verdict.forecast) ? verdict.forecast : 0;
    d.lower = std::isfinite(verdict.lower) ? verdict.lower : 0;
    d.upper = std::isfinite(verdict.upper) ? verdict.upper : 0;
    d.window_start_ms = agg.window_start_ms();
    d.severity = SeverityFor(verdict.score, value, verdict.forecast, verdict.lower, verdict.upper);
    return d;
  };
  if (verdict.signal && warm) {
    v1::SignalKind kind = ToProto(verdict.kind);
    Detection d = detection(kind);
    const int fav = FavourableDirection(ind, agg.series().indicator());
    if ((kind == v1::SIGNAL_KIND_STEP || kind == v1::SIGNAL_KIND_SLOPE) && fav != 0 &&
        static_cast<int>(verdict.direction) == fav) {
      d.kind = v1::SIGNAL_KIND_REWARD;
      d.severity = v1::SEVERITY_REWARD;
      d.reason = absl::StrCat("favourable ", std::string(SignalKindName(verdict.kind)));
    } else {
      d.reason = KindLabel(verdict.kind, verdict.direction);
    }
    // A new signal only: an open one is updated as before.
    if (!o_.attribution || book_.FindOpen(d.series, d.kind) != nullptr) {
      Emit(book_.OnDetection(d, now), out);
    } else if (AttributeToBases(d, now, out)) {
    } else if (MayWait(d)) {
      Hold(*id, std::move(d), now);
    } else {
      Emit(book_.OnDetection(d, now), out);
    }
  }
  if (breached && book_.FindOpen(agg.series(), v1::SIGNAL_KIND_THRESHOLD) == nullptr) {
    Detection d = detection(v1::SIGNAL_KIND_THRESHOLD);
    d.score = 1.0;
    d.severity = v1::SEVERITY_ALERT;
    d.reason = ind->thresholds.max && value > *ind->thresholds.max
                   ? absl::StrCat("above the limit ", *ind->thresholds.max)
                   : absl::StrCat("below the limit ", *ind->thresholds.min);
    Emit(book_.OnDetection(d, now), out);
  }
  out.Count(kAggregates);
  ++applied_;
  progressed_ = true;
}

bool AlerterProcessor::AttributeToBases(const Detection& d, int64_t now, stream::Emitter& out) {
  const std::vector<const IndicatorConfig*> bases = o_.config->BasesOf(d.series.indicator());
  if (bases.size() != 2) return false;
  // Per base (numerator, denominator): its open detector signal at the node, of the index's
  // window size if there is one, else of the finest.
  const OpenSignal* found[2] = {nullptr, nullptr};
  auto rank = [&](const OpenSignal* s) {
    return std::pair(s->signal.series().window_ms() != d.series.window_ms(),
                     s->signal.series().window_ms());
  };
  for (const auto& [id, s] : book_.open()) {
    const v1::Signal& sig = s.signal;
    if (sig.series().node() != d.series.node() || sig.kind() == v1::SIGNAL_KIND_THRESHOLD ||
        sig.kind() == v1::SIGNAL_KIND_NO_DATA) {
      continue;
    }
    for (int b = 0; b < 2; ++b) {
      // `attribution: off` on the index's base (config): its signals explain nothing.
      if (!o_.config->MayAttribute(d.series.indicator(), bases[b]->name)) continue;
      if (sig.series().indicator() == bases[b]->name && (!found[b] || rank(&s) < rank(found[b]))) {
        found[b] = &s;
      }
    }
  }
  BaseMove moves[2];
  const BaseMove* ptr[2] = {nullptr, nullptr};
  for (int b = 0; b < 2; ++b) {
    if (found[b] == nullptr) continue;
    moves[b] = {found[b]->signal.observed(), found[b]->signal.forecast()};
    ptr[b] = &moves[b];
  }
  if (ptr[0] == nullptr && ptr[1] == nullptr) return false;
  if (!Explains(d.observed, d.forecast, d.lower, d.upper,
                ExpectedIndexMove(d.forecast, ptr[0], ptr[1]))) {
    return false;
  }
  // Recorded on each base signal whose own move goes the deviation's way.
  const bool up = d.observed > d.forecast;
  std::vector<std::string> ids;
  for (int b = 0; b < 2; ++b) {
    if (ptr[b] == nullptr) continue;
    const double alone =
        ExpectedIndexMove(d.forecast, b == 0 ? ptr[0] : nullptr, b == 1 ? ptr[1] : nullptr);
    if (alone != 0 && (alone > 0) == up) ids.push_back(found[b]->signal.id());
  }
  for (const std::string& id : ids) {
    Emit(book_.AlsoVisible(id, d.series, d.window_start_ms, now), out);
  }
  out.Count(kAttributed);
  o_.metrics->attributed_to_bases.Increment();
  return true;
}

bool AlerterProcessor::MayWait(const Detection& d) const {
  // `attribution: off` on the indicator: every level raises on its own view, at once.
  if (partitions_ <= 0 || !o_.config->MayAttribute(d.series.indicator(), d.series.indicator())) {
    return false;
  }
  const Hierarchy::Node* n = o_.config->hierarchy->Find(d.series.node());
  if (n == nullptr) return false;
  if (!n->is_leaf()) return true;
  const auto& windows = o_.config->aggregator.windows;
  return !windows.empty() && d.series.window_ms() > absl::ToInt64Milliseconds(windows.front());
}

void AlerterProcessor::Hold(const std::string& series_id, Detection d, int64_t now) {
  // Each window's detection waits on its own: a replay applies many windows in one batch.
  std::string key = absl::StrCat(series_id, "#", d.window_start_ms);
  const Hierarchy::Node* n = o_.config->hierarchy->Find(d.series.node());
  pending_[key] = {std::move(d), now, n != nullptr ? n->depth : 0};
  dirty_pending_.insert(std::move(key));
}

int64_t AlerterProcessor::OwnWatermark() const {
  int64_t mark = 0;
  for (const auto& [id, s] : series_) {
    if (s.windows > 0) mark = std::max(mark, s.last_window_start + s.key.window_ms());
  }
  return mark;
}

void AlerterProcessor::DecideCovered(int64_t now, stream::Emitter& out) {
  if (pending_.empty()) return;
  const int64_t own = OwnWatermark();
  for (auto it = pending_.begin(); it != pending_.end();) {
    const Pending& p = it->second;
    const int64_t w = p.d.series.window_ms();
    const int64_t wait = int64_t{o_.attribution_wait} * w;
    // Covered: every task processed the series that could explain it (deeper, or at its depth
    // in finer windows; not coarser) up to `lag` windows after its own. The decision then reads
    // the view as of that point (AttributeToDescendants), so it is the same whenever it is taken.
    const int64_t until = p.d.window_start_ms + (1 + int64_t{o_.attribution_lag}) * w;
    bool decide = view_.Covers(partitions_, until, [&](int64_t window_ms, int32_t depth) {
      return window_ms <= w && (depth > p.depth || (depth == p.depth && window_ms < w));
    });
    // Not covered: a task is behind, down or has no series. Decided without it once this task's
    // own input has gone `wait` windows past the coverage point AND as long has passed since the
    // detection was held: neither a replay (input far ahead, the view following within moments)
    // nor a stalled pipeline (no input) decides early. Or, with no input at all, after
    // kStalledWaits times the wait (the end of the data).
    bool timed_out = false;
    if (!decide) {
      const int64_t held = now - p.arrived_ms;
      timed_out = (own >= until + wait && held >= wait) || held >= kStalledWaits * wait;
      decide = timed_out;
    }
    if (!decide) {
      ++it;
      continue;
    }
    if (timed_out) {
      o_.metrics->attribution_timeouts.Increment();
      spdlog::warn(
          "[alerter] {} {} window {}: decided without the whole view (a task is "
          "behind or has no series); attribution is best effort for it",
          p.d.series.node(), p.d.series.indicator(), p.d.window_start_ms);
    }
    if (!AttributeToDescendants(p.d, out)) Emit(book_.OnDetection(p.d, now), out);
    dirty_pending_.insert(it->first);
    it = pending_.erase(it);
    progressed_ = true;  // the progress it held back moves on
  }
}

void AlerterProcessor::PruneView() {
  // Resolved signals stay while a decision could still read them as of its window: the oldest
  // waiting detection's, or this task's newest, less the recency bound and a margin.
  int64_t horizon = OwnWatermark();
  int64_t widest = 0;
  for (const absl::Duration& d : o_.config->aggregator.windows) {
    widest = std::max(widest, absl::ToInt64Milliseconds(d));
  }
  for (const auto& [id, p] : pending_) horizon = std::min(horizon, p.d.window_start_ms);
  view_.Prune(horizon - (2 * int64_t{o_.attribution_wait} + 2) * widest);
}

int AlerterProcessor::LeavesUnder(const Hierarchy::Node* n) {
  auto it = leaves_.find(n);
  if (it != leaves_.end()) return it->second;
  int count = n->is_leaf() ? 1 : 0;
  for (const Hierarchy::Node* c : n->children) count += LeavesUnder(c);
  leaves_[n] = count;
  return count;
}

bool AlerterProcessor::AttributeToDescendants(const Detection& d, stream::Emitter& out) {
  const Hierarchy& h = *o_.config->hierarchy;
  const std::string& node = d.series.node();
  const Hierarchy::Node* at = h.Find(node);
  if (at == nullptr) return false;
  const int64_t w = d.series.window_ms();
  const bool reward = d.kind == v1::SIGNAL_KIND_REWARD;
  // The view is read as of the window the decision waited for (the coverage point): the same
  // signals and departures whether the owners have gone further since or not.
  const int64_t until = d.window_start_ms + (1 + int64_t{o_.attribution_lag}) * w;
  struct Candidate {
    const SharedView::Entry* e = nullptr;
    const SharedView::Detected* det = nullptr;
  };
  // Per node, one candidate: the same window size if open, else the finest; then the latest
  // detection, then the id (deterministic, whatever the map's order).
  absl::btree_map<std::string, Candidate> best;
  auto rank = [&](const Candidate& c) {
    const v1::Signal& s = c.e->signal;
    return std::tuple(s.series().window_ms() != w, s.series().window_ms(), -c.det->window_start_ms,
                      s.id());
  };
  for (const auto& [id, e] : view_.signals()) {
    const v1::Signal& s = e.signal;
    if (s.series().indicator() != d.series.indicator() || !Explainer(s.kind()) ||
        (s.kind() == v1::SIGNAL_KIND_REWARD) != reward) {
      continue;
    }
    const std::string& m = s.series().node();
    const bool below = m != node && Hierarchy::PathIsInSubtree(m, node);
    if (!below && !(m == node && s.series().window_ms() < w)) continue;
    // Only a recent detection explains: an old signal's departure is already in the forecast.
    const SharedView::Detected* det = SharedView::AsOf(e, until);
    if (det == nullptr || det->window_start_ms + s.series().window_ms() <
                              d.window_start_ms - int64_t{o_.attribution_wait} * w) {
      continue;
    }
    const Candidate c{&e, det};
    Candidate& b = best[m];
    if (b.e == nullptr || rank(c) < rank(b)) b = c;
  }
  // A candidate whose ancestor (up to the node) is a candidate too is already in its move.
  std::vector<Candidate> top;
  for (const auto& [m, c] : best) {
    bool covered = false;
    for (const auto& [a, other] : best) {
      if (a != m && Hierarchy::PathIsInSubtree(m, a)) covered = true;
    }
    if (!covered) top.push_back(c);
  }
  if (top.empty()) return false;
  const IndicatorConfig* ind = o_.config->FindIndicator(d.series.indicator());
  RollupShape shape = RollupShape::kSum;
  if (!o_.config->BasesOf(d.series.indicator()).empty() ||
      (ind != nullptr && ind->rollup == Rollup::kMean)) {
    shape = RollupShape::kIntensive;
  } else if (ind != nullptr && ind->rollup != Rollup::kSum) {
    shape = RollupShape::kPass;
  }
  const int at_leaves = LeavesUnder(at);
  const bool up = d.observed > d.forecast;
  double move = 0;
  std::vector<const SharedView::Entry*> agreeing;
  for (const Candidate& c : top) {
    const SharedView::Entry* e = c.e;
    const v1::Signal& s = e->signal;
    const Hierarchy::Node* mn = h.Find(s.series().node());
    const double part =
        RolledUpDeparture(shape, c.det->observed - c.det->forecast, s.series().window_ms(),
                          mn != nullptr ? LeavesUnder(mn) : 1, w, at_leaves);
    move += part;
    if (part != 0 && (part > 0) == up) agreeing.push_back(e);
  }
  if (!Explains(d.observed, d.forecast, d.lower, d.upper, move)) return false;
  for (const SharedView::Entry* e : agreeing) {
    v1::Command c;
    c.set_kind(v1::COMMAND_KIND_ATTRIBUTE);
    c.set_signal_id(e->signal.id());
    *c.mutable_attribute()->mutable_series() = d.series;
    c.mutable_attribute()->set_window_start_ms(d.window_start_ms);
    out.Send(kCommandsOut, e->signal.origin_node(), c.SerializeAsString(), {}, e->from_partition);
  }
  out.Count(kAttributed);
  o_.metrics->attributed_to_descendants.Increment();
  return true;
}

void AlerterProcessor::ShareProgress(stream::Emitter& out) {
  // A task without series claims nothing: it cannot know that none will come (its aggregates
  // may simply not have arrived yet), so the other tasks' decisions wait for them or the timeout.
  if (!progressed_) return;
  progressed_ = false;
  const int wait = std::max(1, o_.attribution_wait);
  // Per (window ms, depth): the newest window start, and the end every active series reached.
  std::map<std::pair<int64_t, int32_t>, std::pair<int64_t, int64_t>> by;
  auto key_of = [&](const Series& s) {
    const Hierarchy::Node* n = o_.config->hierarchy->Find(s.key.node());
    return std::pair<int64_t, int32_t>{s.key.window_ms(), n != nullptr ? n->depth : 0};
  };
  for (const auto& [id, s] : series_) {
    if (s.windows == 0) continue;
    auto [it, inserted] = by.try_emplace(key_of(s), s.last_window_start, INT64_MAX);
    it->second.first = std::max(it->second.first, s.last_window_start);
  }
  std::map<std::pair<int64_t, int32_t>, int64_t> covered;
  for (const auto& [id, s] : series_) {
    if (s.windows == 0) continue;
    const auto key = key_of(s);
    auto& [newest, reached] = by[key];
    const int64_t w = key.first;
    // A series more than `wait` windows behind its peers (a silent unit) holds nothing back.
    if (s.last_window_start < newest - wait * w) continue;
    reached = std::min(reached, s.last_window_start + w);
  }
  for (const auto& [key, v] : by) covered[key] = v.second;
  // The task's watermark (depth -1): the newest window end it processed. A (size, depth) it
  // owns no series of is covered only up to there, not for ever.
  int64_t watermark = 0;
  for (const auto& [key, v] : by) watermark = std::max(watermark, v.first + key.first);
  if (watermark > 0) covered[{0, kWatermarkDepth}] = watermark;
  // A waiting detection is not decided: its window is not covered yet.
  for (const auto& [id, p] : pending_) {
    auto it = covered.find({p.d.series.window_ms(), p.depth});
    if (it != covered.end()) it->second = std::min(it->second, p.d.window_start_ms);
  }
  v1::ViewUpdate update;
  for (const auto& [key, to] : covered) {
    int64_t& sent = sent_progress_[key];
    if (to <= sent) continue;
    sent = to;
    v1::ViewProgress* g = update.add_progress();
    g->set_window_ms(key.first);
    g->set_depth(key.second);
    g->set_covered_to_ms(to);
  }
  if (update.progress_size() > 0) Broadcast(update, "progress", out);
}

void AlerterProcessor::ProcessCommand(const v1::Command& cmd, int64_t now, stream::Emitter& out) {
  // Between tasks, in transactions: exactly once without ids.
  if (cmd.kind() == v1::COMMAND_KIND_VIEW) {
    view_.Apply(cmd.view());
    if (cmd.view().progress_size() > 0) DecideCovered(now, out);
    return;
  }
  if (cmd.kind() == v1::COMMAND_KIND_ATTRIBUTE) {
    Emit(book_.AlsoVisible(cmd.signal_id(), cmd.attribute().series(),
                           cmd.attribute().window_start_ms(), now),
         out);
    return;
  }
  if (cmd.id().empty() || commands_.contains(cmd.id())) {
    o_.metrics->command_duplicate.Increment();
    return;
  }
  commands_[cmd.id()] = now;
  changes_.push_back({absl::StrCat(kCommandKeyPrefix, cmd.id()), EncodeAppliedCommand(now)});
  // Re-check the scope against this instance's config: the front end may be stale or forged.
  std::string scope;
  for (const OperatorConfig& op : o_.config->operators) {
    if (op.name == cmd.operator_id()) scope = op.subtree;
  }
  absl::Status st;
  if (scope.empty()) {
    st = absl::PermissionDeniedError(absl::StrCat("unknown operator ", cmd.operator_id()));
  } else if (!cmd.operator_scope().empty() &&
             !Hierarchy::PathIsInSubtree(cmd.operator_scope(), scope)) {
    st = absl::PermissionDeniedError("command scope wider than the operator's");
  } else {
    if (!cmd.operator_scope().empty()) scope = cmd.operator_scope();
    auto events = book_.Apply(cmd, scope, now);
    if (events.ok()) {
      Emit(std::move(*events), out);
      o_.metrics->command_applied.Increment();
      out.Count(kCommands);
      return;
    }
    st = events.status();
  }
  spdlog::info("[alerter] command {} ({} by {}) not applied: {}", cmd.id(),
               v1::CommandKind_Name(cmd.kind()), cmd.operator_id(), st.ToString());
  o_.metrics->command_rejected.Increment();
  out.Count(kRejectedCommands);
}

void AlerterProcessor::CheckNoData(int64_t now, stream::Emitter& out) {
  for (auto& [sid, ss] : series_) {
    const IndicatorConfig* ind = o_.config->FindIndicator(ss.key.indicator());
    if (ind == nullptr || !ind->expect_every || ss.windows == 0) continue;
    // Not expect_every alone: a series cannot report more often than its window closes.
    if (now - ss.last_arrival_ms <=
        NoDataAfterMs(*ind->expect_every, ss.key.window_ms(), o_.config->aggregator)) {
      continue;
    }
    if (ss.no_data_raised_for == ss.last_arrival_ms) continue;  // this silence was signalled
    if (book_.FindOpen(ss.key, v1::SIGNAL_KIND_NO_DATA) != nullptr) continue;
    Detection d;
    d.series = ss.key;
    d.kind = v1::SIGNAL_KIND_NO_DATA;
    d.severity = v1::SEVERITY_ALERT;
    d.score = 1.0;
    d.window_start_ms = ss.last_window_start + ss.key.window_ms();
    d.reason = absl::StrCat("no data for ",
                            absl::FormatDuration(absl::Milliseconds(now - ss.last_arrival_ms)));
    Emit(book_.OnDetection(d, now), out);
    ss.no_data_raised_for = ss.last_arrival_ms;
    MarkDirty(sid, ss);
  }
  for (auto it = commands_.begin(); it != commands_.end();) {
    if (now - it->second > kCommandMemoryMs) {
      changes_.push_back({absl::StrCat(kCommandKeyPrefix, it->first), ""});
      commands_.erase(it++);
    } else {
      ++it;
    }
  }
}

void AlerterProcessor::Punctuate(const stream::PunctuateInfo& info, stream::Emitter& out) {
  if (applied_ > 0) o_.metrics->applied.Increment(static_cast<double>(applied_));
  if (duplicates_ > 0) o_.metrics->duplicate.Increment(static_cast<double>(duplicates_));
  applied_ = duplicates_ = 0;
  Emit(book_.Tick(info.now_ms), out);
  if (partitions_ > 0) {
    DecideCovered(info.now_ms, out);
    ShareProgress(out);
    PruneView();
  }
  if (info.now_ms >= next_no_data_check_) {
    next_no_data_check_ = info.now_ms + 1000;
    CheckNoData(info.now_ms, out);
  }
}

void AlerterProcessor::TakeChanges(std::vector<stream::StateChange>* out) {
  for (stream::StateChange& c : changes_) out->push_back(std::move(c));
  changes_.clear();
  v1::AlerterSeriesState st;
  for (auto& [id, s] : dirty_series_) {
    st.Clear();
    st.set_windows(s->windows);
    st.set_last_window_start_ms(s->last_window_start);
    st.set_last_arrival_ms(s->last_arrival_ms);
    st.set_no_data_raised_for_ms(s->no_data_raised_for);
    if (s->detector != nullptr) {
      st.set_detector(s->detector->Serialize());
      st.set_detector_kind(std::string(s->detector_kind));
    }
    out->push_back({absl::StrCat(kSeriesKeyPrefix, *id), EncodeSeriesState(st)});
    s->dirty = false;
  }
  dirty_series_.clear();
  view_.TakeChanges(out);
  for (const std::string& id : dirty_pending_) {
    auto it = pending_.find(id);
    std::string value;
    if (it != pending_.end()) {
      v1::PendingDetection p;
      *p.mutable_detection() = ToSignal(it->second.d);
      p.set_reason(it->second.d.reason);
      p.set_arrived_at_ms(it->second.arrived_ms);
      value = p.SerializeAsString();
    }
    out->push_back({absl::StrCat(kPendingKeyPrefix, id), std::move(value)});
  }
  dirty_pending_.clear();
  for (const std::string& id : book_.TakeDirty()) {
    const OpenSignal* s = book_.Find(id);
    out->push_back(
        {absl::StrCat(kSignalKeyPrefix, id), s != nullptr ? EncodeOpenSignal(*s) : std::string()});
  }
}

stream::Topology AlerterTopology(const AlerterTopologyOptions& o) {
  const TopicNames names(o.prefix);
  stream::Topology t;
  t.role = "alerter";
  t.subtopologies.push_back(
      {"alr",
       {names.aggregates, names.commands},
       names.Changelog("alerter"),
       [o](int32_t partition) { return std::make_unique<AlerterProcessor>(o, partition); }});
  t.outputs = {names.signals, names.commands};
  t.deadletter = names.deadletter;
  t.counters = {"aggregates",        "duplicates", "commands",
                "rejected_commands", "events",     "attributed"};
  // The layout before the runtime ("p/<partition>/<key>", "o/<partition>"): its entries come
  // back from the changelog.
  t.obsolete_store_prefixes = {"p/", "o/"};
  return t;
}

}  // namespace cybersyn::alerter
