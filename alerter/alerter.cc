#include "alerter/alerter.h"

#include <map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/rocksdb_store.h"
#include "common/status.h"
#include "spdlog/spdlog.h"
#include "stream/kafka_io.h"
#include "stream/runtime.h"

namespace cybersyn::alerter {

class Alerter::Impl {
 public:
  explicit Impl(AlerterOptions o)
      : opts_(std::move(o)),
        names_(opts_.config->kafka.topic_prefix),
        registry_(opts_.registry ? opts_.registry : std::make_shared<prometheus::Registry>()),
        metrics_(*registry_),
        io_(stream::NewKafkaIo(opts_.client, opts_.ensure_topics)) {
    if (opts_.state_dir.empty()) opts_.state_dir = opts_.config->alerter.state_dir;
  }
  ~Impl() { Stop(); }

  absl::Status Init() {
    ASSIGN_OR_RETURN(runtime_, stream::Runtime::Create(RuntimeOptions()));
    return absl::OkStatus();
  }
  absl::Status Start();
  void Stop();
  absl::Status status() const {
    absl::MutexLock l(&mu_);
    return status_;
  }
  Stats stats() const;
  bool ready() const { return runtime_->ready(); }

 private:
  stream::RuntimeOptions RuntimeOptions();
  // Committer thread: what the observer and the transition metrics see.
  void OnCommitted(const std::vector<stream::Output>& outputs);
  // Loop thread: gauges from every partition's processor.
  void Sample(const std::vector<stream::Processor*>& tasks);

  AlerterOptions opts_;
  TopicNames names_;
  std::shared_ptr<prometheus::Registry> registry_;
  AlerterMetrics metrics_;
  std::unique_ptr<stream::KafkaIo> io_;
  std::unique_ptr<stream::Runtime> runtime_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  bool started_ = false;
  std::atomic<int> partitions_{0};  // of <prefix>.commands, once Start ensured it
  std::map<std::pair<std::string, std::string>, prometheus::Gauge*> open_by_;  // loop thread

