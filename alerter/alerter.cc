#include "alerter/alerter.h"

#include <chrono>
#include <cmath>
#include <map>
#include <optional>

#include "absl/algorithm/container.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "alerter/detectors/detector.h"
#include "alerter/no_data.h"
#include "alerter/signal_book.h"
#include "common/kafka_consumer.h"
#include "common/kafka_producer.h"
#include "common/rocksdb_store.h"
#include "common/status.h"
#include "cybersyn/v1/aggregate.pb.h"
#include "cybersyn/v1/command.pb.h"
#include "prometheus/counter.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "spdlog/spdlog.h"

namespace cybersyn::alerter {
namespace {

constexpr int64_t kCommandMemoryMs = int64_t{7} * 24 * 3600 * 1000;  // commands topic retention
constexpr int kMaxMissingFill = 16;  // missing windows fed to a detector per gap (bounded work)

std::string_view Std(absl::string_view s) { return std::string_view(s.data(), s.size()); }

// --- compact encoding of the per-series state (<= 256 bytes with a cyberstride blob) ---
void PutVarint(std::string& out, uint64_t v) {
  do {
    uint8_t b = v & 0x7f;
    v >>= 7;
    out.push_back(static_cast<char>(v ? (b | 0x80) : b));
  } while (v);
}
bool GetVarint(absl::string_view& in, uint64_t& v) {
  v = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (in.empty()) return false;
    const uint8_t b = static_cast<uint8_t>(in[0]);
    in.remove_prefix(1);
    v |= static_cast<uint64_t>(b & 0x7f) << shift;
    if (!(b & 0x80)) return true;
  }
  return false;
}
uint64_t ZigZag(int64_t v) {
  return (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63);
}
int64_t UnZigZag(uint64_t v) { return static_cast<int64_t>(v >> 1) ^ -static_cast<int64_t>(v & 1); }

struct SeriesState {
  v1::SeriesKey key;
  std::unique_ptr<Detector> detector;  // null: detector kind "none"
  uint64_t windows = 0;
  int64_t last_window_start = 0;
  int64_t last_arrival_ms = 0;     // processing time of the last window (no-data timer)
  int64_t no_data_raised_for = 0;  // last_arrival_ms of the silence already signalled
};

std::string EncodeSeries(const SeriesState& s) {
  std::string out(1, '\x01');  // version
  PutVarint(out, s.windows);
  PutVarint(out, ZigZag(s.last_window_start));
  PutVarint(out, ZigZag(s.last_arrival_ms));
  PutVarint(out, ZigZag(s.no_data_raised_for));
  if (s.detector != nullptr) out += s.detector->Serialize();
  return out;
}

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

std::string PartKey(int32_t p, absl::string_view key) {
  return absl::StrFormat("p/%05d/%s", p, Std(key));
}
std::string OffsetKey(int32_t p) { return absl::StrFormat("o/%05d", p); }

// One state change of a partition, bound for the changelog and then RocksDB.
struct Change {
  std::string key;
  std::optional<std::string> value;  // nullopt: delete
};

}  // namespace

int FavourableDirection(const IndicatorConfig* indicator, const std::string& name) {
  if (indicator != nullptr && indicator->role != Role::kNone) return +1;
  if (name == "productivity" || name == "latency" || name == "performance") return +1;
  return 0;
}

class Alerter::Impl : public RebalanceListener {
 public:
  explicit Impl(AlerterOptions o) : opts_(std::move(o)), names_(opts_.config->kafka.topic_prefix) {
    if (opts_.state_dir.empty()) opts_.state_dir = opts_.config->alerter.state_dir;
    if (opts_.registry != nullptr) InitMetrics(*opts_.registry);
  }
  ~Impl() override { Stop(); }

  absl::Status Start();
  void Stop();
  absl::Status status() const {
    absl::MutexLock l(&mu_);
    return status_;
  }
  Stats stats() const {
    absl::MutexLock l(&mu_);
    return stats_;
  }

  void OnAssigned(std::vector<TopicPartitionOffset>& partitions) override;
  void MarkReady();
  bool ready_ = false;  // loop thread only
  void OnRevoked(const std::vector<TopicPartitionOffset>& partitions, bool lost) override;

