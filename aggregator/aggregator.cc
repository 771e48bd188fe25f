#include "aggregator/aggregator.h"

#include <algorithm>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "aggregator/model.h"
#include "aggregator/rollup.h"
#include "aggregator/windows.h"
#include "common/batch_decode.h"
#include "common/kafka_consumer.h"
#include "common/kafka_producer.h"
#include "common/rocksdb_store.h"
#include "common/status.h"
#include "cybersyn/v1/aggregate.pb.h"
#include "cybersyn/v1/record.pb.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "spdlog/spdlog.h"
#include "stream/lanes.h"

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

namespace {

constexpr absl::Duration kTxnTimeout = absl::Seconds(60);
// How long a rebalance waits for the committed offsets of its new partitions to become stable
// (above transaction.timeout.ms, 15 s, plus the coordinator's 10 s abort interval).
constexpr absl::Duration kStableOffsetsWait = absl::Seconds(90);

struct Metrics {
  explicit Metrics(prometheus::Registry& r)
      : records(prometheus::BuildCounter()
                    .Name("cybersyn_aggregator_records_total")
                    .Help("Records offered to the aggregator, by outcome")
                    .Register(r)),
        deadletter(prometheus::BuildCounter()
                       .Name("cybersyn_aggregator_deadletter_total")
                       .Help("Messages written to the dead-letter topic, by reason")
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
        lag(prometheus::BuildGauge()
                .Name("cybersyn_aggregator_consumer_lag_messages")
                .Help("Messages behind the log end, per input partition")
                .Register(r)),
        open_windows(prometheus::BuildGauge()
                         .Name("cybersyn_aggregator_open_windows")
                         .Help("Open windows held in state")
                         .Register(r)
                         .Add({})),
        state_bytes(prometheus::BuildGauge()
                        .Name("cybersyn_aggregator_state_bytes")
                        .Help("Approximate bytes of local state (RocksDB)")
                        .Register(r)
                        .Add({})),
        rocksdb_memory(prometheus::BuildGauge()
                           .Name("cybersyn_aggregator_rocksdb_memory_bytes")
                           .Help("RocksDB memory in use (capped by aggregator.memory_limit)")
                           .Register(r)
                           .Add({})),
        restore_seconds(prometheus::BuildGauge()
                            .Name("cybersyn_aggregator_restore_duration_seconds")
                            .Help("Duration of the last state restore")
                            .Register(r)
                            .Add({})),
        restore_entries(prometheus::BuildCounter()
                            .Name("cybersyn_aggregator_restore_entries_total")
                            .Help("Changelog entries replayed into local state")
                            .Register(r)
                            .Add({})),
        legacy_dropped(prometheus::BuildCounter()
                           .Name("cybersyn_aggregator_restore_legacy_windows_dropped_total")
                           .Help("Rolled-up ancestor windows of an older version dropped on "
                                 "restore (rebuilt from their children at close)")
                           .Register(r)
                           .Add({})),
        restoring(prometheus::BuildGauge()
                      .Name("cybersyn_aggregator_restoring_partitions")
                      .Help("Partitions whose state is being restored")
                      .Register(r)
                      .Add({})),
        commit_seconds(
            prometheus::BuildHistogram()
                .Name("cybersyn_aggregator_txn_commit_seconds")
                .Help("Time to commit one transaction (or flush + commit offsets)")
                .Register(r)
                .Add({},
                     prometheus::Histogram::BucketBoundaries{0.001, 0.0025, 0.005, 0.01, 0.025,
                                                             0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10})),
        window_value(prometheus::BuildGauge()
                         .Name("cybersyn_aggregator_window_value")
                         .Help("Value (roll-up rule result) of the last closed window of each "
                               "node, indicator and window size")
                         .Register(r)),
        node_records(prometheus::BuildCounter()
                         .Name("cybersyn_aggregator_node_records_total")
                         .Help("Records applied per enterprise (a silent plant stops counting)")
                         .Register(r)) {}

  prometheus::Family<prometheus::Counter>& records;
  prometheus::Family<prometheus::Counter>& deadletter;
  prometheus::Counter& late;
  prometheus::Counter& emitted;
  prometheus::Family<prometheus::Gauge>& lag;
  prometheus::Gauge& open_windows;
  prometheus::Gauge& state_bytes;
  prometheus::Gauge& rocksdb_memory;
  prometheus::Gauge& restore_seconds;
  prometheus::Counter& restore_entries;
  prometheus::Counter& legacy_dropped;
  prometheus::Gauge& restoring;
  prometheus::Histogram& commit_seconds;
  prometheus::Family<prometheus::Gauge>& window_value;
  prometheus::Family<prometheus::Counter>& node_records;  // {node}: enterprises, bounded
};

enum class TaskKind { kRecords, kRollup };

struct Task {
  TaskKind kind;
  std::string topic;
  int32_t partition = 0;
  std::string changelog;
  std::string prefix;                         // RocksDB key prefix of this task
  std::unique_ptr<PartitionWindows> windows;  // kRecords
  std::unique_ptr<RollupWindows> rollup;      // kRollup
  int64_t next_offset = -1;                   // next input offset to read (-1: unknown)
  bool consumed = false;                      // input consumed since the last commit
  int64_t changelog_next = -1;     // changelog offset reflected by local state after commit
  std::vector<StateChange> taken;  // kRecords: TakeChanges' result, filled on the task's lane
};

// One transaction's content: built by the loop, committed by the committer thread.
struct CommitUnit {
  struct Output {
    const std::string* topic;  // one of Impl's topic names (stable)
    int32_t partition;
    std::string key, value;
    KafkaHeaders headers;
  };
  struct Changes {
    const std::string* changelog;
    int32_t partition;
    std::string prefix;  // the task's RocksDB key prefix
    std::vector<StateChange> changes;
  };
  std::vector<Output> outputs;  // aggregates, roll-up contributions, dead letters
  std::vector<Changes> changes;
  std::vector<TopicPartitionOffset> offsets;
  uint64_t seq = 0;             // commits before this one
  AggregatorCounters counters;  // the loop's totals after this unit's last record
  bool empty() const { return outputs.empty() && changes.empty() && offsets.empty(); }
};

// What a lane produces besides window state: outputs (dead letters, closed windows) and totals,
// merged into the loop's pending unit and counters at each drain.
struct RecordsSink {
  std::vector<CommitUnit::Output> outputs;
  AggregatorCounters totals;        // records, applied, duplicates, deadlettered, late, emitted
  v1::RecordBatch batch;            // parse scratch: parsing into it recycles the Record objects
  std::vector<Emission> emissions;  // closing scratch
  absl::flat_hash_map<std::string, prometheus::Counter*> node_counters;  // by enterprise
  // "<node>|<indicator>|<window ms>" -> its window_value gauge (bounded by the hierarchy).
  absl::flat_hash_map<std::string, prometheus::Gauge*> window_gauges;
  std::string gauge_key;  // scratch
};

// Work on one records task, run on the task's lane.
struct RecordsJob {
  enum Kind {
    kMessage,      // process `message`
    kClose,        // close due windows (and idle ones when `caught_up`), publish them
    kTakeChanges,  // move the state changes into task->taken
  };
  Kind kind;
  Task* task;
  int64_t now_ms = 0;
  std::optional<ConsumedMessage> message;
  bool caught_up = false;
};

// The totals that describe processed input (published once that input is committed).
void CopyProcessingTotals(const AggregatorCounters& from, AggregatorCounters* to) {
  to->records = from.records;
  to->applied = from.applied;
  to->duplicates = from.duplicates;
  to->deadlettered = from.deadlettered;
  to->late = from.late;
  to->emitted = from.emitted;
}

std::string TaskPrefix(TaskKind kind, int32_t partition) {
  return absl::StrCat(kind == TaskKind::kRecords ? "t/rec/" : "t/rol/", partition, "/");
}

}  // namespace

class Aggregator::Impl : public RebalanceListener {
 public:
  Impl(AggregatorOptions options, std::shared_ptr<prometheus::Registry> registry)
      : options_(std::move(options)),
        registry_(std::move(registry)),
        metrics_(*registry_),
        model_(options_.config),
        topics_(options_.config->kafka.topic_prefix),
        rollup_topic_(RollupTopic(topics_.prefix)),
        records_changelog_(RecordsChangelog(topics_.prefix)),
        rollup_changelog_(RollupChangelog(topics_.prefix)) {
    for (const char* o :
         {"applied", "duplicate", "unknown_node", "node_above_enterprise", "wrong_enterprise",
          "unknown_indicator", "not_finite", "bad_timestamp", "late"}) {
      outcome_counters_[o] = &metrics_.records.Add({{"outcome", o}});
    }
    const int lanes = std::max(0, options_.processing_threads);
    sinks_.resize(lanes + 1);
    if (lanes > 0) {
      lanes_ = std::make_unique<stream::Lanes<RecordsJob>>(
          lanes, /*max_queued=*/256,
          [this](int lane, RecordsJob& j) { RunRecordsJob(j, sinks_[lane]); });
    }
  }