  mutable absl::Mutex mu_;
  absl::Status status_ ABSL_GUARDED_BY(mu_);
  uint64_t series_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t open_signals_ ABSL_GUARDED_BY(mu_) = 0;
};

stream::RuntimeOptions Alerter::Impl::RuntimeOptions() {
  const Config& cfg = *opts_.config;
  stream::RuntimeOptions o;
  o.topology = AlerterTopology({opts_.config, names_.prefix, &metrics_, opts_.clock, opts_.observer,
                                opts_.attribution, [this] { return partitions_.load(); }});
  o.io = io_.get();
  o.group_id = absl::StrCat(names_.prefix, ".alerter");
  o.transactional_id = absl::StrCat(names_.prefix, ".alerter-", opts_.instance_id);
  // Static membership: a restarted instance takes its partitions back at once instead of waiting
  // for the dead member's session to time out. (A clean stop therefore does not hand partitions
  // to other members before session.timeout.ms.)
  o.group_instance_id = o.transactional_id;
  RocksDbOptions ro;
  ro.path = opts_.state_dir;
  ro.memory_limit_bytes = cfg.alerter.memory_limit;
  ro.registry = registry_.get();
  ro.metrics_store = "alerter_state";
  // As the aggregator's: every write carries the changelog offset it reflects.
  ro.disable_wal = true;
  o.open_store = RocksDbStore::Opener(ro);
  o.destroy_store = [path = ro.path] { return RocksDbStore::Destroy(path); };
  o.clock = opts_.clock;
  o.registry = registry_;
  o.max_batch_messages = opts_.max_batch_messages;
  o.max_batch_time = opts_.max_batch_time;
  o.commit_when_quiet_for = opts_.commit_when_quiet_for;
  o.min_batch_time = opts_.min_batch_time;
  o.processing_threads = opts_.processing_threads;
  // Partitions gained in a rebalance restore while the others go on (docs/stream.md).
  o.restore_in_background = true;
  // Cooperative rebalancing (the consumer's default); commands[p] follows aggregates[p], so both
  // stay on one member (stream/topology.h LeadTopic).
  // Large fetches: an aggregate is ~100 bytes, so librdkafka's 1 MiB per partition and round
  // trip kept a catching-up alerter waiting on fetches (the broker shares the machine).
  o.consumer_overrides["fetch.max.bytes"] = std::to_string(64 << 20);
  o.consumer_overrides["max.partition.fetch.bytes"] = std::to_string(8 << 20);
  o.producer_overrides["linger.ms"] = "5";
  o.producer_overrides["compression.type"] = "lz4";
  o.producer_overrides["transaction.timeout.ms"] = "15000";
  o.on_ready = opts_.on_ready;
  o.on_committed = [this](const std::vector<stream::Output>& outputs) { OnCommitted(outputs); };
  o.on_sample = [this](const std::vector<stream::Processor*>& tasks) { Sample(tasks); };
  o.commit_hook_for_test = opts_.commit_hook_for_test;
  return o;
}

void Alerter::Impl::OnCommitted(const std::vector<stream::Output>& outputs) {
  std::vector<v1::SignalEvent> events;
  for (const stream::Output& out : outputs) {
    if (out.topic != kSignalsOut) continue;
    v1::SignalEvent& e = events.emplace_back();
    if (!e.ParseFromString(out.value)) {
      events.pop_back();
      continue;
    }
    const v1::TransitionKind kind = e.transition().kind();
    metrics_.transitions.Add({{"kind", v1::TransitionKind_Name(kind)}}).Increment();
    if (kind == v1::TRANSITION_KIND_ESCALATED) metrics_.escalations.Increment();
  }
  if (opts_.observer != nullptr && !events.empty()) opts_.observer->OnCommitted(events);
}

void Alerter::Impl::Sample(const std::vector<stream::Processor*>& tasks) {
  uint64_t series = 0, open = 0;
  std::map<std::pair<std::string, std::string>, int> by;
  for (stream::Processor* p : tasks) {
    auto* a = dynamic_cast<AlerterProcessor*>(p);
    if (a == nullptr) continue;
    series += a->series();
    open += a->book().open().size();
    for (const auto& [id, s] : a->book().open()) {
      by[{s.signal.current_level_name(), v1::SignalKind_Name(s.signal.kind())}]++;
    }
  }
  metrics_.series.Set(static_cast<double>(series));
  for (auto& [k, g] : open_by_) g->Set(0);
  for (const auto& [k, n] : by) {
    auto& g = open_by_[k];
    if (g == nullptr) g = &metrics_.open.Add({{"level", k.first}, {"kind", k.second}});
    g->Set(n);
  }
  absl::MutexLock l(&mu_);
  series_ = series;
  open_signals_ = open;
}

absl::Status Alerter::Impl::Start() {
  if (started_) return absl::FailedPreconditionError("alerter already started");
  const Config& cfg = *opts_.config;
  RETURN_IF_ERROR(Annotate(io_->EnsureTopics(DeploymentTopics(names_, cfg.kafka.partitions,
                                                              cfg.kafka.replication_factor)),
                           "creating topics"));
  ASSIGN_OR_RETURN(const int partitions, io_->PartitionCount(names_.commands));
  partitions_ = partitions;
  RETURN_IF_ERROR(runtime_->Setup());
  started_ = true;
  thread_ = std::thread([this] {
    absl::Status s = runtime_->Run(stop_);
    if (!s.ok()) spdlog::error("[alerter] stopped: {}", s.ToString());
    absl::MutexLock l(&mu_);
    if (status_.ok()) status_ = s;
  });
  return absl::OkStatus();
}

void Alerter::Impl::Stop() {
  if (!started_) return;
  started_ = false;
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

Alerter::Stats Alerter::Impl::stats() const {
  Stats st;
  const std::vector<uint64_t> n = runtime_->counters();
  const stream::RuntimeStats s = runtime_->stats();
  st.aggregates = n[kAggregates];
  st.duplicates = n[kDuplicates];
  st.commands = n[kCommands];
  st.rejected_commands = n[kRejectedCommands];
  st.events = n[kEvents];
  st.transactions = s.transactions;
  st.restores = s.tasks_restored;
  st.rewinds = s.rewinds;
  st.deadlettered = s.deadlettered;
  st.corrupt_state_entries = s.corrupt_local_entries + s.corrupt_changelog_entries;
  absl::MutexLock l(&mu_);
  st.series = series_;
  st.open_signals = open_signals_;
  return st;
}

Alerter::Alerter(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Alerter::~Alerter() { Stop(); }

absl::StatusOr<std::unique_ptr<Alerter>> Alerter::Create(AlerterOptions options) {
  if (options.config == nullptr) return absl::InvalidArgumentError("alerter: no config");
  if (options.clock == nullptr) options.clock = Clock::Real();
  auto impl = std::make_unique<Impl>(std::move(options));
  RETURN_IF_ERROR(impl->Init());
  return std::unique_ptr<Alerter>(new Alerter(std::move(impl)));
}
absl::Status Alerter::Start() { return impl_->Start(); }
void Alerter::Stop() {
  if (impl_) impl_->Stop();
}
absl::Status Alerter::status() const { return impl_->status(); }
Alerter::Stats Alerter::stats() const { return impl_->stats(); }
bool Alerter::ready() const { return impl_->ready(); }

}  // namespace cybersyn::alerter