 private:
  struct Partition {
    explicit Partition(std::shared_ptr<const Hierarchy> h, SignalBookOptions o)
        : book(std::move(h), o) {}
    SignalBook book;
    absl::flat_hash_map<std::string, SeriesState> series;  // by SeriesId
    absl::flat_hash_map<std::string, int64_t> commands;    // applied id -> issued/applied ms
    std::vector<Change> changes;                           // of the open batch
  };

  void Loop();
  absl::Status ProcessBatch(std::vector<ConsumedMessage>& batch);
  void ProcessAggregate(Partition& part, const v1::WindowAggregate& agg, int64_t now);
  void ProcessCommand(Partition& part, const v1::Command& cmd, int64_t now);
  void TickPartition(Partition& part, int64_t now, bool check_no_data);
  void Emit(std::vector<v1::SignalEvent> events);
  void CollectDirty(Partition& part);
  absl::Status Commit(const std::map<std::pair<std::string, int32_t>, int64_t>& next_offsets);
  absl::Status RestorePartition(int32_t p);
  absl::StatusOr<SeriesState> NewSeries(const v1::SeriesKey& key, absl::string_view blob);
  void UpdateGauges();
  void InitMetrics(prometheus::Registry& r);
  void Fail(absl::Status s) {
    spdlog::error("alerter stopped: {}", s.ToString());
    absl::MutexLock l(&mu_);
    if (status_.ok()) status_ = std::move(s);
  }

  AlerterOptions opts_;
  TopicNames names_;
  std::unique_ptr<RocksDbStore> store_;
  std::unique_ptr<KafkaProducer> producer_;
  std::unique_ptr<KafkaConsumer> consumer_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  bool started_ = false;

  std::map<int32_t, std::unique_ptr<Partition>> parts_;  // loop thread only
  std::vector<v1::SignalEvent> out_events_;              // of the open batch
  int64_t next_no_data_check_ = 0;
  int64_t next_gauges_ = 0;

  absl::Mutex offsets_mu_;
  std::map<int32_t, int64_t> changelog_last_ ABSL_GUARDED_BY(offsets_mu_);  // from reports
  std::string dr_error_ ABSL_GUARDED_BY(offsets_mu_);

  mutable absl::Mutex mu_;
  absl::Status status_ ABSL_GUARDED_BY(mu_);
  Stats stats_ ABSL_GUARDED_BY(mu_);

  // Metrics (null without a registry).
  prometheus::Gauge* m_series_ = nullptr;
  prometheus::Family<prometheus::Gauge>* m_open_ = nullptr;
  std::map<std::pair<std::string, std::string>, prometheus::Gauge*> m_open_by_;
  prometheus::Counter* m_escalations_ = nullptr;
  prometheus::Histogram* m_update_ = nullptr;
  prometheus::Counter* m_resets_ = nullptr;
  prometheus::Family<prometheus::Counter>* m_aggregates_ = nullptr;
  prometheus::Family<prometheus::Counter>* m_commands_ = nullptr;
  prometheus::Family<prometheus::Counter>* m_transitions_ = nullptr;
  prometheus::Family<prometheus::Gauge>* m_lag_ = nullptr;  // {partition} of the aggregates topic
  prometheus::Gauge* m_restoring_ = nullptr;
  prometheus::Gauge* m_restore_seconds_ = nullptr;
};

