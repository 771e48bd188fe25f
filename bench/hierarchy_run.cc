#include "bench/hierarchy_run.h"

#include <cmath>
#include <filesystem>
#include <functional>
#include <thread>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "aggregator/aggregator.h"
#include "alerter/alerter_service.h"
#include "common/embedded_broker.h"
#include "common/kafka_admin.h"
#include "common/kafka_consumer.h"
#include "common/status.h"
#include "ingest/gateway.h"
#include "ingest/record_source.h"

namespace cybersyn::bench {
namespace {

// The simulator's records with the patterns' offsets added. `pace` is called before every
// kPaceEvery-th record: it holds the source back while the pipeline is far behind.
class PatternSource : public ingest::RecordSource {
 public:
  static constexpr uint64_t kPaceEvery = 1000;
  PatternSource(std::unique_ptr<ingest::RecordSource> inner, const std::vector<Pattern>& patterns,
                std::function<void(uint64_t)> pace)
      : inner_(std::move(inner)), pace_(std::move(pace)) {
    for (const Pattern& p : patterns) {
      for (const auto& [unit, size] : p.per_sample) {
        by_series_[absl::StrCat(unit, "|", p.truth.indicator)].push_back(&p);
      }
    }
  }
  Result Next(v1::Record* out, const Hierarchy::Node** enterprise,
              ingest::RecordError* err) override {
    Pace();
    const Result r = inner_->Next(out, enterprise, err);
    if (r == Result::kRecord) {
      out->set_value(out->value() + Offset(out->node(), out->indicator(), out->event_time_ms()));
    }
    return r;
  }
  Result NextRef(ingest::RecordRef* out, const Hierarchy::Node** enterprise,
                 ingest::RecordError* err) override {
    Pace();
    const Result r = inner_->NextRef(out, enterprise, err);
    if (r == Result::kRecord) out->value += Offset(out->node, out->indicator, out->event_time_ms);
    return r;
  }
  std::string Identity() const override { return inner_->Identity(); }
  std::string Position() const override { return inner_->Position(); }
  absl::Status Seek(absl::string_view position) override { return inner_->Seek(position); }
  int64_t event_time_ms() const override { return inner_->event_time_ms(); }
  const ingest::Simulator* sim() const { return ingest::SimulatorOf(*inner_); }

