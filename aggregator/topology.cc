#include "aggregator/topology.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/batch_decode.h"
#include "cybersyn/v1/aggregate.pb.h"
#include "prometheus/counter.h"
#include "prometheus/gauge.h"
#include "spdlog/spdlog.h"

namespace cybersyn::aggregator {

std::string RollupTopic(const std::string& prefix) {
  return absl::StrCat(prefix, ".aggregator-rollup");
}
std::string RecordsChangelog(const std::string& prefix) {
  return TopicNames(prefix).Changelog("aggregator");
}
std::string RollupChangelog(const std::string& prefix) {
  return TopicNames(prefix).Changelog("aggregator-rollup");
}

AggregatorMetrics::AggregatorMetrics(prometheus::Registry& r)
    : records(prometheus::BuildCounter()
                  .Name("cybersyn_aggregator_records_total")
                  .Help("Records offered to the aggregator, by outcome")
                  .Register(r)),
      late(prometheus::BuildCounter()
               .Name("cybersyn_aggregator_late_records_total")
               .Help("Records later than allowed lateness + grace")
               .Register(r)
               .Add({})),
      emitted(prometheus::BuildCounter()
                  .Name("cybersyn_aggregator_aggregates_total")
                  .Help("Closed window aggregates published")
                  .Register(r)
                  .Add({})),
      open_windows(prometheus::BuildGauge()
                       .Name("cybersyn_aggregator_open_windows")
                       .Help("Open windows held in state")
                       .Register(r)
                       .Add({})),
      legacy_dropped(prometheus::BuildCounter()
                         .Name("cybersyn_aggregator_restore_legacy_windows_dropped_total")
                         .Help("Rolled-up ancestor windows of an older version dropped on "
                               "restore (rebuilt from their children at close)")
                         .Register(r)
                         .Add({})),
      window_value(prometheus::BuildGauge()
                       .Name("cybersyn_aggregator_window_value")
                       .Help("Value (roll-up rule result) of the last closed window of each "
                             "node, indicator and window size")
                       .Register(r)),
      node_records(prometheus::BuildCounter()
                       .Name("cybersyn_aggregator_node_records_total")
                       .Help("Records applied per enterprise (a silent plant stops counting)")
                       .Register(r)) {
  for (Outcome o :
       {Outcome::kApplied, Outcome::kDuplicate, Outcome::kUnknownNode,
        Outcome::kNodeAboveEnterprise, Outcome::kWrongEnterprise, Outcome::kUnknownIndicator,
        Outcome::kNotFinite, Outcome::kBadTimestamp, Outcome::kLate}) {
    outcomes.resize(std::max<size_t>(outcomes.size(), static_cast<size_t>(o) + 1));
    outcomes[static_cast<int>(o)] = &records.Add({{"outcome", std::string(OutcomeReason(o))}});
  }
}

namespace {

// Buffers closed windows' aggregates (and roll-up contributions) for the transaction.
void Publish(std::vector<Emission>& emissions, stream::Emitter& out, AggregatorMetrics& metrics,
             absl::flat_hash_map<std::string, prometheus::Gauge*>& gauges, std::string& gauge_key) {
  for (Emission& e : emissions) {
    const v1::WindowAggregate& a = e.aggregate;
    std::string value = a.SerializeAsString();
    if (!e.rollup_parent.empty()) out.Send(kRollupOut, std::move(e.rollup_parent), value);
    // Family::Add builds and hashes a label map under a lock: once per series, not per window.
    gauge_key.clear();
    absl::StrAppend(&gauge_key, a.series().node(), "|", a.series().indicator(), "|",
                    a.series().window_ms());
    prometheus::Gauge*& gauge = gauges[gauge_key];
    if (gauge == nullptr) {
      gauge =
          &metrics.window_value.Add({{"node", a.series().node()},
                                     {"indicator", a.series().indicator()},
                                     {"window", absl::StrCat(a.series().window_ms() / 1000, "s")}});
    }
    gauge->Set(a.value());
    out.Send(kAggregatesOut, a.series().node(), std::move(value));
    metrics.emitted.Increment();
    out.Count(kEmitted);
  }
  emissions.clear();
}

}  // namespace

// --- stage 1 --------------------------------------------------------------------------------

RecordsProcessor::RecordsProcessor(const AggregatorTopologyOptions& options)
    : o_(options), windows_(options.model, options.clock->NowMillis()) {}

absl::Status RecordsProcessor::Load(absl::string_view key, absl::string_view value) {
  return windows_.Load(key, value);
}

void RecordsProcessor::Init(stream::Emitter&) {
  if (const uint64_t dropped = windows_.legacy_windows_dropped(); dropped > 0) {
    o_.metrics->legacy_dropped.Increment(static_cast<double>(dropped));
    spdlog::warn(
        "[aggregator] restore: dropped {} rolled-up ancestor window(s) of an older version "
        "(they are rebuilt from their children's windows at close; tombstoned at the next "
        "commit)",
        dropped);
  }
}

void RecordsProcessor::Process(const ConsumedMessage& m, stream::Emitter& out) {
  const absl::string_view v = m.value();
  // Record by record when the batch does not parse whole: one bad record costs only itself.
  bad_.clear();
  if (absl::Status s = DecodeRecordBatch(v, &batch_, &bad_); !s.ok()) {
    out.DeadLetter(m, "malformed", std::string(v), {{"problem", std::string(s.message())}});
    return;
  }
  for (const BadRecord& b : bad_) {
    out.DeadLetter(m, "malformed_record", std::string(b.wire),
                   {{"problem", b.reason},
                    {"record_index", absl::StrCat(b.index)},
                    {"gateway_id", batch_.gateway_id()}});
  }
  const Model& model = *o_.model;
  const int key_enterprise =
      batch_.enterprise().empty() ? -1 : model.NodeIndex(batch_.enterprise());
  const int64_t now = out.now_ms();
  uint64_t counts[16] = {0};
  for (const v1::Record& r : batch_.records()) {
    const Outcome oc = windows_.Offer(batch_.gateway_id(), r, key_enterprise, now);
    ++counts[static_cast<int>(oc)];
    if (oc == Outcome::kApplied || oc == Outcome::kDuplicate) continue;
    v1::Record copy = r;
    if (copy.gateway_id().empty()) copy.set_gateway_id(batch_.gateway_id());
    out.DeadLetter(m, OutcomeReason(oc), copy.SerializeAsString(),
                   {{"node", r.node()}, {"indicator", r.indicator()}});
  }
  out.Count(kRecords, batch_.records_size());
  for (size_t i = 0; i < o_.metrics->outcomes.size(); ++i) {
    if (counts[i] > 0) o_.metrics->outcomes[i]->Increment(static_cast<double>(counts[i]));
  }
  const uint64_t applied = counts[static_cast<int>(Outcome::kApplied)];
  if (applied > 0 && key_enterprise >= 0) {
    prometheus::Counter*& c = node_counters_[batch_.enterprise()];
    if (c == nullptr) c = &o_.metrics->node_records.Add({{"node", batch_.enterprise()}});
    c->Increment(static_cast<double>(applied));
  }
  out.Count(kApplied, applied);
  out.Count(kDuplicates, counts[static_cast<int>(Outcome::kDuplicate)]);
  out.Count(kLate, counts[static_cast<int>(Outcome::kLate)]);
  o_.metrics->late.Increment(static_cast<double>(counts[static_cast<int>(Outcome::kLate)]));
}

void RecordsProcessor::Punctuate(const stream::PunctuateInfo& info, stream::Emitter& out) {
  windows_.CloseDue(info.now_ms, &emissions_);
  windows_.AdvanceIdle(info.now_ms, info.caught_up, &emissions_);
  Publish(emissions_, out, *o_.metrics, window_gauges_, gauge_key_);
}

void RecordsProcessor::TakeChanges(std::vector<stream::StateChange>* out) {
  windows_.TakeChanges(out);
}

// --- stage 2 --------------------------------------------------------------------------------

RollupProcessor::RollupProcessor(const AggregatorTopologyOptions& options)
    : o_(options), rollup_(options.model) {}

absl::Status RollupProcessor::Load(absl::string_view key, absl::string_view value) {
  return rollup_.Load(key, value);
}

void RollupProcessor::Process(const ConsumedMessage& m, stream::Emitter& out) {
  const absl::string_view v = m.value();
  v1::WindowAggregate a;
  if (!a.ParseFromArray(v.data(), static_cast<int>(v.size()))) {
    out.DeadLetter(m, "malformed", std::string(v));
    return;
  }
  if (absl::Status s = rollup_.Offer(a, out.now_ms(), &emissions_); !s.ok()) {
    out.DeadLetter(m, s.message(), std::string(v));
    return;
  }
  Publish(emissions_, out, *o_.metrics, window_gauges_, gauge_key_);
}

void RollupProcessor::Punctuate(const stream::PunctuateInfo& info, stream::Emitter& out) {
  rollup_.Tick(info.now_ms, &emissions_);
  Publish(emissions_, out, *o_.metrics, window_gauges_, gauge_key_);
}

void RollupProcessor::TakeChanges(std::vector<stream::StateChange>* out) {
  rollup_.TakeChanges(out);
}

// --- topology -------------------------------------------------------------------------------

stream::Topology AggregatorTopology(const AggregatorTopologyOptions& o) {
  const TopicNames names(o.prefix);
  stream::Topology t;
  t.role = "aggregator";
  t.subtopologies.push_back({"rec", {names.records}, RecordsChangelog(o.prefix), [o](int32_t) {
                               return std::make_unique<RecordsProcessor>(o);
                             }});
  t.subtopologies.push_back(
      {"rol", {RollupTopic(o.prefix)}, RollupChangelog(o.prefix), [o](int32_t) {
         return std::make_unique<RollupProcessor>(o);
       }});
  t.outputs = {names.aggregates, RollupTopic(o.prefix)};
  t.deadletter = names.deadletter;
  t.counters = {"records", "applied", "duplicates", "late", "emitted"};
  return t;
}

}  // namespace cybersyn::aggregator