void Alerter::Impl::InitMetrics(prometheus::Registry& r) {
  m_series_ = &prometheus::BuildGauge()
                   .Name("cybersyn_alerter_series_tracked")
                   .Help("Series with a detector on this alerter instance")
                   .Register(r)
                   .Add({});
  m_open_ = &prometheus::BuildGauge()
                 .Name("cybersyn_alerter_signals_open")
                 .Help("Open signals by current level and kind")
                 .Register(r);
  m_escalations_ = &prometheus::BuildCounter()
                        .Name("cybersyn_alerter_escalations_total")
                        .Help("Signals that climbed a level")
                        .Register(r)
                        .Add({});
  m_update_ = &prometheus::BuildHistogram()
                   .Name("cybersyn_alerter_detector_update_seconds")
                   .Help("Time of one detector update")
                   .Register(r)
                   .Add({}, prometheus::Histogram::BucketBoundaries{1e-7, 2.5e-7, 5e-7, 1e-6,
                                                                    2.5e-6, 1e-5, 1e-4, 1e-3});
  m_resets_ = &prometheus::BuildCounter()
                   .Name("cybersyn_alerter_detector_resets_total")
                   .Help("Detector states reset because they became non-finite")
                   .Register(r)
                   .Add({});
  m_aggregates_ = &prometheus::BuildCounter()
                       .Name("cybersyn_alerter_aggregates_total")
                       .Help("Window aggregates consumed, by result")
                       .Register(r);
  m_commands_ = &prometheus::BuildCounter()
                     .Name("cybersyn_alerter_commands_total")
                     .Help("Operator commands consumed, by result")
                     .Register(r);
  m_transitions_ = &prometheus::BuildCounter()
                        .Name("cybersyn_alerter_transitions_total")
                        .Help("Signal transitions published, by kind")
                        .Register(r);
  m_lag_ = &prometheus::BuildGauge()
                .Name("cybersyn_alerter_consumer_lag_messages")
                .Help("Messages behind the log end of the aggregates topic, per partition")
                .Register(r);
  m_restoring_ = &prometheus::BuildGauge()
                      .Name("cybersyn_alerter_restoring_partitions")
                      .Help("Partitions whose state is being restored")
                      .Register(r)
                      .Add({});
  m_restore_seconds_ = &prometheus::BuildGauge()
                            .Name("cybersyn_alerter_restore_duration_seconds")
                            .Help(
                                "Duration of the last state restore (all newly assigned "
                                "partitions)")
                            .Register(r)
                            .Add({});
}

absl::Status Alerter::Impl::Start() {
  if (started_) return absl::FailedPreconditionError("alerter already started");
  const Config& cfg = *opts_.config;
  const auto topics = DeploymentTopics(names_, cfg.kafka.partitions, cfg.kafka.replication_factor);
  if (opts_.ensure_topics) {
    RETURN_IF_ERROR(Annotate(opts_.ensure_topics(topics), "creating topics"));
  } else {
    RETURN_IF_ERROR(Annotate(EnsureTopics(opts_.client, topics), "creating topics"));
  }
  RocksDbOptions ro;
  ro.path = opts_.state_dir;
  ro.memory_limit_bytes = cfg.alerter.memory_limit;
  ro.registry = opts_.registry.get();
  ro.metrics_store = "alerter_state";
  auto store = RocksDbStore::Open(ro);
  if (!store.ok() && store.status().code() == absl::StatusCode::kDataLoss) {
    spdlog::warn("alerter store {} is corrupt ({}); rebuilding it from the changelog", ro.path,
                 store.status().ToString());
    RETURN_IF_ERROR(RocksDbStore::Destroy(ro.path));
    store = RocksDbStore::Open(ro);
  }
  if (!store.ok()) return Annotate(store.status(), "opening alerter state");
  store_ = std::move(*store);

  ProducerOptions po;
  po.client = opts_.client;
  po.transactional_id = absl::StrCat(names_.prefix, ".alerter-", opts_.instance_id);
  po.on_delivery = [this](const DeliveryReport& r) {
    absl::MutexLock l(&offsets_mu_);
    if (!r.status.ok()) {
      dr_error_ = r.status.ToString();
      return;
    }
    if (r.topic == names_.Changelog("alerter")) {
      int64_t& last = changelog_last_[r.partition];
      last = std::max(last, r.offset);
    }
  };
  ASSIGN_OR_RETURN(producer_, KafkaProducer::Create(po));
  RETURN_IF_ERROR(Annotate(producer_->InitTransactions(absl::Seconds(60)), "init transactions"));

  ConsumerOptions co;
  co.client = opts_.client;
  co.group_id = absl::StrCat(names_.prefix, ".alerter");
  co.read_committed = true;
  co.listener = this;
  // Range co-partitions aggregates and commands (equal partition counts): p of both on one member.
  co.overrides["partition.assignment.strategy"] = "range";
  // Static membership: a restarted instance takes its partitions back at once instead of waiting
  // for the dead member's session to time out. (A clean stop therefore does not hand partitions
  // to other members before session.timeout.ms.)
  co.overrides["group.instance.id"] = po.transactional_id;
  ASSIGN_OR_RETURN(consumer_, KafkaConsumer::Create(co));
  RETURN_IF_ERROR(consumer_->Subscribe({names_.aggregates, names_.commands}));
  started_ = true;
  thread_ = std::thread([this] { Loop(); });
  return absl::OkStatus();
}