  ~Impl() override {
    if (committer_.joinable()) committer_.join();  // (Run joins it; this is for early returns)
  }

  absl::Status Run(std::atomic<bool>& stop, std::atomic<bool>& ready);
  AggregatorCounters counters() const {
    absl::MutexLock l(&counters_mu_);
    return counters_;
  }
  std::shared_ptr<prometheus::Registry> registry() const { return registry_; }

  void OnAssigned(std::vector<TopicPartitionOffset>& partitions) override;
  void OnRevoked(const std::vector<TopicPartitionOffset>& partitions, bool lost) override;

 private:
  absl::Status Setup();
  // The (transactional) producer; InitTransactions fences an earlier one with the same id and
  // aborts whatever transaction it left open.
  absl::Status CreateProducer();
  Task* FindTask(absl::string_view topic, int32_t partition);
  // Runs on a lane (or on the loop thread without lanes): touches only `t`'s windows and `sink`.
  void ProcessRecords(Task& t, const ConsumedMessage& m, int64_t now, RecordsSink& sink);
  void ProcessRollup(Task& t, const ConsumedMessage& m, int64_t now);
  // Buffers closed windows' aggregates (and roll-up contributions) into `sink`.
  void Publish(std::vector<Emission>& emissions, RecordsSink& sink);
  void RunRecordsJob(RecordsJob& job, RecordsSink& sink);
  // Runs `job` on its task's lane, or at once on the loop thread without lanes.
  void Dispatch(RecordsJob job);
  void DeadLetter(RecordsSink& sink, const ConsumedMessage& m, absl::string_view reason,
                  absl::string_view value, const KafkaHeaders& extra = {});
  // Waits until the lanes have processed everything handed to them, then moves their dead
  // letters into pending_ and their totals into local_. Every access of the loop thread to a
  // records task's windows (closing, TakeChanges, rebalance, rewind) comes after one.
  void DrainRecords();
  absl::Status EnsureTxn();
  // Moves what the next transaction carries out of the loop's state: buffered outputs, every
  // task's state changes, the consumed input offsets.
  CommitUnit TakeUnit();
  // The next unit to commit after the one in flight finished; FAILED_PRECONDITION when dirty.
  absl::StatusOr<CommitUnit> NextUnit();
  // Produces `u`, sends its offsets and commits (exactly-once; at-least-once: flush, then commit
  // the offsets), then applies its changes to RocksDB with the changelog offsets they reflect.
  // Runs on the committer thread or, for a synchronous commit, on the loop's.
  absl::Status Commit(CommitUnit& u);
  // Waits for the commit in flight, if any, and returns its result.
  absl::Status FinishCommit();
  // Hands what is pending to the committer thread, after the previous commit finished.
  absl::Status HandOff();
  // Commits everything pending now (rebalances, the way out): waits for the commit in flight,
  // then commits the rest on this thread.
  absl::Status CommitPending();
  absl::Status AbortPending(const absl::Status& cause);
  // After an aborted transaction: state back to the last commit, input back to its offsets.
  absl::Status Rewind();
  absl::Status Restore(const std::vector<Task*>& tasks);
  void UpdateGauges();
  // Publishes the totals the loop owns (the committer publishes the processing totals).
  void PublishLoopCounters();
  bool CaughtUp(Task& t, int64_t* lag);

  AggregatorOptions options_;
  std::shared_ptr<prometheus::Registry> registry_;
  Metrics metrics_;
  absl::flat_hash_map<std::string, prometheus::Counter*> outcome_counters_;
  Model model_;
  TopicNames topics_;
  std::string rollup_topic_, records_changelog_, rollup_changelog_;
  int partitions_ = 0;

  std::unique_ptr<RocksDbStore> store_;
  std::unique_ptr<KafkaProducer> producer_;
  std::unique_ptr<KafkaConsumer> consumer_;
  std::unique_ptr<KafkaConsumer> restorer_;

  std::map<std::pair<std::string, int32_t>, std::unique_ptr<Task>> tasks_;
  bool txn_open_ = false;  // the committer's (read by the loop only after FinishCommit)
  bool pending_work_ = false;
  CommitUnit pending_;  // outputs buffered for the next transaction
  // Commits the previous unit while the loop processes the next. Only one thread uses the
  // producer (and delivered_/delivery_error_) at a time: the committer, or the loop after
  // FinishCommit joined it.
  std::thread committer_;
  absl::Status committer_status_;
  std::atomic<bool> committer_idle_{true};
  // A transaction failed: the in-memory state holds changes it carried (already taken out of the
  // windows) and the input positions are past it. Nothing may commit until Rewind rebuilt both
  // from the last commit, or the offsets would be committed without that state.
  bool dirty_ = false;
  absl::Status fatal_;  // set inside rebalance callbacks, surfaced by the loop
  bool stopping_ = false;
  std::atomic<bool>* ready_ = nullptr;
  // Highest delivered changelog offset per (topic, partition) in the current transaction.
  std::map<std::pair<std::string, int32_t>, int64_t> delivered_;
  absl::Status delivery_error_;