 private:
  void Pace() {
    if (++read_ % kPaceEvery == 0 && pace_) pace_(read_);
  }
  double Offset(absl::string_view node, absl::string_view indicator, int64_t t) {
    key_.assign(node.data(), node.size());
    key_ += '|';
    key_.append(indicator.data(), indicator.size());
    auto it = by_series_.find(key_);
    if (it == by_series_.end()) return 0;
    double sum = 0;
    unit_.assign(node.data(), node.size());
    for (const Pattern* p : it->second) sum += p->OffsetAt(unit_, t);
    return sum;
  }
  std::unique_ptr<ingest::RecordSource> inner_;
  absl::flat_hash_map<std::string, std::vector<const Pattern*>> by_series_;
  std::function<void(uint64_t)> pace_;
  uint64_t read_ = 0;
  std::string key_, unit_;  // scratch
};

// How far the gateway may run ahead of the aggregator (records) and the aggregator ahead of
// the alerter (aggregates). The embedded broker (librdkafka's mock cluster) keeps only about
// 5 MB per partition and drops the oldest messages beyond that, so an unpaced simulator, which
// produces hours of records in seconds, lost ~32 % of them before the aggregator read them.
constexpr uint64_t kMaxRecordsAhead = 40'000;
constexpr uint64_t kMaxAggregatesAhead = 20'000;

// Blocks while the pipeline is more than the bounds above behind `offered` records, or until
// nothing has moved for 30 s (then the run goes on, and a shortfall shows in the summary).
void WaitForPipeline(const aggregator::Aggregator& agg, alerter::AlerterService& svc,
                     uint64_t offered) {
  absl::Time moved = absl::Now();
  uint64_t last = UINT64_MAX;
  while (true) {
    const aggregator::AggregatorCounters ac = agg.counters();
    const alerter::Alerter::Stats st = svc.alerter()->stats();
    const uint64_t taken = st.aggregates + st.duplicates;
    const uint64_t behind_records = offered > ac.records ? offered - ac.records : 0;
    const uint64_t behind_aggregates = ac.emitted > taken ? ac.emitted - taken : 0;
    if (behind_records <= kMaxRecordsAhead && behind_aggregates <= kMaxAggregatesAhead) return;
    if (ac.records + taken != last) {
      last = ac.records + taken;
      moved = absl::Now();
    } else if (absl::Now() - moved > absl::Seconds(30)) {
      return;
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
}

// Every message of `topic` (all partitions), read_committed, until the input stays quiet.
absl::StatusOr<std::vector<v1::SignalEvent>> ReadSignals(const KafkaClientOptions& client,
                                                         const std::string& topic, int partitions) {
  ConsumerOptions co;
  co.client = client;
  co.read_committed = true;
  ASSIGN_OR_RETURN(auto consumer, KafkaConsumer::Create(co));
  std::vector<TopicPartitionOffset> all;
  for (int p = 0; p < partitions; ++p) all.push_back({topic, p, 0});
  RETURN_IF_ERROR(consumer->Assign(all));
  std::vector<v1::SignalEvent> out;
  for (int quiet = 0; quiet < 4;) {
    ASSIGN_OR_RETURN(auto batch, consumer->ConsumeBatch(5000, absl::Milliseconds(500)));
    quiet = batch.empty() ? quiet + 1 : 0;
    for (const ConsumedMessage& m : batch) {
      v1::SignalEvent e;
      if (!e.ParseFromArray(m.value().data(), static_cast<int>(m.value().size()))) {
        return absl::DataLossError(absl::StrCat(topic, "[", m.partition(), "] offset ", m.offset(),
                                                ": not a SignalEvent"));
      }
      out.push_back(std::move(e));
    }
  }
  (void)consumer->Close();
  return out;
}

// The harness's copy of the config: local state, an embedded broker, no forwarding, and a
// watermark that only records move (the idle advance would jump to the wall clock, a week ahead
// of the simulated time, whenever the harness stalls).
std::shared_ptr<const Config> HarnessConfig(const Config& base, const std::string& dir) {
  auto c = std::make_shared<Config>(base);
  c->aggregator.state_dir = dir + "/aggregator";
  c->alerter.state_dir = dir + "/alerter";
  c->gateway.buffer_dir = dir + "/gateway";
  c->gateway.max_future = absl::Hours(24);
  c->aggregator.idle_advance = absl::Hours(24 * 365);
  c->alerter.alertmanager.reset();
  return c;
}

// Waits until the aggregator has published aggregates and the alerter has taken every one, with
// nothing moving (records taken by the aggregator, aggregates published, aggregates taken) for
// five seconds: under load the roll-up stage may publish a while after the windows stage.
// `records` (the gateway's) only bounds the wait: the aggregator may take fewer (its dead letters).
absl::Status WaitForAlerter(aggregator::Aggregator& agg, alerter::AlerterService& svc,
                            uint64_t records, uint64_t* aggregates, uint64_t* taken_records) {
  const absl::Time deadline = absl::Now() + absl::Minutes(30);
  uint64_t last_taken = UINT64_MAX, last_emitted = UINT64_MAX, last_records = UINT64_MAX;
  int stable = 0, needed = 25;
  while (stable < needed) {
    if (absl::Now() > deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat("the pipeline did not catch up in 30 minutes: the aggregator took ",
                       *taken_records, " of ", records, " records, published ", *aggregates));
    }
    RETURN_IF_ERROR(svc.status());
    absl::SleepFor(absl::Milliseconds(200));
    const aggregator::AggregatorCounters ac = agg.counters();
    const alerter::Alerter::Stats st = svc.alerter()->stats();
    const uint64_t taken = st.aggregates + st.duplicates;
    const bool done = ac.emitted > 0 && taken >= ac.emitted;
    const bool still =
        taken == last_taken && ac.emitted == last_emitted && ac.records == last_records;
    stable = done && still ? stable + 1 : 0;
    needed = ac.records >= records ? 5 : 25;
    last_taken = taken;
    last_emitted = ac.emitted;
    last_records = ac.records;
    *aggregates = ac.emitted;
    *taken_records = ac.records;
  }
  return absl::OkStatus();
}

}  // namespace

double Pattern::OffsetAt(const std::string& unit, int64_t t) const {
  if (t < truth.start_ms || t >= truth.end_ms) return 0;
  auto it = per_sample.find(unit);
  if (it == per_sample.end()) return 0;
  if (shape == Shape::kStep) return it->second;
  const double ramp = std::max<double>(1, (truth.end_ms - truth.start_ms) / 12.0);
  const double f = std::min({1.0, (t - truth.start_ms) / ramp, (truth.end_ms - t) / ramp});
  return it->second * f;
}

absl::StatusOr<RunOutput> RunHierarchy(const RunSpec& spec) {
  const absl::Time t0 = absl::Now();
  std::error_code ec;
  std::filesystem::remove_all(spec.work_dir, ec);
  std::shared_ptr<const Config> config = HarnessConfig(*spec.config, spec.work_dir);
  ASSIGN_OR_RETURN(auto broker, EmbeddedBroker::Start(3));
  const KafkaClientOptions client{broker->bootstrap(), config->kafka.properties};
  const TopicEnsurer ensure = broker->ensurer();
  const TopicNames names(config->kafka.topic_prefix);
  RETURN_IF_ERROR(
      ensure(DeploymentTopics(names, config->kafka.partitions, config->kafka.replication_factor)));

  aggregator::AggregatorOptions aopts;
  aopts.config = config;
  aopts.client = client;
  aopts.instance_id = "harness";
  aopts.ensure_topics = ensure;
  ASSIGN_OR_RETURN(auto agg, aggregator::Aggregator::Create(aopts));
  RETURN_IF_ERROR(agg->Start());
  alerter::AlerterServiceOptions lopts;
  lopts.config = config;
  lopts.client = client;
  lopts.ensure_topics = ensure;
  lopts.instance_id = "harness";
  lopts.attribution = spec.attribution;
  ASSIGN_OR_RETURN(auto svc, alerter::AlerterService::Start(lopts));

  ingest::GatewayOptions gopts;
  gopts.config = config;
  gopts.brokers = client.bootstrap;
  ASSIGN_OR_RETURN(auto gateway, ingest::Gateway::Start(gopts));
  ASSIGN_OR_RETURN(auto sim, ingest::SimulatorSource(*config, spec.sim, "harness-sim",
                                                     &gateway->validator(), Clock::Real()));
  PatternSource source(std::move(sim), spec.patterns,
                       [&](uint64_t offered) { WaitForPipeline(*agg, *svc, offered); });
  ASSIGN_OR_RETURN(ingest::RunSummary run, gateway->Run(source, {}));
  RETURN_IF_ERROR(gateway->Drain(absl::Minutes(2)));
  RunOutput out;
  out.records = run.accepted;
  out.faults = source.sim()->faults();
  RETURN_IF_ERROR(
      WaitForAlerter(*agg, *svc, out.records, &out.aggregates, &out.aggregator_records));
  out.late = agg->counters().late;
  ASSIGN_OR_RETURN(out.events, ReadSignals(client, names.signals, config->kafka.partitions));
  gateway->Stop();
  svc->Stop();
  RETURN_IF_ERROR(agg->Stop());
  std::filesystem::remove_all(spec.work_dir, ec);
  out.took = absl::Now() - t0;
  return out;
}

std::map<std::string, double> WindowSigmas(const Config& config, ingest::SimulatorOptions sim,
                                           absl::Duration window, absl::Duration over) {
  sim.faults_per_series_per_day = 0;
  sim.duration = over;
  sim.max_records = 0;
  sim.speedup = 0;
  std::map<std::string, double> out;
  auto created = ingest::Simulator::Create(config, sim);
  if (!created.ok()) return out;
  ingest::Simulator& s = **created;
  const int64_t w = std::max<int64_t>(1, absl::ToInt64Milliseconds(window));
  struct Acc {
    int64_t window = INT64_MIN;
    double sum = 0;
    int n = 0;
    double prev = NAN;
    double diff2 = 0;
    int diffs = 0;
  };
  std::vector<Acc> acc(s.series().size());
  auto close = [&](uint32_t i, const Acc& a) {
    const IndicatorConfig* ind = config.FindIndicator(s.series()[i].indicator);
    return ind != nullptr && ind->rollup == Rollup::kSum ? a.sum : a.sum / std::max(1, a.n);
  };
  ingest::Simulator::Sample x;
  while (s.NextSample(&x)) {
    Acc& a = acc[x.series];
    const int64_t win = x.time_ms - x.time_ms % w;
    if (win != a.window && a.n > 0) {
      const double v = close(x.series, a);
      if (std::isfinite(a.prev)) {
        a.diff2 += (v - a.prev) * (v - a.prev);
        ++a.diffs;
      }
      a.prev = v;
      a.sum = 0;
      a.n = 0;
    }
    a.window = win;
    a.sum += x.value;
    ++a.n;
  }
  for (size_t i = 0; i < acc.size(); ++i) {
    if (acc[i].diffs == 0) continue;
    const auto& series = s.series()[i];
    out[absl::StrCat(series.unit->path, "|", series.indicator)] =
        std::sqrt(acc[i].diff2 / acc[i].diffs / 2);
  }
  return out;
}

}  // namespace cybersyn::bench