void Alerter::Impl::Stop() {
  if (!started_) return;
  started_ = false;
  stop_ = true;
  if (thread_.joinable()) thread_.join();
  if (consumer_) {
    if (absl::Status s = consumer_->Close(); !s.ok()) spdlog::warn("alerter: {}", s.ToString());
  }
  consumer_.reset();
  producer_.reset();
  parts_.clear();
  store_.reset();
}

void Alerter::Impl::Loop() {
  while (!stop_) {
    auto batch = consumer_->ConsumeBatch(500, opts_.poll_interval);
    if (!batch.ok()) {
      Fail(Annotate(batch.status(), "consume"));
      return;
    }
    if (absl::Status s = ProcessBatch(*batch); !s.ok()) {
      if (absl::Status a = producer_->AbortTransaction(absl::Seconds(30)); !a.ok()) {
        spdlog::warn("alerter: abort after failure: {}", a.ToString());
      }
      Fail(s);
      return;
    }
  }
}

absl::StatusOr<SeriesState> Alerter::Impl::NewSeries(const v1::SeriesKey& key,
                                                     absl::string_view blob) {
  SeriesState s;
  s.key = key;
  const IndicatorConfig* ind = opts_.config->FindIndicator(key.indicator());
  DetectorKind kind = ind != nullptr ? ind->detector.kind : DetectorKind::kCyberstride;
  if (kind == DetectorKind::kNone) return s;
  DetectorParams params;
  if (ind != nullptr) {
    for (const auto& [k, v] : ind->detector.params) params[k] = v;
  }
  const std::string_view kind_name = DetectorKindName(kind);
  if (!blob.empty()) {
    auto d = RestoreDetector(kind_name, params, Std(blob));
    if (d.ok()) {
      s.detector = std::move(*d);
      return s;
    }
    spdlog::warn("series {}: detector state not restored ({}); starting fresh", SeriesId(key),
                 d.status().ToString());
  }
  ASSIGN_OR_RETURN(s.detector, MakeDetector(kind_name, params));
  return s;
}

void Alerter::Impl::ProcessAggregate(Partition& part, const v1::WindowAggregate& agg, int64_t now) {
  const std::string sid = SeriesId(agg.series());
  auto it = part.series.find(sid);
  if (it == part.series.end()) {
    auto s = NewSeries(agg.series(), "");
    if (!s.ok()) {
      spdlog::warn("series {}: {}", sid, s.status().ToString());
      if (m_aggregates_) m_aggregates_->Add({{"result", "bad_detector"}}).Increment();
      return;
    }
    it = part.series.emplace(sid, std::move(*s)).first;
  }
  SeriesState& ss = it->second;
  if (ss.windows > 0 && agg.window_start_ms() <= ss.last_window_start) {
    absl::MutexLock l(&mu_);
    ++stats_.duplicates;
    if (m_aggregates_) m_aggregates_->Add({{"result", "duplicate"}}).Increment();
    return;
  }
  const IndicatorConfig* ind = opts_.config->FindIndicator(agg.series().indicator());
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
    const auto t0 = std::chrono::steady_clock::now();
    verdict = ss.detector->Update({agg.window_start_ms(), value, false});
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (m_update_) m_update_->Observe(secs);
    if (verdict.reset && m_resets_) m_resets_->Increment();
  }
  bool breached = false;
  if (ind != nullptr) {
    breached = (ind->thresholds.min && value < *ind->thresholds.min) ||
               (ind->thresholds.max && value > *ind->thresholds.max);
  }
  ss.windows++;
  ss.last_window_start = agg.window_start_ms();
  ss.last_arrival_ms = now;
  const bool warm = ss.windows > static_cast<uint64_t>(std::max(0, opts_.config->alerter.warmup));
  Emit(part.book.OnWindow(
      agg.series(), {.detector_anomalous = verdict.score >= 0.5, .threshold_breached = breached},
      now));
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
    Emit(part.book.OnDetection(d, now));
  }
  if (breached && part.book.FindOpen(agg.series(), v1::SIGNAL_KIND_THRESHOLD) == nullptr) {
    Detection d = detection(v1::SIGNAL_KIND_THRESHOLD);
    d.score = 1.0;
    d.severity = v1::SEVERITY_ALERT;
    d.reason = ind->thresholds.max && value > *ind->thresholds.max
                   ? absl::StrCat("above the limit ", *ind->thresholds.max)
                   : absl::StrCat("below the limit ", *ind->thresholds.min);
    Emit(part.book.OnDetection(d, now));
  }
  part.changes.push_back({absl::StrCat("d/", sid), EncodeSeries(ss)});
  absl::MutexLock l(&mu_);
  ++stats_.aggregates;
  if (m_aggregates_) m_aggregates_->Add({{"result", "applied"}}).Increment();
}