  mutable absl::Mutex counters_mu_;
  AggregatorCounters counters_ ABSL_GUARDED_BY(counters_mu_);
  AggregatorCounters local_;  // loop-thread copy, published after each batch
  int64_t last_gauges_ms_ = 0;
  // One per lane, and the last one for the loop thread (roll-up dead letters; records too when
  // there are no lanes). Lane i writes only sinks_[i] between drains.
  std::vector<RecordsSink> sinks_;
  // Declared last: destroyed (joined) first, while everything its jobs use still exists.
  std::unique_ptr<stream::Lanes<RecordsJob>> lanes_;
};

absl::Status Aggregator::Impl::CreateProducer() {
  if (producer_ != nullptr) {
    // A failed producer: drop what it still holds (its transaction is being aborted).
    producer_->raw()->purge(RdKafka::Producer::PURGE_QUEUE | RdKafka::Producer::PURGE_INFLIGHT);
    producer_.reset();
  }
  ProducerOptions po;
  po.client = options_.client;
  po.overrides = options_.producer_overrides;
  po.overrides.emplace("linger.ms", "5");
  // The changelog repeats node paths and indicator names in every key and value: lz4 shrinks
  // what each commit waits for several-fold, for little CPU.
  po.overrides.emplace("compression.type", "lz4");
  po.overrides.emplace("transaction.timeout.ms", "15000");
  po.overrides.emplace("message.max.bytes", std::to_string(16 << 20));
  if (options_.exactly_once) {
    po.transactional_id = absl::StrCat(topics_.prefix, ".aggregator.", options_.instance_id);
  }
  po.on_delivery = [this](const DeliveryReport& r) {
    if (!r.status.ok()) {
      if (delivery_error_.ok()) delivery_error_ = r.status;
      return;
    }
    if (r.topic == records_changelog_ || r.topic == rollup_changelog_) {
      int64_t& d = delivered_[{r.topic, r.partition}];
      d = std::max(d, r.offset);
    }
  };
  ASSIGN_OR_RETURN(producer_, KafkaProducer::Create(po));
  if (options_.exactly_once) {
    RETURN_IF_ERROR(producer_->InitTransactions(kTxnTimeout));
  }
  return absl::OkStatus();
}

absl::Status Aggregator::Impl::Setup() {
  const Config& cfg = *options_.config;
  const std::string state_dir =
      options_.state_dir.empty() ? cfg.aggregator.state_dir : options_.state_dir;
  // Topics: the changelogs must have as many partitions as their inputs.
  partitions_ = cfg.kafka.partitions;
  if (!options_.ensure_topics) {
    auto info = DescribeCluster(options_.client);
    if (info.ok()) {
      auto it = info->topics.find(topics_.records);
      if (it != info->topics.end()) partitions_ = it->second;
    }
  }
  const std::map<std::string, std::string> compact = {{"cleanup.policy", "compact"},
                                                      {"min.compaction.lag.ms", "60000"}};
  const std::map<std::string, std::string> week = {{"retention.ms", "604800000"}};
  std::vector<TopicSpec> specs = {
      {topics_.records, partitions_, cfg.kafka.replication_factor, week},
      {topics_.deadletter, partitions_, cfg.kafka.replication_factor, week},
      {topics_.aggregates, partitions_, cfg.kafka.replication_factor, week},
      {rollup_topic_, partitions_, cfg.kafka.replication_factor, week},
      {records_changelog_, partitions_, cfg.kafka.replication_factor, compact},
      {rollup_changelog_, partitions_, cfg.kafka.replication_factor, compact},
  };
  if (options_.ensure_topics) {
    RETURN_IF_ERROR(Annotate(options_.ensure_topics(specs), "creating topics"));
  } else {
    RETURN_IF_ERROR(Annotate(EnsureTopics(options_.client, specs), "creating topics"));
  }

  RocksDbOptions ro;
  ro.path = state_dir;
  ro.memory_limit_bytes = cfg.aggregator.memory_limit;
  ro.registry = registry_.get();
  ro.metrics_store = "aggregator_state";
  // Kafka (the changelog) is authoritative and every write carries the changelog offset it
  // reflects, so a crash that loses the unflushed tail only means replaying more on restore.
  ro.disable_wal = true;
  auto store = RocksDbStore::Open(ro);
  if (!store.ok() && store.status().code() == absl::StatusCode::kDataLoss) {
    spdlog::warn("[aggregator] state store {} is corrupt ({}); rebuilding from the changelog",
                 state_dir, std::string(store.status().message()));
    RETURN_IF_ERROR(RocksDbStore::Destroy(state_dir));
    store = RocksDbStore::Open(ro);
  }
  if (!store.ok()) return Annotate(store.status(), "opening aggregator state");
  store_ = std::move(*store);

  RETURN_IF_ERROR(CreateProducer());

  ConsumerOptions co;
  co.client = options_.client;
  co.group_id = absl::StrCat(topics_.prefix, ".aggregator");
  co.read_committed = true;
  co.listener = this;
  co.overrides = options_.consumer_overrides;
  // Static membership: a restarted instance (same id) takes its partitions back at once instead
  // of waiting for its dead predecessor's session to time out; a second live process with the
  // same id is fenced, like the transactional.id.
  co.overrides.emplace("group.instance.id", options_.instance_id);
  // Eager (range) assignment, not cooperative: a cooperative rebalance moves partitions in two
  // rounds, and when the member that gave them up in the first round dies before rejoining, the
  // restarted static member takes the first round's assignment back without a rebalance, so the
  // moved partitions stayed unowned for good (roll-ups stopped in the chaos soak). Range also
  // keeps records[p] and aggregator-rollup[p] on one member.
  co.overrides.emplace("partition.assignment.strategy", "range");
  co.overrides.emplace("session.timeout.ms", "6000");
  co.overrides.emplace("heartbeat.interval.ms", "1000");
  co.overrides.emplace("fetch.max.bytes", std::to_string(64 << 20));
  // 1 MiB per partition and fetch: one fetch response then interleaves the partitions in the
  // consumer queue in small runs, so that the lanes (one per group of partitions) all get work.
  // With 8 MiB a whole partition's backlog came in one run and the lanes took turns.
  co.overrides.emplace("max.partition.fetch.bytes", std::to_string(1 << 20));
  ASSIGN_OR_RETURN(consumer_, KafkaConsumer::Create(co));

  ConsumerOptions rco;
  rco.client = options_.client;
  rco.read_committed = true;
  rco.overrides = {{"enable.partition.eof", "true"}, {"fetch.max.bytes", std::to_string(64 << 20)}};
  ASSIGN_OR_RETURN(restorer_, KafkaConsumer::Create(rco));
  return consumer_->Subscribe({topics_.records, rollup_topic_});
}

Task* Aggregator::Impl::FindTask(absl::string_view topic, int32_t partition) {
  auto it = tasks_.find({std::string(topic), partition});
  return it == tasks_.end() ? nullptr : it->second.get();
}

absl::Status Aggregator::Impl::EnsureTxn() {
  if (!options_.exactly_once || txn_open_) return absl::OkStatus();
  RETURN_IF_ERROR(producer_->BeginTransaction());
  txn_open_ = true;
  return absl::OkStatus();
}

void Aggregator::Impl::DeadLetter(RecordsSink& sink, const ConsumedMessage& m,
                                  absl::string_view reason, absl::string_view value,
                                  const KafkaHeaders& extra) {
  KafkaHeaders h = {{"reason", std::string(reason)},
                    {"source_topic", std::string(m.topic())},
                    {"source_partition", absl::StrCat(m.partition())},
                    {"source_offset", absl::StrCat(m.offset())}};
  h.insert(h.end(), extra.begin(), extra.end());
  sink.outputs.push_back(
      {&topics_.deadletter, -1, std::string(m.key()), std::string(value), std::move(h)});
  metrics_.deadletter.Add({{"reason", std::string(reason)}}).Increment();  // (thread-safe)
  ++sink.totals.deadlettered;
}

void Aggregator::Impl::DrainRecords() {
  if (lanes_) lanes_->Drain();
  for (RecordsSink& s : sinks_) {
    if (!s.outputs.empty()) {
      pending_work_ = true;
      for (CommitUnit::Output& o : s.outputs) pending_.outputs.push_back(std::move(o));
      s.outputs.clear();
    }
    local_.records += s.totals.records;
    local_.applied += s.totals.applied;
    local_.duplicates += s.totals.duplicates;
    local_.deadlettered += s.totals.deadlettered;
    local_.late += s.totals.late;
    local_.emitted += s.totals.emitted;
    s.totals = AggregatorCounters();
  }
}

void Aggregator::Impl::RunRecordsJob(RecordsJob& j, RecordsSink& sink) {
  Task& t = *j.task;
  switch (j.kind) {
    case RecordsJob::kMessage:
      ProcessRecords(t, *j.message, j.now_ms, sink);
      break;
    case RecordsJob::kClose:
      t.windows->CloseDue(j.now_ms, &sink.emissions);
      t.windows->AdvanceIdle(j.now_ms, j.caught_up, &sink.emissions);
      Publish(sink.emissions, sink);
      break;
    case RecordsJob::kTakeChanges:
      t.windows->TakeChanges(&t.taken);
      break;
  }
}

void Aggregator::Impl::Dispatch(RecordsJob job) {
  if (lanes_) {
    const int lane = job.task->partition % lanes_->size();
    lanes_->Push(lane, std::move(job));
  } else {
    RunRecordsJob(job, sinks_.back());
  }
}

void Aggregator::Impl::Publish(std::vector<Emission>& emissions, RecordsSink& sink) {
  for (Emission& e : emissions) {
    const v1::WindowAggregate& a = e.aggregate;
    std::string value = e.aggregate.SerializeAsString();
    if (!e.rollup_parent.empty()) {
      sink.outputs.push_back({&rollup_topic_, -1, e.rollup_parent, value, {}});
    }
    sink.outputs.push_back({&topics_.aggregates, -1, a.series().node(), std::move(value), {}});
    // Family::Add builds and hashes a label map under a lock: once per series, not per window.
    std::string& gauge_key = sink.gauge_key;
    gauge_key.clear();
    absl::StrAppend(&gauge_key, a.series().node(), "|", a.series().indicator(), "|",
                    a.series().window_ms());
    prometheus::Gauge*& gauge = sink.window_gauges[gauge_key];
    if (gauge == nullptr) {
      gauge = &metrics_.window_value.Add(
          {{"node", a.series().node()},
           {"indicator", a.series().indicator()},
           {"window", absl::StrCat(a.series().window_ms() / 1000, "s")}});
    }
    gauge->Set(a.value());
    metrics_.emitted.Increment();
    ++sink.totals.emitted;
  }
  emissions.clear();
}

void Aggregator::Impl::ProcessRecords(Task& t, const ConsumedMessage& m, int64_t now,
                                      RecordsSink& sink) {
  const absl::string_view v = m.value();
  if (v.size() > options_.max_message_bytes) {
    DeadLetter(sink, m, "too_large", "", {{"size", absl::StrCat(v.size())}});
    return;
  }
  v1::RecordBatch& batch = sink.batch;
  // Record by record when the batch does not parse whole: one bad record costs only itself.
  std::vector<BadRecord> bad;
  if (absl::Status s = DecodeRecordBatch(v, &batch, &bad); !s.ok()) {
    DeadLetter(sink, m, "malformed", v, {{"problem", std::string(s.message())}});
    return;
  }
  for (const BadRecord& b : bad) {
    DeadLetter(sink, m, "malformed_record", b.wire,
               {{"problem", b.reason},
                {"record_index", absl::StrCat(b.index)},
                {"gateway_id", batch.gateway_id()}});
  }
  const int key_enterprise = batch.enterprise().empty() ? -1 : model_.NodeIndex(batch.enterprise());
  uint64_t counts[16] = {0};
  for (const v1::Record& r : batch.records()) {
    const Outcome o = t.windows->Offer(batch.gateway_id(), r, key_enterprise, now);
    ++counts[static_cast<int>(o)];
    if (o == Outcome::kApplied || o == Outcome::kDuplicate) continue;
    v1::Record copy = r;
    if (copy.gateway_id().empty()) copy.set_gateway_id(batch.gateway_id());
    DeadLetter(sink, m, OutcomeReason(o), copy.SerializeAsString(),
               {{"node", r.node()}, {"indicator", r.indicator()}});
  }
  sink.totals.records += batch.records_size();
  for (int i = 0; i < 16; ++i) {
    if (counts[i] == 0) continue;
    const Outcome o = static_cast<Outcome>(i);
    // find, never insert: the map is shared by the lanes (filled in the constructor).
    outcome_counters_.find(OutcomeReason(o))->second->Increment(static_cast<double>(counts[i]));
  }
  if (const uint64_t applied = counts[static_cast<int>(Outcome::kApplied)];
      applied > 0 && key_enterprise >= 0) {
    prometheus::Counter*& c = sink.node_counters[batch.enterprise()];
    if (c == nullptr) c = &metrics_.node_records.Add({{"node", batch.enterprise()}});
    c->Increment(static_cast<double>(applied));
  }
  sink.totals.applied += counts[static_cast<int>(Outcome::kApplied)];
  sink.totals.duplicates += counts[static_cast<int>(Outcome::kDuplicate)];
  sink.totals.late += counts[static_cast<int>(Outcome::kLate)];
  metrics_.late.Increment(static_cast<double>(counts[static_cast<int>(Outcome::kLate)]));
}

void Aggregator::Impl::ProcessRollup(Task& t, const ConsumedMessage& m, int64_t now) {
  const absl::string_view v = m.value();
  v1::WindowAggregate a;
  if (v.size() > options_.max_message_bytes ||
      !a.ParseFromArray(v.data(), static_cast<int>(v.size()))) {
    DeadLetter(sinks_.back(), m, "malformed", v);
    return;
  }
  std::vector<Emission> out;
  absl::Status s = t.rollup->Offer(a, now, &out);
  if (!s.ok()) {
    DeadLetter(sinks_.back(), m, s.message(), v);
    return;
  }
  Publish(out, sinks_.back());
}

bool Aggregator::Impl::CaughtUp(Task& t, int64_t* lag) {
  int64_t lo = -1, hi = -1;
  consumer_->raw()->get_watermark_offsets(t.topic, t.partition, &lo, &hi);
  *lag = 0;
  if (hi < 0) return false;
  const int64_t pos = t.next_offset >= 0 ? t.next_offset : lo;
  if (pos < 0) return false;
  *lag = std::max<int64_t>(0, hi - pos);
  return pos >= hi;
}

CommitUnit Aggregator::Impl::TakeUnit() {
  for (auto& [k, t] : tasks_) {
    if (t->windows) Dispatch(RecordsJob{RecordsJob::kTakeChanges, t.get()});
  }
  DrainRecords();
  CommitUnit u = std::move(pending_);
  pending_ = CommitUnit();
  for (auto& [k, t] : tasks_) {
    std::vector<StateChange> c;
    if (t->windows) c = std::move(t->taken);
    t->taken.clear();
    if (t->rollup) t->rollup->TakeChanges(&c);
    if (!c.empty()) u.changes.push_back({&t->changelog, t->partition, t->prefix, std::move(c)});
    if (t->consumed && t->next_offset >= 0) {
      u.offsets.push_back({t->topic, t->partition, t->next_offset});
    }
    t->consumed = false;
  }
  pending_work_ = false;
  u.seq = local_.transactions;
  u.counters = local_;
  return u;
}

absl::Status Aggregator::Impl::Commit(CommitUnit& u) {
  const absl::Time start = absl::Now();
  RETURN_IF_ERROR(EnsureTxn());
  for (CommitUnit::Output& o : u.outputs) {
    RETURN_IF_ERROR(producer_->Produce(*o.topic, o.partition, o.key, o.value, o.headers, nullptr,
                                       absl::Seconds(60)));
  }
  u.outputs = {};  // the producer has its copies
  for (const CommitUnit::Changes& c : u.changes) {
    for (const StateChange& sc : c.changes) {
      RETURN_IF_ERROR(producer_->Produce(*c.changelog, c.partition, sc.key, sc.value, {}, nullptr,
                                         absl::Seconds(60)));
    }
  }
  if (options_.exactly_once) {
    if (options_.commit_hook_for_test) {
      RETURN_IF_ERROR(options_.commit_hook_for_test(u.seq));
    }
    if (!u.offsets.empty()) {
      TopicPartitionList list(u.offsets);
      RETURN_IF_ERROR(
          producer_->SendOffsetsToTransaction(list.get(), consumer_->raw(), kTxnTimeout));
    }
    RETURN_IF_ERROR(producer_->CommitTransaction(kTxnTimeout));
    txn_open_ = false;
    producer_->Poll(absl::ZeroDuration());
  } else {
    RETURN_IF_ERROR(producer_->Flush(kTxnTimeout));
    if (!delivery_error_.ok()) return delivery_error_;
    if (!u.offsets.empty()) RETURN_IF_ERROR(consumer_->Commit(u.offsets));
  }
  metrics_.commit_seconds.Observe(absl::ToDoubleSeconds(absl::Now() - start));
  {
    // Committed: what it covers is now visible downstream (the local store below is a cache).
    absl::MutexLock l(&counters_mu_);
    CopyProcessingTotals(u.counters, &counters_);
    counters_.transactions = u.seq + 1;
  }

  // Now Kafka is authoritative; bring the local cache up to it.
  WriteBatch wb;
  std::vector<StateChange*> sorted;
  for (CommitUnit::Changes& c : u.changes) {
    // In key order: RocksDB's memtable starts each insert from where the previous one went
    // (the skip list's splice), which saves comparisons of these long keys with common prefixes
    // when they ascend. Stable: a key's later change still comes last.
    sorted.clear();
    for (StateChange& sc : c.changes) sorted.push_back(&sc);
    std::stable_sort(sorted.begin(), sorted.end(),
                     [](const StateChange* a, const StateChange* b) { return a->key < b->key; });
    for (StateChange* sc : sorted) {
      std::string key = absl::StrCat(c.prefix, "s/", sc->key);
      if (sc->value.empty()) {
        wb.Delete(key);
      } else {
        wb.PutOwned(std::move(key), std::move(sc->value));  // produced already: not needed again
      }
    }
    auto d = delivered_.find({*c.changelog, c.partition});
    if (d != delivered_.end()) wb.Put(absl::StrCat(c.prefix, "m"), absl::StrCat(d->second + 1));
  }
  delivered_.clear();
  if (!wb.empty()) RETURN_IF_ERROR(Annotate(store_->Write(wb), "writing aggregator state"));
  return absl::OkStatus();
}

absl::Status Aggregator::Impl::FinishCommit() {
  if (!committer_.joinable()) return absl::OkStatus();
  committer_.join();
  if (!committer_status_.ok()) return committer_status_;
  ++local_.transactions;
  return absl::OkStatus();
}

absl::StatusOr<CommitUnit> Aggregator::Impl::NextUnit() {
  if (dirty_) {
    return absl::FailedPreconditionError(
        "not committing: the state is ahead of an aborted transaction and was not rewound");
  }
  RETURN_IF_ERROR(FinishCommit());
  return TakeUnit();
}

absl::Status Aggregator::Impl::HandOff() {
  ASSIGN_OR_RETURN(CommitUnit u, NextUnit());
  if (u.empty()) return absl::OkStatus();
  committer_idle_.store(false);
  committer_ = std::thread([this, u = std::move(u)]() mutable {
    committer_status_ = Commit(u);
    committer_idle_.store(true);
  });
  return absl::OkStatus();
}

absl::Status Aggregator::Impl::CommitPending() {
  ASSIGN_OR_RETURN(CommitUnit u, NextUnit());
  if (u.empty()) return absl::OkStatus();
  RETURN_IF_ERROR(Commit(u));
  ++local_.transactions;
  return absl::OkStatus();
}

absl::Status Aggregator::Impl::AbortPending(const absl::Status& cause) {
  spdlog::error("[aggregator] transaction failed: {}", cause.ToString());
  dirty_ = true;
  if (options_.exactly_once && txn_open_) {
    absl::Status s = producer_->AbortTransaction(kTxnTimeout);
    txn_open_ = false;
    if (!s.ok()) spdlog::error("[aggregator] abort: {}", s.ToString());
  }
  // In-memory state ran ahead of Kafka: the caller rewinds (Rewind) or, when that is not
  // possible, returns the error (the CLI then restarts the role from the committed state).
  return cause;
}

absl::Status Aggregator::Impl::Rewind() {
  if (!options_.exactly_once) {
    // Without transactions part of the batch's changelog may be visible already: replaying it
    // and the batch again would count twice. The restart path handles at-least-once.
    return absl::FailedPreconditionError("at-least-once mode does not rewind");
  }
  if (std::string fatal; producer_->raw()->fatal_error(fatal) != RdKafka::ERR_NO_ERROR) {
    // The abort itself failed: a new producer with the same transactional.id aborts the open
    // transaction on the coordinator when it initialises.
    spdlog::warn("[aggregator] producer failed ({}); creating a new one", fatal);
    RETURN_IF_ERROR(Annotate(CreateProducer(), "replacing the producer"));
    txn_open_ = false;
  }
  delivery_error_ = absl::OkStatus();
  delivered_.clear();
  pending_work_ = false;
  pending_ = CommitUnit();
  const int64_t now = options_.clock->NowMillis();
  std::vector<Task*> all;
  std::vector<TopicPartitionOffset> tps;
  for (auto& [k, t] : tasks_) {
    if (t->windows) t->windows = std::make_unique<PartitionWindows>(&model_, now);
    if (t->rollup) t->rollup = std::make_unique<RollupWindows>(&model_);
    t->consumed = false;
    all.push_back(t.get());
    tps.push_back({t->topic, t->partition});
  }
  // RocksDB holds the state of the last commit (it is written only after one), and Restore
  // replays whatever the changelog has beyond it.
  RETURN_IF_ERROR(Annotate(Restore(all), "rewinding state"));
  if (tps.empty()) {
    dirty_ = false;
    return absl::OkStatus();
  }
  TopicPartitionList list(tps);
  if (const RdKafka::ErrorCode err = consumer_->raw()->committed(list.get(), 10000);
      err != RdKafka::ERR_NO_ERROR) {
    return KafkaStatus(err, "reading committed offsets to rewind");
  }
  for (RdKafka::TopicPartition* tp : list.get()) {
    Task* t = FindTask(tp->topic(), tp->partition());
    if (t == nullptr) continue;
    // No commit yet: back to where the group starts reading (the log start).
    if (tp->offset() < 0) tp->set_offset(RdKafka::Topic::OFFSET_BEGINNING);
    if (const RdKafka::ErrorCode err = consumer_->raw()->seek(*tp, 10000);
        err != RdKafka::ERR_NO_ERROR) {
      return KafkaStatus(err, absl::StrCat("seeking ", t->topic, "[", t->partition, "] back"));
    }
    t->next_offset = tp->offset() >= 0 ? tp->offset() : -1;
  }
  dirty_ = false;
  ++local_.rewinds;
  PublishLoopCounters();
  spdlog::warn("[aggregator] rewound {} task(s) to the last committed state; retrying", all.size());
  return absl::OkStatus();
}

absl::Status Aggregator::Impl::Restore(const std::vector<Task*>& tasks) {
  if (tasks.empty()) return absl::OkStatus();
  const absl::Time start = absl::Now();
  metrics_.restoring.Set(static_cast<double>(tasks.size()));
  std::vector<TopicPartitionOffset> assign;
  std::map<std::pair<std::string, int32_t>, Task*> by_tp;
  for (Task* t : tasks) {
    int64_t from = RdKafka::Topic::OFFSET_BEGINNING;
    auto meta = store_->Get(absl::StrCat(t->prefix, "m"));
    int64_t off = 0;
    if (meta.ok() && absl::SimpleAtoi(*meta, &off)) {
      from = off;
    } else {
      // No record of what the local state reflects: wipe it and replay everything.
      WriteBatch wipe;
      RETURN_IF_ERROR(store_->Scan(t->prefix, [&](absl::string_view k, absl::string_view) {
        wipe.Delete(k);
        return true;
      }));
      if (!wipe.empty()) RETURN_IF_ERROR(store_->Write(wipe));
    }
    // Nothing to replay? (Saves the fetch round trips of waiting for EOF.) An empty log, or one
    // whose end is just past our last transaction's commit marker at `from`.
    auto wm = restorer_->Watermarks(t->changelog, t->partition, absl::Seconds(10));
    if (wm.ok() && (wm->first == wm->second || (from >= 0 && from >= wm->second - 1))) {
      if (from >= 0) t->changelog_next = from;
      continue;
    }
    assign.push_back({t->changelog, t->partition, from});
    by_tp[{t->changelog, t->partition}] = t;
    spdlog::info(
        "[aggregator] restoring {}[{}] from changelog offset {}", t->topic, t->partition,
        from == RdKafka::Topic::OFFSET_BEGINNING ? std::string("beginning") : absl::StrCat(from));
  }
  if (!assign.empty()) RETURN_IF_ERROR(restorer_->Assign(assign));
  size_t remaining = assign.size();
  uint64_t entries = 0;
  WriteBatch wb;
  std::map<Task*, int64_t> next;
  auto flush = [&]() -> absl::Status {
    for (auto& [t, n] : next) wb.Put(absl::StrCat(t->prefix, "m"), absl::StrCat(n));
    if (wb.empty()) return absl::OkStatus();
    absl::Status s = store_->Write(wb);
    wb = WriteBatch();
    return s;
  };
  const absl::Time deadline = absl::Now() + absl::Minutes(10);
  while (remaining > 0) {
    if (absl::Now() > deadline) return absl::DeadlineExceededError("changelog restore timed out");
    std::unique_ptr<RdKafka::Message> m(restorer_->raw()->consume(500));
    if (m->err() == RdKafka::ERR__TIMED_OUT) continue;
    if (m->err() == RdKafka::ERR__PARTITION_EOF) {
      auto it = by_tp.find({m->topic_name(), m->partition()});
      if (it != by_tp.end()) {
        by_tp.erase(it);
        --remaining;
      }
      continue;
    }
    if (m->err() != RdKafka::ERR_NO_ERROR) {
      if (m->err() == RdKafka::ERR__FATAL) return KafkaStatus(m->err(), "restore");
      spdlog::warn("[aggregator] restore: {}", m->errstr());
      continue;
    }
    auto it = by_tp.find({m->topic_name(), m->partition()});
    if (it == by_tp.end()) continue;
    Task* t = it->second;
    const std::string key =
        absl::StrCat(t->prefix, "s/", m->key() ? absl::string_view(*m->key()) : "");
    if (m->len() == 0) {
      wb.Delete(key);
    } else {
      wb.Put(key, absl::string_view(static_cast<const char*>(m->payload()), m->len()));
    }
    next[t] = m->offset() + 1;
    if (++entries % 10000 == 0) {
      RETURN_IF_ERROR(flush());
      spdlog::info("[aggregator] restore: {} changelog entries replayed", entries);
    }
  }
  RETURN_IF_ERROR(flush());
  if (!assign.empty()) RETURN_IF_ERROR(restorer_->Assign({}));
  // Load the (now current) local state into memory.
  uint64_t legacy_dropped = 0;
  for (Task* t : tasks) {
    const std::string sp = absl::StrCat(t->prefix, "s/");
    const uint64_t legacy_before = t->windows ? t->windows->legacy_windows_dropped() : 0;
    absl::Status load_status;
    RETURN_IF_ERROR(store_->Scan(sp, [&](absl::string_view k, absl::string_view v) {
      k.remove_prefix(sp.size());
      absl::Status s = t->windows ? t->windows->Load(k, v) : t->rollup->Load(k, v);
      if (!s.ok()) {
        load_status = s;
        return false;
      }
      return true;
    }));
    RETURN_IF_ERROR(load_status);
    if (t->windows) legacy_dropped += t->windows->legacy_windows_dropped() - legacy_before;
    if (next.count(t)) t->changelog_next = next[t];
  }
  const double secs = absl::ToDoubleSeconds(absl::Now() - start);
  metrics_.restore_seconds.Set(secs);
  metrics_.restore_entries.Increment(static_cast<double>(entries));
  metrics_.restoring.Set(0);
  local_.restored_entries += entries;
  if (legacy_dropped > 0) {
    metrics_.legacy_dropped.Increment(static_cast<double>(legacy_dropped));
    spdlog::warn(
        "[aggregator] restore: dropped {} rolled-up ancestor window(s) of an older version "
        "(they are rebuilt from their children's windows at close; tombstoned at the next commit)",
        legacy_dropped);
  }
  size_t open = 0;
  for (Task* t : tasks) open += t->windows ? t->windows->open_windows() : t->rollup->open_windows();
  spdlog::info(
      "[aggregator] restored {} partition(s): {} changelog entries replayed, {} open "
      "windows loaded, in {:.3f}s",
      tasks.size(), entries, open, secs);
  return absl::OkStatus();
}

void Aggregator::Impl::OnAssigned(std::vector<TopicPartitionOffset>& partitions) {
  DrainRecords();  // (called inside a poll: the lanes may be busy with this batch)
  if (!fatal_.ok() || dirty_) return;  // dirty: Run is ending on a failed transaction
  if (absl::Status s = CommitPending(); !s.ok()) {
    fatal_ = AbortPending(s);
    return;
  }
  const int64_t now = options_.clock->NowMillis();
  std::vector<Task*> fresh;
  for (const TopicPartitionOffset& tp : partitions) {
    auto t = std::make_unique<Task>();
    t->topic = tp.topic;
    t->partition = tp.partition;
    if (tp.topic == topics_.records) {
      t->kind = TaskKind::kRecords;
      t->changelog = records_changelog_;
      t->windows = std::make_unique<PartitionWindows>(&model_, now);
    } else {
      t->kind = TaskKind::kRollup;
      t->changelog = rollup_changelog_;
      t->rollup = std::make_unique<RollupWindows>(&model_);
    }
    t->prefix = TaskPrefix(t->kind, t->partition);
    fresh.push_back(t.get());
    tasks_[{tp.topic, tp.partition}] = std::move(t);
  }
  // Where consumption resumes (for lag and idleness). Read BEFORE the restore: the fetch waits
  // for a pending transactional offset commit (require_stable), i.e. for the previous owner's
  // last transaction to complete, so the restore below then sees that transaction's changelog
  // too (read the other way round, a restore that ran while its markers were being written
  // could miss the state of offsets the fetch then returned).
  {
    TopicPartitionList list([&] {
      std::vector<TopicPartitionOffset> v;
      for (Task* t : fresh) v.push_back({t->topic, t->partition});
      return v;
    }());
    // Not without it: while a killed owner's transaction is still open (until the coordinator
    // aborts it, transaction.timeout.ms plus up to its 10 s cleanup interval), the fetch times
    // out, and a restore then stops at that transaction (read_committed) and misses what later
    // owners committed after it, while consumption resumes at their later offsets: those
    // records were lost (seen in the scale-out test). So wait for it, within a bound.
    const absl::Time give_up = absl::Now() + kStableOffsetsWait;
    auto read_committed = [&] {
      RdKafka::ErrorCode e = consumer_->raw()->committed(list.get(), 10000);
      for (auto* tp : list.get()) {
        if (e == RdKafka::ERR_NO_ERROR) e = tp->err();  // e.g. UNSTABLE_OFFSET_COMMIT
      }
      return e;
    };
    RdKafka::ErrorCode err;
    while ((err = read_committed()) != RdKafka::ERR_NO_ERROR) {
      if (absl::Now() >= give_up) {
        fatal_ = KafkaStatus(err,
                             "reading the committed offsets of newly assigned partitions "
                             "(a previous owner's transaction still pending?)");
        return;
      }
      spdlog::warn(
          "[aggregator] committed offsets not readable yet ({}); waiting for a pending "
          "transaction to complete",
          RdKafka::err2str(err));
    }
    for (auto* tp : list.get()) {
      if (Task* t = FindTask(tp->topic(), tp->partition()); t && tp->offset() >= 0) {
        t->next_offset = tp->offset();
      }
    }
  }
  if (absl::Status s = Restore(fresh); !s.ok()) {
    fatal_ = Annotate(s, "restoring state");
    return;
  }
  std::string resume;
  for (Task* t : fresh) {
    if (t->kind == TaskKind::kRecords)
      absl::StrAppend(&resume, " ", t->partition, "@", t->next_offset);
  }
  spdlog::info("[aggregator] assigned {} partition(s), {} task(s) now; records resume at{}",
               partitions.size(), tasks_.size(), resume);
  PublishLoopCounters();
  if (ready_ && !ready_->exchange(true) && options_.on_ready) options_.on_ready(true);
}

void Aggregator::Impl::OnRevoked(const std::vector<TopicPartitionOffset>& partitions, bool lost) {
  DrainRecords();  // before committing or dropping the tasks the lanes use
  absl::Status lost_commit;
  if (fatal_.ok() && !dirty_) {  // dirty: the aborted state is dropped, not committed
    if (lost) {
      // A fenced member's commit in flight fails; what it and the buffer held is dropped with
      // the tasks (the new owner restores from the last commit).
      lost_commit = FinishCommit();
      if (txn_open_) (void)producer_->AbortTransaction(kTxnTimeout);
      txn_open_ = false;
      pending_work_ = false;
      pending_ = CommitUnit();
    } else if (absl::Status s = CommitPending(); !s.ok()) {
      fatal_ = AbortPending(s);
    }
  }
  for (const TopicPartitionOffset& tp : partitions) {
    auto it = tasks_.find({tp.topic, tp.partition});
    if (it == tasks_.end()) continue;
    if (it->second->kind == TaskKind::kRecords) {
      // Another instance reports this partition's lag now; a stale value here would add up.
      prometheus::Gauge& lag = metrics_.lag.Add({{"partition", absl::StrCat(tp.partition)}});
      metrics_.lag.Remove(&lag);
    }
    if (!stopping_) {
      // Another instance will own it; our copy would miss tombstones compacted meanwhile.
      WriteBatch wipe;
      (void)store_->Scan(it->second->prefix, [&](absl::string_view k, absl::string_view) {
        wipe.Delete(k);
        return true;
      });
      if (!wipe.empty()) (void)store_->Write(wipe);
    }
    tasks_.erase(it);
  }
  spdlog::info("[aggregator] revoked {} partition(s){}, {} task(s) left", partitions.size(),
               lost ? " (lost)" : "", tasks_.size());
  if (!lost_commit.ok()) {
    spdlog::warn("[aggregator] commit in flight when partitions were lost: {}",
                 lost_commit.ToString());
    // Tasks that stay would hold state the failed commit carried.
    if (!tasks_.empty() && fatal_.ok()) fatal_ = AbortPending(lost_commit);
  }
}

void Aggregator::Impl::UpdateGauges() {
  size_t open = 0;
  for (auto& [k, t] : tasks_) {
    if (t->windows) open += t->windows->open_windows();
    if (t->rollup) open += t->rollup->open_windows();
    if (t->kind == TaskKind::kRecords) {
      int64_t lag = 0;
      CaughtUp(*t, &lag);
      metrics_.lag.Add({{"partition", absl::StrCat(t->partition)}}).Set(static_cast<double>(lag));
    }
  }
  metrics_.open_windows.Set(static_cast<double>(open));
  local_.state_bytes = store_->ApproximateBytes();
  metrics_.state_bytes.Set(static_cast<double>(local_.state_bytes));
  metrics_.rocksdb_memory.Set(static_cast<double>(store_->MemoryUsageBytes()));
  PublishLoopCounters();
}

void Aggregator::Impl::PublishLoopCounters() {
  absl::MutexLock l(&counters_mu_);
  counters_.rewinds = local_.rewinds;
  counters_.restored_entries = local_.restored_entries;
  counters_.state_bytes = local_.state_bytes;
}

absl::Status Aggregator::Impl::Run(std::atomic<bool>& stop, std::atomic<bool>& ready) {
  ready_ = &ready;
  RETURN_IF_ERROR(Setup());
  spdlog::info("[aggregator] {} consuming {} and {} ({} partitions, {})", options_.instance_id,
               topics_.records, rollup_topic_, partitions_,
               options_.exactly_once ? "exactly-once" : "at-least-once");
  absl::Status result;
  std::vector<Emission> out;
  int failed_in_a_row = 0;
  while (!stop.load()) {
    const absl::Time batch_start = absl::Now();
    const absl::Time batch_end = batch_start + options_.max_batch_time;
    size_t n = 0;
    while (n < options_.max_batch_messages && !stop.load()) {
      const absl::Duration left = batch_end - absl::Now();
      if (left <= absl::ZeroDuration()) break;
      // With input in hand, wait only briefly for more: quiet input may close the batch early.
      const absl::Duration wait = n > 0 ? std::min(left, options_.commit_when_quiet_for) : left;
      // Small chunks, so that processing time counts against max_batch_time too.
      auto msgs =
          consumer_->ConsumeBatch(std::min<size_t>(100, options_.max_batch_messages - n), wait);
      if (!fatal_.ok()) break;
      if (!msgs.ok()) {
        fatal_ = msgs.status();
        break;
      }
      if (msgs->empty()) {
        if (n > 0 && committer_idle_.load() &&
            absl::Now() - batch_start >= options_.min_batch_time) {
          break;
        }
        continue;
      }
      const int64_t now = options_.clock->NowMillis();
      for (ConsumedMessage& m : *msgs) {
        Task* t = FindTask(m.topic(), m.partition());
        if (t == nullptr) continue;  // revoked inside this poll
        const int64_t offset = m.offset();
        if (t->next_offset >= 0 && offset < t->next_offset) continue;
        if (t->kind == TaskKind::kRollup) {
          ProcessRollup(*t, m, now);
        } else {
          Dispatch(RecordsJob{RecordsJob::kMessage, t, now, std::move(m)});
        }
        t->next_offset = offset + 1;
        t->consumed = true;
      }
      n += msgs->size();
    }
    DrainRecords();
    if (!fatal_.ok()) break;
    const int64_t now = options_.clock->NowMillis();
    for (auto& [k, t] : tasks_) {
      if (t->windows) {
        int64_t lag = 0;
        const bool caught_up = CaughtUp(*t, &lag);
        Dispatch(RecordsJob{RecordsJob::kClose, t.get(), now, std::nullopt, caught_up});
      } else {
        t->rollup->Tick(now, &out);
        Publish(out, sinks_.back());
      }
    }
    DrainRecords();
    // The previous batch's commit must have succeeded before this one's starts.
    const uint64_t committed_before = local_.transactions;
    if (absl::Status s = HandOff(); !s.ok()) {
      result = AbortPending(s);
      // Retry in place a few times in a row; a persistent failure ends Run (the CLI restarts
      // the role, which also replaces the producer).
      if (++failed_in_a_row <= 3) {
        if (absl::Status r = Rewind(); r.ok()) {
          result = absl::OkStatus();
          continue;
        } else {
          spdlog::error("[aggregator] cannot rewind: {}", r.ToString());
        }
      }
      break;
    }
    if (local_.transactions != committed_before) failed_in_a_row = 0;
    if (now - last_gauges_ms_ >= 1000) {
      UpdateGauges();
      last_gauges_ms_ = now;
    }
  }
  // The commit in flight, if any, completes (or fails) before the way out.
  if (absl::Status s = FinishCommit(); !s.ok()) {
    s = AbortPending(s);
    if (result.ok()) result = s;
  }
  if (result.ok() && !fatal_.ok()) {
    result = fatal_;
    if (txn_open_) (void)producer_->AbortTransaction(kTxnTimeout);
  }
  stopping_ = true;
  if (consumer_) (void)consumer_->Close();
  if (result.ok() && pending_work_) result = CommitPending();
  {
    absl::MutexLock l(&counters_mu_);
    counters_ = local_;
  }
  spdlog::info("[aggregator] stopped: {}", result.ok() ? "ok" : result.ToString());
  return result;
}

Aggregator::Aggregator(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Aggregator::~Aggregator() { (void)Stop(); }

absl::StatusOr<std::unique_ptr<Aggregator>> Aggregator::Create(AggregatorOptions options) {
  if (options.config == nullptr || options.config->hierarchy == nullptr) {
    return absl::InvalidArgumentError("aggregator: a config with a hierarchy is required");
  }
  if (options.config->hierarchy->LevelIndex(Hierarchy::kEnterpriseLevel) < 0) {
    return absl::InvalidArgumentError("aggregator: the hierarchy needs a level named enterprise");
  }
  if (options.config->aggregator.windows.empty()) {
    return absl::InvalidArgumentError("aggregator: aggregator.windows is empty");
  }
  if (options.clock == nullptr) options.clock = Clock::Real();
  auto registry = options.registry ? options.registry : std::make_shared<prometheus::Registry>();
  return std::unique_ptr<Aggregator>(
      new Aggregator(std::make_unique<Impl>(std::move(options), std::move(registry))));
}

absl::Status Aggregator::Run() { return impl_->Run(stop_, ready_); }

absl::Status Aggregator::Start() {
  if (thread_.joinable()) return absl::FailedPreconditionError("aggregator already started");
  stop_.store(false);
  thread_ = std::thread([this] {
    absl::Status s = impl_->Run(stop_, ready_);
    absl::MutexLock l(&mu_);
    thread_status_ = s;
  });
  return absl::OkStatus();
}

absl::Status Aggregator::Stop() {
  RequestStop();
  if (thread_.joinable()) thread_.join();
  absl::MutexLock l(&mu_);
  return thread_status_;
}

AggregatorCounters Aggregator::counters() const { return impl_->counters(); }
std::shared_ptr<prometheus::Registry> Aggregator::registry() const { return impl_->registry(); }

}  // namespace cybersyn::aggregator
