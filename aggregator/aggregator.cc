#include "aggregator/aggregator.h"

#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "aggregator/model.h"
#include "common/rocksdb_store.h"
#include "common/status.h"
#include "spdlog/spdlog.h"
#include "stream/kafka_io.h"
#include "stream/runtime.h"

namespace cybersyn::aggregator {

class Aggregator::Impl {
 public:
  Impl(AggregatorOptions options, std::shared_ptr<prometheus::Registry> registry,
       std::atomic<bool>* ready)
      : options_(std::move(options)),
        registry_(std::move(registry)),
        metrics_(*registry_),
        model_(options_.config),
        topics_(options_.config->kafka.topic_prefix),
        io_(stream::NewKafkaIo(options_.client, options_.ensure_topics)),
        ready_(ready) {}

  absl::Status Init() {
    ASSIGN_OR_RETURN(runtime_, stream::Runtime::Create(RuntimeOptions()));
    return absl::OkStatus();
  }
  absl::Status Run(std::atomic<bool>& stop);
  AggregatorCounters counters() const;
  std::shared_ptr<prometheus::Registry> registry() const { return registry_; }

 private:
  absl::Status EnsureTopics();
  stream::RuntimeOptions RuntimeOptions();

  AggregatorOptions options_;
  std::shared_ptr<prometheus::Registry> registry_;
  AggregatorMetrics metrics_;
  Model model_;
  TopicNames topics_;
  std::unique_ptr<stream::KafkaIo> io_;
  std::atomic<bool>* ready_;
  std::unique_ptr<stream::Runtime> runtime_;  // set by Init
};

absl::Status Aggregator::Impl::EnsureTopics() {
  const Config& cfg = *options_.config;
  // The changelogs must have as many partitions as their inputs.
  int partitions = cfg.kafka.partitions;
  if (!options_.ensure_topics) {
    if (auto n = io_->PartitionCount(topics_.records); n.ok()) partitions = *n;
  }
  const std::map<std::string, std::string> compact = {{"cleanup.policy", "compact"},
                                                      {"min.compaction.lag.ms", "60000"},
                                                      {"delete.retention.ms", "86400000"}};
  const std::map<std::string, std::string> week = {{"retention.ms", "604800000"}};
  const int rf = cfg.kafka.replication_factor;
  const std::string& p = topics_.prefix;
  return Annotate(io_->EnsureTopics({
                      {topics_.records, partitions, rf, week},
                      {topics_.deadletter, partitions, rf, week},
                      {topics_.aggregates, partitions, rf, week},
                      {RollupTopic(p), partitions, rf, week},
                      {RecordsChangelog(p), partitions, rf, compact},
                      {RollupChangelog(p), partitions, rf, compact},
                  }),
                  "creating topics");
}

stream::RuntimeOptions Aggregator::Impl::RuntimeOptions() {
  const Config& cfg = *options_.config;
  stream::RuntimeOptions o;
  o.topology = AggregatorTopology({&model_, topics_.prefix, &metrics_, options_.clock});
  o.io = io_.get();
  o.group_id = absl::StrCat(topics_.prefix, ".aggregator");
  // Static membership: a restarted instance (same id) takes its partitions back at once instead
  // of waiting for its dead predecessor's session to time out; a second live process with the
  // same id is fenced, like the transactional.id.
  o.group_instance_id = options_.instance_id;
  o.transactional_id = absl::StrCat(topics_.prefix, ".aggregator.", options_.instance_id);
  o.exactly_once = options_.exactly_once;
  RocksDbOptions ro;
  ro.path = options_.state_dir.empty() ? cfg.aggregator.state_dir : options_.state_dir;
  ro.memory_limit_bytes = cfg.aggregator.memory_limit;
  ro.registry = registry_.get();
  ro.metrics_store = "aggregator_state";
  // Kafka (the changelog) is authoritative and every write carries the changelog offset it
  // reflects, so a crash that loses the unflushed tail only means replaying more on restore.
  ro.disable_wal = true;
  o.open_store = RocksDbStore::Opener(ro);
  o.destroy_store = [path = ro.path] { return RocksDbStore::Destroy(path); };
  o.clock = options_.clock;
  o.registry = registry_;
  o.max_batch_messages = options_.max_batch_messages;
  o.max_batch_time = options_.max_batch_time;
  o.commit_when_quiet_for = options_.commit_when_quiet_for;
  o.min_batch_time = options_.min_batch_time;
  o.max_message_bytes = options_.max_message_bytes;
  o.processing_threads = options_.processing_threads;
  // Partitions gained in a rebalance restore while the others go on (docs/stream.md).
  o.restore_in_background = true;
  o.consumer_overrides = options_.consumer_overrides;
  // Cooperative (incremental) rebalancing, the consumer's default: adding or removing an
  // instance moves only the partitions that change owner. records[p] and aggregator-rollup[p]
  // stay on one member because the group assigns records only and rollup[p] follows
  // (stream/topology.h LeadTopic).
  o.consumer_overrides.emplace("session.timeout.ms", "6000");
  o.consumer_overrides.emplace("heartbeat.interval.ms", "1000");
  o.consumer_overrides.emplace("fetch.max.bytes", std::to_string(64 << 20));
  // 1 MiB per partition and fetch: one fetch response then interleaves the partitions in the
  // consumer queue in small runs, so that the lanes (one per group of partitions) all get work.
  o.consumer_overrides.emplace("max.partition.fetch.bytes", std::to_string(1 << 20));
  o.producer_overrides = options_.producer_overrides;
  o.producer_overrides.emplace("linger.ms", "5");
  // The changelog repeats node paths and indicator names in every key and value: lz4 shrinks
  // what each commit waits for several-fold, for little CPU.
  o.producer_overrides.emplace("compression.type", "lz4");
  o.producer_overrides.emplace("transaction.timeout.ms", "15000");
  o.producer_overrides.emplace("message.max.bytes", std::to_string(16 << 20));
  o.on_ready = [this](bool r) {
    ready_->store(r);
    if (options_.on_ready) options_.on_ready(r);
  };
  if (options_.on_committed) {
    o.on_committed = [f = options_.on_committed](const std::vector<stream::Output>& outputs) {
      std::vector<std::string> aggregates;
      for (const stream::Output& out : outputs) {
        if (out.topic == kAggregatesOut) aggregates.push_back(out.value);
      }
      f(aggregates);
    };
  }
  o.on_sample = [this](const std::vector<stream::Processor*>& tasks) {
    size_t open = 0;
    for (stream::Processor* p : tasks) {
      if (auto* r = dynamic_cast<RecordsProcessor*>(p)) open += r->windows().open_windows();
      if (auto* r = dynamic_cast<RollupProcessor*>(p)) open += r->rollup().open_windows();
    }
    metrics_.open_windows.Set(static_cast<double>(open));
  };
  o.commit_hook_for_test = options_.commit_hook_for_test;
  return o;
}

absl::Status Aggregator::Impl::Run(std::atomic<bool>& stop) {
  RETURN_IF_ERROR(EnsureTopics());
  spdlog::info("[aggregator] {} consuming {} and {} ({})", options_.instance_id, topics_.records,
               RollupTopic(topics_.prefix),
               options_.exactly_once ? "exactly-once" : "at-least-once");
  return runtime_->Run(stop);
}

AggregatorCounters Aggregator::Impl::counters() const {
  AggregatorCounters c;
  const std::vector<uint64_t> n = runtime_->counters();
  const stream::RuntimeStats s = runtime_->stats();
  c.records = n[kRecords];
  c.applied = n[kApplied];
  c.duplicates = n[kDuplicates];
  c.late = n[kLate];
  c.emitted = n[kEmitted];
  c.deadlettered = s.deadlettered;
  c.transactions = s.transactions;
  c.rewinds = s.rewinds;
  c.restored_entries = s.restored_entries;
  c.partitions = s.partitions;
  c.last_restore_seconds = s.last_restore_seconds;
  c.state_bytes = s.state_bytes;
  return c;
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
  std::unique_ptr<Aggregator> a(new Aggregator(nullptr));
  a->impl_ = std::make_unique<Impl>(std::move(options), std::move(registry), &a->ready_);
  RETURN_IF_ERROR(a->impl_->Init());
  return a;
}

absl::Status Aggregator::Run() { return impl_->Run(stop_); }

absl::Status Aggregator::Start() {
  if (thread_.joinable()) return absl::FailedPreconditionError("aggregator already started");
  stop_.store(false);
  thread_ = std::thread([this] {
    absl::Status s = impl_->Run(stop_);
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