void Alerter::Impl::ProcessCommand(Partition& part, const v1::Command& cmd, int64_t now) {
  auto count = [&](const char* result) {
    if (m_commands_) m_commands_->Add({{"result", result}}).Increment();
  };
  if (cmd.id().empty() || part.commands.contains(cmd.id())) {
    count("duplicate");
    return;
  }
  part.commands[cmd.id()] = now;
  part.changes.push_back({absl::StrCat("c/", cmd.id()), absl::StrCat(now)});
  // Re-check the scope against this instance's config: the front end may be stale or forged.
  std::string scope;
  for (const OperatorConfig& op : opts_.config->operators) {
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
    auto events = part.book.Apply(cmd, scope, now);
    if (events.ok()) {
      Emit(std::move(*events));
      count("applied");
      absl::MutexLock l(&mu_);
      ++stats_.commands;
      return;
    }
    st = events.status();
  }
  spdlog::info("command {} ({} by {}) not applied: {}", cmd.id(), v1::CommandKind_Name(cmd.kind()),
               cmd.operator_id(), st.ToString());
  count("rejected");
  absl::MutexLock l(&mu_);
  ++stats_.rejected_commands;
}

void Alerter::Impl::TickPartition(Partition& part, int64_t now, bool check_no_data) {
  Emit(part.book.Tick(now));
  if (check_no_data) {
    for (auto& [sid, ss] : part.series) {
      const IndicatorConfig* ind = opts_.config->FindIndicator(ss.key.indicator());
      if (ind == nullptr || !ind->expect_every || ss.windows == 0) continue;
      // Not expect_every alone: a series cannot report more often than its window closes.
      if (now - ss.last_arrival_ms <=
          NoDataAfterMs(*ind->expect_every, ss.key.window_ms(), opts_.config->aggregator)) {
        continue;
      }
      if (ss.no_data_raised_for == ss.last_arrival_ms) continue;  // this silence was signalled
      if (part.book.FindOpen(ss.key, v1::SIGNAL_KIND_NO_DATA) != nullptr) continue;
      Detection d;
      d.series = ss.key;
      d.kind = v1::SIGNAL_KIND_NO_DATA;
      d.severity = v1::SEVERITY_ALERT;
      d.score = 1.0;
      d.window_start_ms = ss.last_window_start + ss.key.window_ms();
      d.reason = absl::StrCat("no data for ",
                              absl::FormatDuration(absl::Milliseconds(now - ss.last_arrival_ms)));
      Emit(part.book.OnDetection(d, now));
      ss.no_data_raised_for = ss.last_arrival_ms;
      part.changes.push_back({absl::StrCat("d/", sid), EncodeSeries(ss)});
    }
    for (auto it = part.commands.begin(); it != part.commands.end();) {
      if (now - it->second > kCommandMemoryMs) {
        part.changes.push_back({absl::StrCat("c/", it->first), std::nullopt});
        part.commands.erase(it++);
      } else {
        ++it;
      }
    }
  }
}

void Alerter::Impl::Emit(std::vector<v1::SignalEvent> events) {
  for (auto& e : events) out_events_.push_back(std::move(e));
}

void Alerter::Impl::CollectDirty(Partition& part) {
  for (const std::string& id : part.book.TakeDirty()) {
    const OpenSignal* s = part.book.Find(id);
    part.changes.push_back(
        {absl::StrCat("s/", id),
         s != nullptr ? std::optional<std::string>(EncodeOpenSignal(*s)) : std::nullopt});
  }
}

absl::Status Alerter::Impl::ProcessBatch(std::vector<ConsumedMessage>& batch) {
  const int64_t now = opts_.clock->NowMillis();
  std::map<std::pair<std::string, int32_t>, int64_t> next_offsets;
  for (const ConsumedMessage& m : batch) {
    const std::string topic(m.topic());
    next_offsets[{topic, m.partition()}] = m.offset() + 1;
    auto pit = parts_.find(m.partition());
    if (pit == parts_.end()) {
      spdlog::error("alerter: message from unrestored partition {}[{}]", topic, m.partition());
      continue;
    }
    Partition& part = *pit->second;
    const absl::string_view value = m.value();
    if (topic == names_.aggregates) {
      v1::WindowAggregate agg;
      if (!agg.ParseFromArray(value.data(), static_cast<int>(value.size())) ||
          agg.series().node().empty()) {
        if (m_aggregates_) m_aggregates_->Add({{"result", "bad"}}).Increment();
        continue;
      }
      ProcessAggregate(part, agg, now);
    } else {
      v1::Command cmd;
      if (!cmd.ParseFromArray(value.data(), static_cast<int>(value.size()))) {
        if (m_commands_) m_commands_->Add({{"result", "bad"}}).Increment();
        continue;
      }
      ProcessCommand(part, cmd, now);
    }
  }
  const bool check_no_data = now >= next_no_data_check_;
  if (check_no_data) next_no_data_check_ = now + 1000;
  for (auto& [p, part] : parts_) {
    TickPartition(*part, now, check_no_data);
    CollectDirty(*part);
  }
  if (now >= next_gauges_) {
    next_gauges_ = now + 1000;
    UpdateGauges();
  }
  return Commit(next_offsets);
}

absl::Status Alerter::Impl::Commit(
    const std::map<std::pair<std::string, int32_t>, int64_t>& next_offsets) {
  bool any_changes = false;
  for (auto& [p, part] : parts_) any_changes |= !part->changes.empty();
  if (out_events_.empty() && !any_changes && next_offsets.empty()) return absl::OkStatus();
  {
    absl::MutexLock l(&offsets_mu_);
    changelog_last_.clear();
    dr_error_.clear();
  }
  RETURN_IF_ERROR(producer_->BeginTransaction());
  const std::string changelog = names_.Changelog("alerter");
  for (const v1::SignalEvent& e : out_events_) {
    RETURN_IF_ERROR(
        producer_->Produce(names_.signals, -1, e.signal().origin_node(), e.SerializeAsString()));
  }
  for (auto& [p, part] : parts_) {
    for (const Change& c : part->changes) {
      RETURN_IF_ERROR(producer_->Produce(
          changelog, p, c.key, c.value ? absl::string_view(*c.value) : absl::string_view()));
    }
  }
  if (!next_offsets.empty()) {
    std::vector<TopicPartitionOffset> offs;
    for (const auto& [tp, off] : next_offsets) offs.push_back({tp.first, tp.second, off});
    TopicPartitionList list(offs);
    RETURN_IF_ERROR(
        producer_->SendOffsetsToTransaction(list.get(), consumer_->raw(), absl::Seconds(30)));
  }
  RETURN_IF_ERROR(producer_->Flush(absl::Seconds(60)));
  {
    absl::MutexLock l(&offsets_mu_);
    if (!dr_error_.empty()) return absl::UnavailableError(absl::StrCat("delivery: ", dr_error_));
  }
  RETURN_IF_ERROR(producer_->CommitTransaction(absl::Seconds(60)));
  // Committed: Kafka is authoritative. Now the same changes to RocksDB with the offset.
  std::map<int32_t, int64_t> last;
  {
    absl::MutexLock l(&offsets_mu_);
    last = changelog_last_;
  }
  WriteBatch wb;
  for (auto& [p, part] : parts_) {
    for (Change& c : part->changes) {
      if (c.value) {
        wb.Put(PartKey(p, c.key), *c.value);
      } else {
        wb.Delete(PartKey(p, c.key));
      }
    }
    part->changes.clear();
    if (auto it = last.find(p); it != last.end())
      wb.Put(OffsetKey(p), absl::StrCat(it->second + 1));
  }
  if (!wb.empty()) RETURN_IF_ERROR(Annotate(store_->Write(wb), "alerter state"));
  uint64_t escalations = 0;
  for (const v1::SignalEvent& e : out_events_) {
    if (e.transition().kind() == v1::TRANSITION_KIND_ESCALATED) ++escalations;
    if (m_transitions_) {
      m_transitions_->Add({{"kind", v1::TransitionKind_Name(e.transition().kind())}}).Increment();
    }
  }
  if (m_escalations_) m_escalations_->Increment(static_cast<double>(escalations));
  if (opts_.observer != nullptr && !out_events_.empty()) opts_.observer->OnCommitted(out_events_);
  absl::MutexLock l(&mu_);
  stats_.events += out_events_.size();
  ++stats_.transactions;
  out_events_.clear();
  return absl::OkStatus();
}

void Alerter::Impl::UpdateGauges() {
  uint64_t series = 0, open = 0;
  std::map<std::pair<std::string, std::string>, int> by;
  for (auto& [p, part] : parts_) {
    series += part->series.size();
    open += part->book.open().size();
    for (const auto& [id, s] : part->book.open()) {
      by[{s.signal.current_level_name(), v1::SignalKind_Name(s.signal.kind())}]++;
    }
  }
  if (m_series_) m_series_->Set(static_cast<double>(series));
  if (m_lag_ && consumer_) {
    // Lag against the locally cached high watermark (no broker round trip).
    if (auto pos = consumer_->Positions(); pos.ok()) {
      for (const TopicPartitionOffset& tp : *pos) {
        if (tp.topic != names_.aggregates) continue;
        int64_t lo = -1, hi = -1;
        consumer_->raw()->get_watermark_offsets(tp.topic, tp.partition, &lo, &hi);
        const int64_t at = tp.offset >= 0 ? tp.offset : lo;
        if (hi < 0 || at < 0) continue;
        m_lag_->Add({{"partition", absl::StrCat(tp.partition)}})
            .Set(static_cast<double>(std::max<int64_t>(0, hi - at)));
      }
    }
  }
  if (m_open_) {
    for (auto& [k, g] : m_open_by_) g->Set(0);
    for (const auto& [k, n] : by) {
      auto& g = m_open_by_[k];
      if (g == nullptr) g = &m_open_->Add({{"level", k.first}, {"kind", k.second}});
      g->Set(n);
    }
  }
  absl::MutexLock l(&mu_);
  stats_.series = series;
  stats_.open_signals = open;
}

absl::Status Alerter::Impl::RestorePartition(int32_t p) {
  const std::string changelog = names_.Changelog("alerter");
  int64_t from = 0;
  if (auto o = store_->Get(OffsetKey(p)); o.ok()) {
    if (!absl::SimpleAtoi(*o, &from)) from = 0;
  }
  ConsumerOptions co;
  co.client = opts_.client;
  co.read_committed = true;
  ASSIGN_OR_RETURN(auto restore, KafkaConsumer::Create(co));
  ASSIGN_OR_RETURN(auto marks, restore->Watermarks(changelog, p, absl::Seconds(30)));
  const int64_t high = marks.second;
  if (from < marks.first) from = marks.first;  // compacted/deleted below us: take what is left
  // Every changelog message is transactional, so the last offset below `high` is a control
  // marker: the tail is replayed once the next offset reaches high - 1.
  int64_t next = from;
  uint64_t replayed = 0;
  if (next < high - 1) {
    RETURN_IF_ERROR(restore->Assign({{changelog, p, from}}));
    const absl::Time deadline = absl::Now() + absl::Seconds(60);
    while (next < high - 1) {
      if (absl::Now() > deadline) {
        return absl::DeadlineExceededError(
            absl::StrCat("restoring ", changelog, "[", p, "] stuck at ", next, " of ", high));
      }
      ASSIGN_OR_RETURN(auto msgs, restore->ConsumeBatch(5000, absl::Milliseconds(500)));
      if (msgs.empty()) {
        auto pos = restore->Positions();
        if (pos.ok() && !pos->empty() && (*pos)[0].offset >= 0) {
          next = std::max(next, (*pos)[0].offset);
        }
        continue;
      }
      WriteBatch wb;
      for (const ConsumedMessage& m : msgs) {
        if (m.value().empty()) {
          wb.Delete(PartKey(p, m.key()));
        } else {
          wb.Put(PartKey(p, m.key()), m.value());
        }
        next = m.offset() + 1;
        ++replayed;
      }
      wb.Put(OffsetKey(p), absl::StrCat(next));
      RETURN_IF_ERROR(store_->Write(wb));
    }
  }
  (void)restore->Close();
  auto part = std::make_unique<Partition>(
      opts_.config->hierarchy,
      SignalBookOptions{.auto_resolve_after = opts_.config->alerter.auto_resolve_after});
  absl::Status scan_status;
  RETURN_IF_ERROR(store_->Scan(PartKey(p, ""), [&](absl::string_view key, absl::string_view value) {
    absl::string_view k = key.substr(PartKey(p, "").size());
    if (absl::ConsumePrefix(&k, "d/")) {
      auto series = ParseSeriesId(k);
      absl::string_view in = value;
      uint64_t version = 0, windows = 0, lws = 0, arr = 0, ndr = 0;
      if (!series || in.empty() || in[0] != '\x01') return true;
      in.remove_prefix(1);
      (void)version;
      if (!GetVarint(in, windows) || !GetVarint(in, lws) || !GetVarint(in, arr) ||
          !GetVarint(in, ndr)) {
        return true;
      }
      auto ss = NewSeries(*series, in);
      if (!ss.ok()) return true;
      ss->windows = windows;
      ss->last_window_start = UnZigZag(lws);
      ss->last_arrival_ms = UnZigZag(arr);
      ss->no_data_raised_for = UnZigZag(ndr);
      part->series.emplace(std::string(k), std::move(*ss));
    } else if (absl::ConsumePrefix(&k, "s/")) {
      auto s = DecodeOpenSignal(value);
      if (s.ok()) part->book.Restore(std::move(*s));
    } else if (absl::ConsumePrefix(&k, "c/")) {
      int64_t at = 0;
      (void)absl::SimpleAtoi(value, &at);
      part->commands[std::string(k)] = at;
    }
    return true;
  }));
  spdlog::info(
      "alerter: partition {} restored ({} changelog entries replayed, {} series, {} open "
      "signals)",
      p, replayed, part->series.size(), part->book.open().size());
  if (opts_.observer != nullptr && !part->book.open().empty()) {
    std::vector<v1::Signal> open;
    for (const auto& [id, s] : part->book.open()) open.push_back(s.signal);
    opts_.observer->OnRestored(open);
  }
  parts_[p] = std::move(part);
  absl::MutexLock l(&mu_);
  ++stats_.restores;
  return absl::OkStatus();
}

void Alerter::Impl::OnAssigned(std::vector<TopicPartitionOffset>& partitions) {
  // Both topics' partitions arrive; state is per partition number.
  std::vector<int32_t> todo;
  for (const TopicPartitionOffset& tp : partitions) {
    if (!parts_.contains(tp.partition) && absl::c_find(todo, tp.partition) == todo.end()) {
      todo.push_back(tp.partition);
    }
  }
  if (todo.empty()) {
    MarkReady();
    return;
  }
  const auto t0 = std::chrono::steady_clock::now();
  size_t left = todo.size();
  if (m_restoring_) m_restoring_->Set(static_cast<double>(left));
  for (int32_t p : todo) {
    absl::Status s = RestorePartition(p);
    if (m_restoring_) m_restoring_->Set(static_cast<double>(--left));
    if (!s.ok()) {
      if (m_restoring_) m_restoring_->Set(0);
      Fail(Annotate(s, absl::StrCat("restoring partition ", p)));
      stop_ = true;
      return;
    }
  }
  if (m_restore_seconds_) {
    m_restore_seconds_->Set(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  MarkReady();
}

void Alerter::Impl::MarkReady() {
  if (!ready_ && opts_.on_ready) opts_.on_ready(true);
  ready_ = true;
}

void Alerter::Impl::OnRevoked(const std::vector<TopicPartitionOffset>& partitions, bool lost) {
  for (const TopicPartitionOffset& tp : partitions) {
    auto it = parts_.find(tp.partition);
    if (it == parts_.end()) continue;
    if (opts_.observer != nullptr && !it->second->book.open().empty()) {
      std::vector<std::string> ids;
      for (const auto& [id, s] : it->second->book.open()) ids.push_back(id);
      opts_.observer->OnRevoked(ids);
    }
    parts_.erase(it);
  }
}

Alerter::Alerter(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Alerter::~Alerter() { Stop(); }

absl::StatusOr<std::unique_ptr<Alerter>> Alerter::Create(AlerterOptions options) {
  if (options.config == nullptr) return absl::InvalidArgumentError("alerter: no config");
  if (options.clock == nullptr) options.clock = Clock::Real();
  return std::unique_ptr<Alerter>(new Alerter(std::make_unique<Impl>(std::move(options))));
}
absl::Status Alerter::Start() { return impl_->Start(); }
void Alerter::Stop() {
  if (impl_) impl_->Stop();
}
absl::Status Alerter::status() const { return impl_->status(); }
Alerter::Stats Alerter::stats() const { return impl_->stats(); }

}  // namespace cybersyn::alerter
