#include "stream/runtime.h"

#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <thread>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/status.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "spdlog/spdlog.h"
#include "stream/lanes.h"
#include "stream/restorer.h"
#include "stream/task_store.h"

namespace cybersyn::stream {
namespace {

constexpr absl::Duration kTxnTimeout = absl::Seconds(60);

struct Metrics {
  Metrics(prometheus::Registry& r, const std::string& p)
      : deadletter(prometheus::BuildCounter()
                       .Name(p + "_deadletter_total")
                       .Help("Messages written to the dead-letter topic, by reason")
                       .Register(r)),
        lag(prometheus::BuildGauge()
                .Name(p + "_consumer_lag_messages")
                .Help("Messages behind the log end, per partition of the main input")
                .Register(r)),
        state_bytes(prometheus::BuildGauge()
                        .Name(p + "_state_bytes")
                        .Help("Approximate bytes of local state (RocksDB)")
                        .Register(r)
                        .Add({})),
        store_memory(prometheus::BuildGauge()
                         .Name(p + "_rocksdb_memory_bytes")
                         .Help("RocksDB memory in use (capped by the role's memory_limit)")
                         .Register(r)
                         .Add({})),
        restore_seconds(prometheus::BuildGauge()
                            .Name(p + "_restore_duration_seconds")
                            .Help("Duration of the last state restore (all newly assigned "
                                  "partitions)")
                            .Register(r)
                            .Add({})),
        restore_entries(prometheus::BuildCounter()
                            .Name(p + "_restore_entries_total")
                            .Help("Changelog entries replayed into local state")
                            .Register(r)
                            .Add({})),
        restoring(prometheus::BuildGauge()
                      .Name(p + "_restoring_partitions")
                      .Help("Partitions whose state is being restored")
                      .Register(r)
                      .Add({})),
        from_beginning(prometheus::BuildCounter()
                           .Name(p + "_restore_from_beginning_total")
                           .Help("Task restores that replayed the whole changelog, by reason "
                                 "(no_checkpoint, stale_checkpoint, log_reset, corrupt_entries)")
                           .Register(r)),
        corrupt(prometheus::BuildCounter()
                    .Name(p + "_state_corrupt_entries_total")
                    .Help("State entries that could not be loaded, by where they were corrupt "
                          "(local: rebuilt from the changelog; changelog: dead-lettered)")
                    .Register(r)),
        store_rebuilds(prometheus::BuildCounter()
                           .Name(p + "_store_rebuilds_total")
                           .Help("Local stores found corrupt at open and rebuilt from the "
                                 "changelogs")
                           .Register(r)
                           .Add({})),
        transactions(prometheus::BuildCounter()
                         .Name(p + "_transactions_total")
                         .Help("Transactions committed")
                         .Register(r)
                         .Add({})),
        rewinds(prometheus::BuildCounter()
                    .Name(p + "_rewinds_total")
                    .Help("Failed transactions aborted and retried from the committed state")
                    .Register(r)
                    .Add({})),
        commit_seconds(prometheus::BuildHistogram()
                           .Name(p + "_txn_commit_seconds")
                           .Help("Time to commit one transaction (or flush + commit offsets)")
                           .Register(r)
                           .Add({}, prometheus::Histogram::BucketBoundaries{
                                        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
                                        2.5, 5, 10})) {}

  prometheus::Family<prometheus::Counter>& deadletter;
  prometheus::Family<prometheus::Gauge>& lag;
  prometheus::Gauge& state_bytes;
  prometheus::Gauge& store_memory;
  prometheus::Gauge& restore_seconds;
  prometheus::Counter& restore_entries;
  prometheus::Gauge& restoring;
  prometheus::Family<prometheus::Counter>& from_beginning;
  prometheus::Family<prometheus::Counter>& corrupt;
  prometheus::Counter& store_rebuilds;
  prometheus::Counter& transactions;
  prometheus::Counter& rewinds;
  prometheus::Histogram& commit_seconds;
};

struct Input {
  std::string topic;
  int64_t next_offset = -1;  // next offset to read (-1: unknown)
  bool consumed = false;     // since the last commit
  bool assigned = false;
};

struct Task {
  int sub = 0;
  const Subtopology* spec = nullptr;
  int32_t partition = 0;
  std::string prefix;         // task_store.h
  std::vector<Input> inputs;  // as spec->inputs
  std::unique_ptr<Processor> processor;
  std::vector<StateChange> taken;         // TakeChanges' result, filled on the task's lane
  std::vector<StateChange> extra;         // the runtime's own: tombstones of corrupt entries
  std::vector<ConsumedMessage> gathered;  // loop thread: messages for the next job
  // Being restored in the background: no processor yet, its messages are skipped (and read
  // again from the committed offset once it is restored).
  bool restoring = false;
  uint64_t restore_job = 0;  // the background restore that loads it
  struct Corrupt {
    std::string key, value;
    absl::Status status;
  };
  std::vector<Corrupt> corrupt;  // changelog entries that did not load, for FinishLoad
};

// What a restore counted, merged into the loop's stats by the loop thread.
struct RestoreCounts {
  uint64_t entries = 0;
  uint64_t tasks = 0;
  uint64_t corrupt_local = 0;
  double seconds = 0;
};

struct Job {
  enum Kind { kMessages, kPunctuate, kTakeChanges };
  Kind kind;
  Task* task;
  std::vector<ConsumedMessage> messages;
  PunctuateInfo info;
};

// One transaction's content: built by the loop, committed by the committer thread.
struct CommitUnit {
  struct Changes {
    const std::string* changelog;
    int32_t partition;
    std::string prefix;
    std::vector<StateChange> changes;
  };
  std::vector<Output> outputs;
  std::vector<Changes> changes;
  std::vector<TopicPartitionOffset> offsets;
  uint64_t seq = 0;              // commits before this one
  std::vector<uint64_t> counts;  // the loop's totals after this unit's last message
  uint64_t deadlettered = 0;
  bool empty() const { return outputs.empty() && changes.empty() && offsets.empty(); }
};

}  // namespace

// What a lane (or the loop thread) produces besides state: outputs and totals, merged into the
// loop's pending unit at each drain.
class RuntimeLane {
 public:
  RuntimeLane(Metrics* metrics, size_t counters) : counts(counters, 0), metrics_(metrics) {
    emitter_.outputs_ = &outputs;
    emitter_.counts_ = counts.data();
    emitter_.lane_ = this;
  }
  Emitter& emitter() { return emitter_; }
  Emitter& emitter(int64_t now_ms) {
    emitter_.now_ms_ = now_ms;
    return emitter_;
  }

  void DeadLetter(const ConsumedMessage& m, absl::string_view reason, std::string value,
                  KafkaHeaders extra) {
    KafkaHeaders h = {{"reason", std::string(reason)},
                      {"source_topic", std::string(m.topic())},
                      {"source_partition", absl::StrCat(m.partition())},
                      {"source_offset", absl::StrCat(m.offset())}};
    h.insert(h.end(), std::make_move_iterator(extra.begin()), std::make_move_iterator(extra.end()));
    outputs.push_back({kDeadLetterTopic, -1, std::string(m.key()), std::move(value), std::move(h)});
    Count(reason);
  }
  void Count(absl::string_view reason) {
    prometheus::Counter*& c = reason_counters_[reason];
    if (c == nullptr) c = &metrics_->deadletter.Add({{"reason", std::string(reason)}});
    c->Increment();
    ++deadlettered;
  }

  std::vector<Output> outputs;
  std::vector<uint64_t> counts;
  uint64_t deadlettered = 0;

 private:
  Metrics* metrics_;
  Emitter emitter_;
  absl::flat_hash_map<std::string, prometheus::Counter*> reason_counters_;
};

void Emitter::DeadLetter(const ConsumedMessage& m, absl::string_view reason, std::string value,
                         KafkaHeaders extra) {
  lane_->DeadLetter(m, reason, std::move(value), std::move(extra));
}

class Runtime::Impl : public RebalanceListener {
 public:
  Impl(RuntimeOptions options, std::shared_ptr<prometheus::Registry> registry)
      : options_(std::move(options)),
        topo_(options_.topology),
        registry_(std::move(registry)),
        metrics_(*registry_, absl::StrCat("cybersyn_", topo_.role)),
        log_(absl::StrCat("[", topo_.role, "]")),
        local_counts_(topo_.counters.size(), 0),
        committed_counts_(topo_.counters.size(), 0) {
    for (const Subtopology& s : topo_.subtopologies) changelogs_.insert(s.changelog);
    const int lanes = std::max(0, options_.processing_threads);
    for (int i = 0; i <= lanes; ++i) {
      sinks_.push_back(std::make_unique<RuntimeLane>(&metrics_, topo_.counters.size()));
    }
    if (lanes > 0) {
      lanes_ = std::make_unique<Lanes<Job>>(lanes, /*max_queued=*/256,
                                            [this](int lane, Job& j) { RunJob(j, *sinks_[lane]); });
    }
  }
  ~Impl() override {
    if (committer_.joinable()) committer_.join();
    WaitRestores();
  }

  absl::Status Setup();
  absl::Status Run(const std::atomic<bool>& stop);
  absl::StatusOr<size_t> RunOnce();
  absl::Status Shutdown(absl::Status result);

  bool ready() const { return ready_.load(); }
  std::vector<uint64_t> counters() const {
    absl::MutexLock l(&stats_mu_);
    return committed_counts_;
  }
  RuntimeStats stats() const {
    absl::MutexLock l(&stats_mu_);
    return stats_;
  }
  Processor* FindProcessor(absl::string_view sub, int32_t partition) {
    for (auto& [k, t] : tasks_) {
      if (t->spec->name == sub && t->partition == partition) return t->processor.get();
    }
    return nullptr;
  }
  KvStore* store() { return store_.get(); }

  void OnAssigned(std::vector<TopicPartitionOffset>& partitions) override;
  void OnRevoked(const std::vector<TopicPartitionOffset>& partitions, bool lost) override;

 private:
  absl::Status OpenStore();
  absl::Status CreateProducer();
  absl::Status CheckCoPartitioned(const std::vector<std::string>& paired);
  // Consumes and dispatches until the batch closes; returns the messages consumed.
  size_t ConsumeBatch(const std::atomic<bool>* stop, bool wait);
  void Route(std::vector<ConsumedMessage>& msgs);
  // Punctuates, then hands the batch to the committer (sync: commits it on this thread).
  absl::Status EndBatch(bool sync);
  void RunJob(Job& job, RuntimeLane& lane);
  void Dispatch(Job job);
  // Waits for the lanes, then moves their outputs into pending_ and totals into local_.
  void Drain();
  bool CaughtUp(const Task& t, int64_t* lag);
  CommitUnit TakeUnit();
  absl::StatusOr<CommitUnit> NextUnit();
  absl::Status Commit(CommitUnit& u);
  absl::Status WriteLocal(CommitUnit& u);
  absl::Status FinishCommit();
  absl::Status HandOff();
  absl::Status CommitPending();
  absl::Status AbortPending(const absl::Status& cause);
  // Inside a rebalance callback: commits what is pending; a failure aborts it and has EndBatch
  // rewind (the run goes on).
  void CommitPendingInCallback();
  absl::Status Rewind();
  // Committed offsets of `tasks`' inputs, waiting while a transaction holds them pending.
  absl::StatusOr<std::vector<TopicPartitionOffset>> StableCommitted(
      const std::vector<Task*>& tasks);
  // Replays the tasks' changelogs into the store and has fresh processors Load their entries
  // (thread-safe with the loop: the background restore runs it); FinishLoad, on the loop
  // thread, completes each task.
  absl::Status RestoreTasks(const std::vector<Task*>& tasks, ChangelogReader& reader,
                            RestoreCounts* counts);
  // RestoreTasks, FinishLoad and the stats, on the loop thread.
  absl::Status RestoreNow(const std::vector<Task*>& tasks);
  // Where a task's restore starts; wipes what is not to be trusted.
  absl::StatusOr<int64_t> RestoreStart(Task& t);
  // A fresh processor Loads the task's entries; see the header for corrupt ones.
  absl::Status LoadTask(Task& t, bool rebuilt, ChangelogReader& reader, RestoreCounts* counts);
  // Loop thread: dead-letters the task's corrupt changelog entries, then Init.
  void FinishLoad(Task& t);
  // Background restore (RuntimeOptions::restore_in_background): one job runs at a time; a job
  // is applied by the loop outside any poll (ApplyRestores), because a poll may hold messages
  // fetched before the seek back that applying does.
  // `committed`: the tasks' committed offsets, read by the caller on the loop thread.
  void StartRestore(std::vector<Task*> tasks, std::vector<TopicPartitionOffset> committed);
  void WaitRestores();  // joins the running job (its tasks are then safe to close)
  // Applies the finished jobs (all of them, after waiting, when `wait`): positions, Init,
  // readiness; a job's task revoked meanwhile is skipped.
  void ApplyRestores(bool wait);
  void AssignedDone(const std::vector<Task*>& tasks, size_t partitions);
  void CloseTask(Task& t, bool revoked);
  Task* FindInput(absl::string_view topic, int32_t partition, int* input);
  void Sample();
  void Publish();

  RuntimeOptions options_;
  const Topology& topo_;
  std::shared_ptr<prometheus::Registry> registry_;
  Metrics metrics_;
  const std::string log_;
  absl::flat_hash_set<std::string> changelogs_;

  std::unique_ptr<KvStore> store_;
  std::unique_ptr<OutputProducer> producer_;
  std::unique_ptr<InputConsumer> consumer_;
  std::unique_ptr<ChangelogReader> reader_;
  struct RestoreJob {
    uint64_t id = 0;
    std::vector<Task*> tasks;  // for the job's thread only (the loop finds them by key)
    std::vector<std::pair<int, int32_t>> keys;
    std::vector<TopicPartitionOffset> committed;
    RestoreCounts counts;
    absl::Status status;
    std::atomic<bool> done{false};
    std::thread thread;
  };
  std::unique_ptr<ChangelogReader> bg_reader_;             // the background restore's
  std::vector<std::unique_ptr<RestoreJob>> restore_jobs_;  // the last one may be running
  uint64_t restore_jobs_started_ = 0;

  std::map<std::pair<int, int32_t>, std::unique_ptr<Task>> tasks_;  // (sub-topology, partition)
  std::vector<Task*> gathered_;  // tasks with messages gathered for a job

  bool txn_open_ = false;  // the committer's (read by the loop only after FinishCommit)
  bool pending_work_ = false;
  std::vector<Output> pending_;  // outputs for the next transaction
  std::thread committer_;
  absl::Status committer_status_;
  std::atomic<bool> committer_idle_{true};
  // A transaction failed: in-memory state holds changes it carried. Nothing may commit until
  // Rewind rebuilt the state, or offsets would commit without that state.
  bool dirty_ = false;
  // Partitions lost with work pending, or a commit inside a rebalance callback failed: EndBatch
  // rewinds every task.
  bool needs_rewind_ = false;
  absl::Status fatal_;    // set inside rebalance callbacks, surfaced by the loop
  absl::Status failure_;  // what ended the loop (a persistent commit failure)
  bool stopping_ = false;
  bool set_up_ = false;
  std::atomic<bool> ready_{false};
  int failed_in_a_row_ = 0;
  absl::Time last_sample_ = absl::InfinitePast();
  // Highest delivered offset per changelog partition in the current transaction (committer).
  std::map<std::pair<std::string, int32_t>, int64_t> delivered_;
  absl::Status delivery_error_;

  std::vector<uint64_t> local_counts_;  // loop thread: totals so far
  uint64_t local_deadlettered_ = 0;
  mutable absl::Mutex stats_mu_;
  std::vector<uint64_t> committed_counts_ ABSL_GUARDED_BY(stats_mu_);
  RuntimeStats stats_ ABSL_GUARDED_BY(stats_mu_);
  RuntimeStats loop_stats_;  // the loop's own totals (rewinds, restores), published by Publish

  // One per lane, the last one for the loop thread.
  std::vector<std::unique_ptr<RuntimeLane>> sinks_;
  // Declared last: destroyed (joined) first, while everything its jobs use still exists.
  std::unique_ptr<Lanes<Job>> lanes_;
};

// --- setup ----------------------------------------------------------------------------------

absl::Status Runtime::Impl::OpenStore() {
  auto store = options_.open_store();
  if (!store.ok() && store.status().code() == absl::StatusCode::kDataLoss &&
      options_.destroy_store) {
    spdlog::warn("{} local state store is corrupt ({}); rebuilding it from the changelogs", log_,
                 std::string(store.status().message()));
    metrics_.store_rebuilds.Increment();
    ++loop_stats_.store_rebuilds;
    RETURN_IF_ERROR(options_.destroy_store());
    store = options_.open_store();
  }
  if (!store.ok()) return Annotate(store.status(), "opening local state");
  store_ = std::move(*store);
  for (const std::string& p : topo_.obsolete_store_prefixes) {
    ASSIGN_OR_RETURN(uint64_t n, DeletePrefix(*store_, p));
    if (n > 0) {
      spdlog::info(
          "{} deleted {} local entries of an older store layout ({}*); they are "
          "restored from the changelog",
          log_, n, p);
    }
  }
  return absl::OkStatus();
}

absl::Status Runtime::Impl::CreateProducer() {
  if (producer_ != nullptr) {
    producer_->Purge();  // a failed producer: its transaction is being aborted
    producer_.reset();
  }
  ProducerSettings ps;
  ps.overrides = options_.producer_overrides;
  if (options_.exactly_once) ps.transactional_id = options_.transactional_id;
  ps.on_delivery = [this](const DeliveryReport& r) {
    if (!r.status.ok()) {
      if (delivery_error_.ok()) delivery_error_ = r.status;
      return;
    }
    if (changelogs_.contains(r.topic)) {
      int64_t& d = delivered_[{r.topic, r.partition}];
      d = std::max(d, r.offset);
    }
  };
  ASSIGN_OR_RETURN(producer_, options_.io->CreateProducer(ps));
  if (options_.exactly_once) RETURN_IF_ERROR(producer_->InitTransactions(kTxnTimeout));
  return absl::OkStatus();
}

absl::Status Runtime::Impl::CheckCoPartitioned(const std::vector<std::string>& paired) {
  // A paired topic with fewer partitions would leave tasks without an input; with more, its
  // extra partitions would be read by nobody.
  auto lead = options_.io->PartitionCount(LeadTopic(topo_));
  if (!lead.ok()) return absl::OkStatus();  // (created later: by the role, with equal counts)
  for (const std::string& t : paired) {
    auto n = options_.io->PartitionCount(t);
    if (n.ok() && *n != *lead) {
      return absl::FailedPreconditionError(absl::StrCat(
          "topic ", t, " has ", *n, " partitions but ", LeadTopic(topo_), " has ", *lead,
          ": co-partitioned inputs need equal partition counts (add partitions to match)"));
    }
  }
  return absl::OkStatus();
}

absl::Status Runtime::Impl::Setup() {
  if (set_up_) return absl::OkStatus();
  RETURN_IF_ERROR(OpenStore());
  RETURN_IF_ERROR(CreateProducer());
  ConsumerSettings cs;
  cs.group_id = options_.group_id;
  cs.group_instance_id = options_.group_instance_id;
  cs.overrides = options_.consumer_overrides;
  cs.listener = this;
  cs.paired_topics = PairedTopics(topo_);
  RETURN_IF_ERROR(CheckCoPartitioned(cs.paired_topics));
  ASSIGN_OR_RETURN(consumer_, options_.io->CreateConsumer(cs));
  ASSIGN_OR_RETURN(reader_, options_.io->CreateChangelogReader());
  if (options_.restore_in_background) {
    ASSIGN_OR_RETURN(bg_reader_, options_.io->CreateChangelogReader());
  }
  RETURN_IF_ERROR(consumer_->Subscribe({LeadTopic(topo_)}));
  set_up_ = true;
  return absl::OkStatus();
}

// --- the loop -------------------------------------------------------------------------------

Task* Runtime::Impl::FindInput(absl::string_view topic, int32_t partition, int* input) {
  for (size_t s = 0; s < topo_.subtopologies.size(); ++s) {
    const auto& ins = topo_.subtopologies[s].inputs;
    for (size_t i = 0; i < ins.size(); ++i) {
      if (ins[i] != topic) continue;
      auto it = tasks_.find({static_cast<int>(s), partition});
      if (it == tasks_.end()) return nullptr;
      *input = static_cast<int>(i);
      return it->second.get();
    }
  }
  return nullptr;
}

void Runtime::Impl::Route(std::vector<ConsumedMessage>& msgs) {
  // Consecutive messages of a task go to its lane as one job.
  std::string last_topic;  // (a copy: the messages move on)
  int32_t last_partition = -1;
  Task* t = nullptr;
  int input = 0;
  for (ConsumedMessage& m : msgs) {
    if (m.partition() != last_partition || m.topic() != last_topic) {
      last_topic = std::string(m.topic());
      last_partition = m.partition();
      t = FindInput(last_topic, last_partition, &input);
    }
    // Not ours (revoked inside this poll): neither processed nor committed. Restoring: read
    // again from the committed offset once restored.
    if (t == nullptr || t->restoring) continue;
    Input& in = t->inputs[input];
    const int64_t offset = m.offset();
    if (in.next_offset >= 0 && offset < in.next_offset) continue;  // (before a seek back)
    if (t->gathered.empty()) gathered_.push_back(t);
    t->gathered.push_back(std::move(m));
    in.next_offset = offset + 1;
    in.consumed = true;
  }
  for (Task* g : gathered_) {
    Job job{Job::kMessages, g, {}, {}};
    job.messages.swap(g->gathered);
    Dispatch(std::move(job));
  }
  gathered_.clear();
}

size_t Runtime::Impl::ConsumeBatch(const std::atomic<bool>* stop, bool wait) {
  const absl::Time batch_start = absl::Now();
  const absl::Time batch_end = batch_start + options_.max_batch_time;
  size_t n = 0;
  while (n < options_.max_batch_messages && (stop == nullptr || !stop->load())) {
    const absl::Duration left = batch_end - absl::Now();
    if (wait && left <= absl::ZeroDuration()) break;
    // With input in hand, wait only briefly for more: quiet input may close the batch early.
    absl::Duration timeout = n > 0 ? std::min(left, options_.commit_when_quiet_for) : left;
    if (!wait) timeout = absl::ZeroDuration();
    // Small chunks, so that processing time counts against max_batch_time too.
    auto msgs = consumer_->ConsumeBatch(std::min<size_t>(500, options_.max_batch_messages - n),
                                        std::max(timeout, absl::ZeroDuration()));
    if (!fatal_.ok()) break;
    if (!msgs.ok()) {
      fatal_ = msgs.status();
      break;
    }
    if (msgs->empty()) {
      if (!wait) break;
      if (n > 0 && committer_idle_.load() && absl::Now() - batch_start >= options_.min_batch_time) {
        break;
      }
      continue;
    }
    n += msgs->size();
    Route(*msgs);
  }
  return n;
}

void Runtime::Impl::RunJob(Job& j, RuntimeLane& lane) {
  Task& t = *j.task;
  Emitter& out =
      lane.emitter(j.kind == Job::kPunctuate ? j.info.now_ms : options_.clock->NowMillis());
  switch (j.kind) {
    case Job::kMessages:
      for (const ConsumedMessage& m : j.messages) {
        if (m.value().size() > options_.max_message_bytes) {
          out.DeadLetter(m, "too_large", "", {{"size", absl::StrCat(m.value().size())}});
          continue;
        }
        t.processor->Process(m, out);
      }
      break;
    case Job::kPunctuate:
      t.processor->Punctuate(j.info, out);
      break;
    case Job::kTakeChanges:
      t.processor->TakeChanges(&t.taken);
      break;
  }
}

void Runtime::Impl::Dispatch(Job job) {
  if (lanes_) {
    const int lane = job.task->partition % lanes_->size();
    lanes_->Push(lane, std::move(job));
  } else {
    RunJob(job, *sinks_.back());
  }
}

void Runtime::Impl::Drain() {
  if (lanes_) lanes_->Drain();
  for (auto& s : sinks_) {
    if (!s->outputs.empty()) {
      pending_work_ = true;
      if (pending_.empty()) {
        pending_.swap(s->outputs);
      } else {
        for (Output& o : s->outputs) pending_.push_back(std::move(o));
        s->outputs.clear();
      }
    }
    for (size_t i = 0; i < s->counts.size(); ++i) {
      local_counts_[i] += s->counts[i];
      s->counts[i] = 0;
    }
    local_deadlettered_ += s->deadlettered;
    s->deadlettered = 0;
  }
}

bool Runtime::Impl::CaughtUp(const Task& t, int64_t* lag) {
  bool caught_up = true;
  *lag = 0;
  for (const Input& in : t.inputs) {
    const auto [lo, hi] = consumer_->CachedWatermarks(in.topic, t.partition);
    if (hi < 0) {
      caught_up = false;
      continue;
    }
    const int64_t pos = in.next_offset >= 0 ? in.next_offset : lo;
    if (pos < 0) {
      caught_up = false;
      continue;
    }
    *lag += std::max<int64_t>(0, hi - pos);
    caught_up &= pos >= hi;
  }
  return caught_up;
}

absl::Status Runtime::Impl::EndBatch(bool sync) {
  Drain();
  ApplyRestores(/*wait=*/false);
  if (!fatal_.ok()) return fatal_;
  const int64_t now = options_.clock->NowMillis();
  for (auto& [k, t] : tasks_) {
    if (t->restoring) continue;
    int64_t lag = 0;
    const bool caught_up = CaughtUp(*t, &lag);
    Dispatch(Job{Job::kPunctuate, t.get(), {}, {now, caught_up}});
  }
  Drain();
  absl::Status s = needs_rewind_ ? absl::AbortedError(
                                       "a commit inside a rebalance failed, or partitions were "
                                       "lost with work pending")
                                 : absl::OkStatus();
  const uint64_t committed_before = loop_stats_.transactions;
  if (s.ok()) {
    s = HandOff();
    if (s.ok() && sync) s = FinishCommit();
  }
  if (!s.ok()) {
    absl::Status failed = needs_rewind_ ? s : AbortPending(s);
    // Retry in place a few times in a row; a persistent failure ends Run (the role's
    // supervisor restarts it, which also replaces the producer).
    if (++failed_in_a_row_ <= options_.max_failed_commits) {
      if (absl::Status r = Rewind(); r.ok())
        return absl::OkStatus();
      else
        spdlog::error("{} cannot rewind: {}", log_, r.ToString());
    }
    failure_ = failed;
    return failed;
  }
  if (loop_stats_.transactions != committed_before) failed_in_a_row_ = 0;
  const absl::Time wall = absl::Now();
  if (sync || wall - last_sample_ >= absl::Seconds(1)) {
    Sample();
    last_sample_ = wall;
  }
  return absl::OkStatus();
}

absl::Status Runtime::Impl::Run(const std::atomic<bool>& stop) {
  RETURN_IF_ERROR(Setup());
  spdlog::info("{} consuming ({})", log_, options_.exactly_once ? "exactly-once" : "at-least-once");
  absl::Status result;
  while (!stop.load()) {
    ConsumeBatch(&stop, /*wait=*/true);
    if (!fatal_.ok()) break;
    result = EndBatch(/*sync=*/false);
    if (!result.ok()) break;
  }
  return Shutdown(result);
}

absl::StatusOr<size_t> Runtime::Impl::RunOnce() {
  RETURN_IF_ERROR(Setup());
  const size_t n = ConsumeBatch(nullptr, /*wait=*/false);
  if (!fatal_.ok()) return fatal_;
  RETURN_IF_ERROR(EndBatch(/*sync=*/true));
  return n;
}

absl::Status Runtime::Impl::Shutdown(absl::Status result) {
  if (!set_up_ || stopping_) return result;
  if (result.ok()) result = failure_;
  Drain();
  ApplyRestores(/*wait=*/true);
  // The commit in flight, if any, completes (or fails) before the way out.
  if (absl::Status s = FinishCommit(); !s.ok()) {
    s = AbortPending(s);
    if (result.ok()) result = s;
  }
  if (result.ok() && !fatal_.ok()) {
    result = fatal_;
    if (txn_open_) (void)producer_->AbortTransaction(kTxnTimeout);
    txn_open_ = false;
  }
  stopping_ = true;
  if (!result.ok()) dirty_ = true;  // nothing more may commit on the way out
  if (consumer_) (void)consumer_->Close();
  if (result.ok() && pending_work_) result = CommitPending();
  for (auto& [k, t] : tasks_) CloseTask(*t, /*revoked=*/false);
  tasks_.clear();
  Publish();
  if (result.ok()) {
    spdlog::info("{} stopped: ok", log_);
  } else {
    // The run ends here: the role's supervisor (or nobody, in a bench) restarts it.
    spdlog::error("{} run ended: {}", log_, result.ToString());
  }
  return result;
}

// --- commits --------------------------------------------------------------------------------

CommitUnit Runtime::Impl::TakeUnit() {
  for (auto& [k, t] : tasks_) {
    if (!t->restoring) Dispatch(Job{Job::kTakeChanges, t.get(), {}, {}});
  }
  Drain();
  CommitUnit u;
  u.outputs = std::move(pending_);
  pending_.clear();
  for (auto& [k, t] : tasks_) {
    std::vector<StateChange> c = std::move(t->taken);
    t->taken.clear();
    for (StateChange& e : t->extra) c.push_back(std::move(e));
    t->extra.clear();
    if (!c.empty())
      u.changes.push_back({&t->spec->changelog, t->partition, t->prefix, std::move(c)});
    for (Input& in : t->inputs) {
      if (in.consumed && in.next_offset >= 0) {
        u.offsets.push_back({in.topic, t->partition, in.next_offset});
      }
      in.consumed = false;
    }
  }
  pending_work_ = false;
  u.seq = loop_stats_.transactions;
  u.counts = local_counts_;
  u.deadlettered = local_deadlettered_;
  return u;
}

absl::Status Runtime::Impl::Commit(CommitUnit& u) {
  const absl::Time start = absl::Now();
  if (options_.exactly_once && !txn_open_) {
    RETURN_IF_ERROR(producer_->BeginTransaction());
    txn_open_ = true;
  }
  for (const Output& o : u.outputs) {
    const std::string& topic =
        o.topic == kDeadLetterTopic ? topo_.deadletter : topo_.outputs[o.topic];
    RETURN_IF_ERROR(
        producer_->Produce(topic, o.partition, o.key, o.value, o.headers, absl::Seconds(60)));
  }
  if (!options_.on_committed) u.outputs = {};  // the producer has its copies
  for (const CommitUnit::Changes& c : u.changes) {
    for (const StateChange& sc : c.changes) {
      RETURN_IF_ERROR(
          producer_->Produce(*c.changelog, c.partition, sc.key, sc.value, {}, absl::Seconds(60)));
    }
  }
  if (options_.exactly_once) {
    if (options_.commit_hook_for_test) RETURN_IF_ERROR(options_.commit_hook_for_test(u.seq));
    if (!u.offsets.empty()) {
      RETURN_IF_ERROR(producer_->SendOffsetsToTransaction(u.offsets, *consumer_, kTxnTimeout));
    }
    RETURN_IF_ERROR(producer_->CommitTransaction(kTxnTimeout));
    txn_open_ = false;
    producer_->Poll();
  } else {
    RETURN_IF_ERROR(producer_->Flush(kTxnTimeout));
    if (!delivery_error_.ok()) return delivery_error_;
    if (!u.offsets.empty()) RETURN_IF_ERROR(consumer_->CommitOffsets(u.offsets));
  }
  metrics_.commit_seconds.Observe(absl::ToDoubleSeconds(absl::Now() - start));
  metrics_.transactions.Increment();
  {
    // Committed: what it covers is now visible downstream (the local store below is a cache).
    absl::MutexLock l(&stats_mu_);
    committed_counts_ = u.counts;
    stats_.deadlettered = u.deadlettered;
    stats_.transactions = u.seq + 1;
  }
  if (options_.on_committed) {
    options_.on_committed(u.outputs);
    u.outputs = {};
  }
  return WriteLocal(u);
}

absl::Status Runtime::Impl::WriteLocal(CommitUnit& u) {
  // Now Kafka is authoritative; bring the local cache up to it.
  WriteBatch wb;
  std::vector<StateChange*> sorted;
  const int64_t now = options_.clock->NowMillis();
  for (CommitUnit::Changes& c : u.changes) {
    // In key order: RocksDB's memtable starts each insert from where the previous one went,
    // which saves comparisons of long keys with common prefixes. Stable: a key's later change
    // still comes last.
    sorted.clear();
    for (StateChange& sc : c.changes) sorted.push_back(&sc);
    std::stable_sort(sorted.begin(), sorted.end(),
                     [](const StateChange* a, const StateChange* b) { return a->key < b->key; });
    const std::string state = StatePrefix(c.prefix);
    for (StateChange* sc : sorted) {
      std::string key = absl::StrCat(state, sc->key);
      if (sc->value.empty()) {
        wb.Delete(key);
      } else {
        wb.PutOwned(std::move(key), std::move(sc->value));  // produced already
      }
    }
    auto d = delivered_.find({*c.changelog, c.partition});
    if (d != delivered_.end()) {
      wb.Put(CheckpointKey(c.prefix), EncodeCheckpoint({d->second + 1, now}));
    }
  }
  delivered_.clear();
  if (!wb.empty()) RETURN_IF_ERROR(Annotate(store_->Write(wb), "writing local state"));
  return absl::OkStatus();
}

absl::Status Runtime::Impl::FinishCommit() {
  if (!committer_.joinable()) return absl::OkStatus();
  committer_.join();
  if (!committer_status_.ok()) return committer_status_;
  ++loop_stats_.transactions;
  return absl::OkStatus();
}

absl::StatusOr<CommitUnit> Runtime::Impl::NextUnit() {
  if (dirty_) {
    return absl::FailedPreconditionError(
        "not committing: the state is ahead of an aborted transaction and was not rewound");
  }
  RETURN_IF_ERROR(FinishCommit());
  return TakeUnit();
}

absl::Status Runtime::Impl::HandOff() {
  ASSIGN_OR_RETURN(CommitUnit u, NextUnit());
  if (u.empty()) return absl::OkStatus();
  committer_idle_.store(false);
  committer_ = std::thread([this, u = std::move(u)]() mutable {
    committer_status_ = Commit(u);
    committer_idle_.store(true);
  });
  return absl::OkStatus();
}

absl::Status Runtime::Impl::CommitPending() {
  ASSIGN_OR_RETURN(CommitUnit u, NextUnit());
  if (u.empty()) return absl::OkStatus();
  RETURN_IF_ERROR(Commit(u));
  ++loop_stats_.transactions;
  return absl::OkStatus();
}

void Runtime::Impl::CommitPendingInCallback() {
  absl::Status s = CommitPending();
  if (s.ok()) return;
  // E.g. refused for the group generation the rebalance just ended (KIP-447): not a reason to
  // end the run. The batch goes on dirty (nothing commits) and EndBatch rewinds, as after any
  // failed commit.
  (void)AbortPending(s);
  needs_rewind_ = true;
}

absl::Status Runtime::Impl::AbortPending(const absl::Status& cause) {
  spdlog::error("{} transaction failed: {}", log_, cause.ToString());
  dirty_ = true;
  if (options_.exactly_once && txn_open_) {
    absl::Status s = producer_->AbortTransaction(kTxnTimeout);
    txn_open_ = false;
    if (!s.ok()) spdlog::error("{} abort: {}", log_, s.ToString());
  }
  // In-memory state ran ahead of Kafka: the caller rewinds, or returns the error.
  return cause;
}

absl::Status Runtime::Impl::Rewind() {
  if (!options_.exactly_once) {
    // Without transactions part of the batch's changelog may be visible already: replaying it
    // and the batch again would count twice. The restart path handles at-least-once.
    return absl::FailedPreconditionError("at-least-once mode does not rewind");
  }
  ApplyRestores(/*wait=*/true);
  // (A commit in flight when partitions were lost: done, or failed, before anything is rebuilt.)
  if (absl::Status s = FinishCommit(); !s.ok()) {
    spdlog::warn("{} commit in flight before the rewind: {}", log_, s.ToString());
  }
  if (txn_open_) (void)producer_->AbortTransaction(kTxnTimeout);
  txn_open_ = false;
  if (absl::Status f = producer_->FatalError(); !f.ok()) {
    // A new producer with the same transactional.id aborts the open transaction as it starts
    // (and a fenced one stays fenced: then this fails and Run ends).
    spdlog::warn("{} producer failed ({}); creating a new one", log_, f.ToString());
    RETURN_IF_ERROR(Annotate(CreateProducer(), "replacing the producer"));
    txn_open_ = false;
  }
  delivery_error_ = absl::OkStatus();
  delivered_.clear();
  pending_work_ = false;
  pending_.clear();
  std::vector<Task*> all;
  for (auto& [k, t] : tasks_) {
    CloseTask(*t, /*revoked=*/false);
    t->taken.clear();
    t->extra.clear();
    for (Input& in : t->inputs) in.consumed = false;
    all.push_back(t.get());
  }
  // The store holds the last commit (it is written only after one); the restore replays
  // whatever the changelog has beyond it.
  RETURN_IF_ERROR(Annotate(RestoreNow(all), "rewinding state"));
  ASSIGN_OR_RETURN(auto committed, StableCommitted(all));
  for (const TopicPartitionOffset& tp : committed) {
    int input = 0;
    Task* t = FindInput(tp.topic, tp.partition, &input);
    if (t == nullptr) continue;
    // No commit yet: back to where the group starts reading (the log start).
    const int64_t to = tp.offset >= 0 ? tp.offset : kOffsetBeginning;
    RETURN_IF_ERROR(consumer_->Seek({tp.topic, tp.partition, to}, absl::Seconds(10)));
    t->inputs[input].next_offset = tp.offset >= 0 ? tp.offset : -1;
  }
  {
    // The totals, too, are those of the last commit again: what is retried counts once.
    absl::MutexLock l(&stats_mu_);
    local_counts_ = committed_counts_;
    local_deadlettered_ = stats_.deadlettered;
  }
  dirty_ = false;
  needs_rewind_ = false;
  ++loop_stats_.rewinds;
  metrics_.rewinds.Increment();
  Publish();
  spdlog::warn("{} rewound {} task(s) to the last committed state; retrying", log_, all.size());
  // (Tasks assigned in the callback whose commit failed were restored here, not in the callback.)
  if (!ready_.exchange(true) && options_.on_ready) options_.on_ready(true);
  return absl::OkStatus();
}

// --- restore --------------------------------------------------------------------------------

absl::StatusOr<std::vector<TopicPartitionOffset>> Runtime::Impl::StableCommitted(
    const std::vector<Task*>& tasks) {
  std::vector<TopicPartitionOffset> list;
  for (Task* t : tasks) {
    for (const Input& in : t->inputs) list.push_back({in.topic, t->partition});
  }
  if (list.empty()) return list;
  // While a killed owner's transaction is still open (until the coordinator aborts it), the
  // offsets are unstable; a restore that went ahead would stop at that transaction
  // (read_committed) and miss what later owners committed after it, while consumption resumes
  // at their later offsets: records lost. So wait for it, within a bound.
  const absl::Time give_up = absl::Now() + options_.stable_offsets_wait;
  while (true) {
    auto c = consumer_->Committed(list, std::min(absl::Seconds(10), options_.stable_offsets_wait));
    if (c.ok()) return c;
    if (absl::Now() >= give_up) {
      return Annotate(c.status(),
                      "reading the committed offsets of assigned partitions (a previous "
                      "owner's transaction still pending?)");
    }
    spdlog::warn("{} committed offsets not readable yet ({}); waiting for a pending transaction",
                 log_, c.status().ToString());
    absl::SleepFor(absl::Milliseconds(200));
  }
}

absl::StatusOr<int64_t> Runtime::Impl::RestoreStart(Task& t) {
  const char* reason = nullptr;
  auto meta = store_->Get(CheckpointKey(t.prefix));
  std::optional<Checkpoint> c;
  if (meta.ok()) {
    c = DecodeCheckpoint(*meta);
  } else if (meta.status().code() != absl::StatusCode::kNotFound) {
    return meta.status();
  }
  if (!c) {
    reason = "no_checkpoint";
  } else if (c->written_at_ms > 0 && options_.clock->NowMillis() - c->written_at_ms >
                                         absl::ToInt64Milliseconds(options_.max_checkpoint_age)) {
    reason = "stale_checkpoint";
    spdlog::warn(
        "{} {}[{}]: local state is from {}, older than {}: tombstones written since may "
        "have been compacted away; restoring from the beginning",
        log_, t.spec->name, t.partition, absl::FormatTime(absl::FromUnixMillis(c->written_at_ms)),
        absl::FormatDuration(options_.max_checkpoint_age));
  }
  if (reason == nullptr) return c->next_offset;
  // No trustworthy record of what the local state reflects: wipe it and replay everything.
  RETURN_IF_ERROR(WipeTask(*store_, t.prefix));
  metrics_.from_beginning.Add({{"reason", reason}}).Increment();
  return kOffsetBeginning;
}

absl::Status Runtime::Impl::RestoreTasks(const std::vector<Task*>& tasks, ChangelogReader& reader,
                                         RestoreCounts* counts) {
  if (tasks.empty()) return absl::OkStatus();
  const absl::Time start = absl::Now();
  metrics_.restoring.Set(static_cast<double>(tasks.size()));
  std::vector<RestoreTarget> targets;
  for (Task* t : tasks) {
    ASSIGN_OR_RETURN(int64_t from, RestoreStart(*t));
    targets.push_back({t->spec->changelog, t->partition, t->prefix, from});
  }
  RestoreOptions ro;
  ro.clock = options_.clock;
  ro.progress = [this](uint64_t n) {
    spdlog::info("{} restore: {} changelog entries replayed", log_, n);
  };
  ro.on_replay = [this](const RestoreTarget& t) {
    spdlog::info("{} restoring {}[{}] from changelog offset {}", log_, t.changelog, t.partition,
                 t.from < 0 ? std::string("beginning") : absl::StrCat(t.from));
  };
  absl::Status s = RestoreChangelogs(reader, *store_, targets, ro);
  metrics_.restoring.Set(0);
  RETURN_IF_ERROR(s);
  for (const RestoreTarget& r : targets) {
    counts->entries += r.entries;
    if (r.reset) {
      spdlog::warn(
          "{} {}[{}]: the changelog no longer covers the local checkpoint (recreated "
          "or truncated); restored it from the beginning",
          log_, r.changelog, r.partition);
      metrics_.from_beginning.Add({{"reason", "log_reset"}}).Increment();
    }
  }
  for (Task* t : tasks) RETURN_IF_ERROR(LoadTask(*t, /*rebuilt=*/false, reader, counts));
  counts->tasks += tasks.size();
  counts->seconds = absl::ToDoubleSeconds(absl::Now() - start);
  metrics_.restore_seconds.Set(counts->seconds);
  metrics_.restore_entries.Increment(static_cast<double>(counts->entries));
  spdlog::info("{} restored {} task(s): {} changelog entries replayed in {:.3f}s", log_,
               tasks.size(), counts->entries, counts->seconds);
  return absl::OkStatus();
}

absl::Status Runtime::Impl::RestoreNow(const std::vector<Task*>& tasks) {
  RestoreCounts counts;
  absl::Status s = RestoreTasks(tasks, *reader_, &counts);
  loop_stats_.restored_entries += counts.entries;
  loop_stats_.corrupt_local_entries += counts.corrupt_local;
  RETURN_IF_ERROR(s);
  loop_stats_.tasks_restored += counts.tasks;
  if (!tasks.empty()) loop_stats_.last_restore_seconds = counts.seconds;
  for (Task* t : tasks) FinishLoad(*t);
  return absl::OkStatus();
}

absl::Status Runtime::Impl::LoadTask(Task& t, bool rebuilt, ChangelogReader& reader,
                                     RestoreCounts* counts) {
  t.processor = t.spec->make_processor(t.partition);
  t.corrupt.clear();
  const std::string sp = StatePrefix(t.prefix);
  RETURN_IF_ERROR(store_->Scan(sp, [&](absl::string_view k, absl::string_view v) {
    k.remove_prefix(sp.size());
    if (absl::Status s = t.processor->Load(k, v); !s.ok()) {
      t.corrupt.push_back({std::string(k), std::string(v), std::move(s)});
    }
    return true;
  }));
  if (!t.corrupt.empty() && !rebuilt) {
    const size_t n = t.corrupt.size();
    spdlog::error(
        "{} {}[{}]: {} local state entr{} could not be loaded (first: {}: {}); "
        "rebuilding the task from its changelog",
        log_, t.spec->name, t.partition, n, n == 1 ? "y" : "ies", t.corrupt[0].key,
        t.corrupt[0].status.ToString());
    metrics_.corrupt.Add({{"source", "local"}}).Increment(static_cast<double>(n));
    metrics_.from_beginning.Add({{"reason", "corrupt_entries"}}).Increment();
    counts->corrupt_local += n;
    RETURN_IF_ERROR(WipeTask(*store_, t.prefix));
    std::vector<RestoreTarget> target = {{t.spec->changelog, t.partition, t.prefix}};
    RETURN_IF_ERROR(RestoreChangelogs(reader, *store_, target, {.clock = options_.clock}));
    counts->entries += target[0].entries;
    return LoadTask(t, /*rebuilt=*/true, reader, counts);
  }
  return absl::OkStatus();
}

void Runtime::Impl::FinishLoad(Task& t) {
  RuntimeLane& loop = *sinks_.back();
  for (Task::Corrupt& b : t.corrupt) {
    // Corrupt in the changelog itself: nothing can rebuild it. Keep the bytes where an
    // operator can see them, and stop replaying them at every restore.
    spdlog::error(
        "{} {}[{}]: changelog entry {} is corrupt ({}): dead-lettered and deleted; "
        "the processor starts that entry afresh",
        log_, t.spec->changelog, t.partition, b.key, b.status.ToString());
    loop.outputs.push_back({kDeadLetterTopic, -1, b.key, std::move(b.value),
                            KafkaHeaders{{"reason", "corrupt_state"},
                                         {"source_topic", t.spec->changelog},
                                         {"source_partition", absl::StrCat(t.partition)},
                                         {"state_key", b.key},
                                         {"error", std::string(b.status.message())}}});
    loop.Count("corrupt_state");
    metrics_.corrupt.Add({{"source", "changelog"}}).Increment();
    ++loop_stats_.corrupt_changelog_entries;
    t.extra.push_back({b.key, ""});
  }
  t.corrupt.clear();
  t.restoring = false;
  t.processor->Init(loop.emitter(options_.clock->NowMillis()));
}

void Runtime::Impl::CloseTask(Task& t, bool revoked) {
  if (t.processor) t.processor->Close(revoked);
  t.processor.reset();
}

void Runtime::Impl::OnAssigned(std::vector<TopicPartitionOffset>& partitions) {
  if (partitions.empty()) {
    // A cooperative rebalance that gives this member nothing new: the tasks go on as they were.
    // (Not ready while an earlier assignment still restores in the background.)
    if (fatal_.ok() && !dirty_ && restore_jobs_.empty() && !ready_.exchange(true) &&
        options_.on_ready) {
      options_.on_ready(true);
    }
    return;
  }
  Drain();  // (called inside a poll: the lanes may be busy with this batch)
  if (!fatal_.ok() || stopping_) return;
  if (!dirty_) CommitPendingInCallback();
  std::vector<Task*> fresh;
  for (const TopicPartitionOffset& tp : partitions) {
    for (size_t s = 0; s < topo_.subtopologies.size(); ++s) {
      const Subtopology& spec = topo_.subtopologies[s];
      auto in = std::find(spec.inputs.begin(), spec.inputs.end(), tp.topic);
      if (in == spec.inputs.end()) continue;
      std::unique_ptr<Task>& t = tasks_[{static_cast<int>(s), tp.partition}];
      if (t == nullptr) {
        t = std::make_unique<Task>();
        t->sub = static_cast<int>(s);
        t->spec = &spec;
        t->partition = tp.partition;
        t->prefix = TaskPrefix(spec.name, tp.partition);
        for (const std::string& topic : spec.inputs) t->inputs.push_back({topic});
        fresh.push_back(t.get());
      }
      t->inputs[in - spec.inputs.begin()].assigned = true;
    }
  }
  if (dirty_) {
    // A refused commit: the rewind at the end of this batch restores every task, these too;
    // until then their messages are skipped (and read again from the committed offsets).
    for (Task* t : fresh) t->restoring = true;
    return;
  }
  // Where consumption resumes. Read BEFORE the restore: it waits for a previous owner's last
  // transaction to complete, so the restore then sees that transaction's changelog too. Read
  // here, on the consumer's thread, also for a background restore: librdkafka does not answer
  // another thread's offset fetch while a rebalance callback runs, and a later callback may
  // wait for the restore thread (docs/stream.md, Rebalancing).
  auto committed = StableCommitted(fresh);
  if (!committed.ok()) {
    fatal_ = committed.status();
    return;
  }
  if (options_.restore_in_background && !fresh.empty()) {
    // The tasks that stay go on while these restore (docs/stream.md, Rebalancing).
    StartRestore(std::move(fresh), std::move(*committed));
    return;
  }
  for (const TopicPartitionOffset& tp : *committed) {
    int input = 0;
    if (Task* t = FindInput(tp.topic, tp.partition, &input); t && tp.offset >= 0) {
      t->inputs[input].next_offset = tp.offset;
    }
  }
  if (absl::Status s = RestoreNow(fresh); !s.ok()) {
    fatal_ = Annotate(s, "restoring state");
    return;
  }
  AssignedDone(fresh, partitions.size());
}

void Runtime::Impl::AssignedDone(const std::vector<Task*>& tasks, size_t partitions) {
  std::string resume;
  for (Task* t : tasks) {
    absl::StrAppend(&resume, " ", t->spec->name, "/", t->partition, "@", t->inputs[0].next_offset);
  }
  spdlog::info("{} assigned {} partition(s), {} task(s) now; resuming at{}", log_, partitions,
               tasks_.size(), resume);
  Publish();
  if (!ready_.exchange(true) && options_.on_ready) options_.on_ready(true);
}

void Runtime::Impl::StartRestore(std::vector<Task*> tasks,
                                 std::vector<TopicPartitionOffset> committed) {
  WaitRestores();
  auto job = std::make_unique<RestoreJob>();
  job->id = ++restore_jobs_started_;
  for (Task* t : tasks) {
    t->restoring = true;
    t->restore_job = job->id;
    job->keys.push_back({t->sub, t->partition});
  }
  job->tasks = std::move(tasks);
  job->committed = std::move(committed);
  RestoreJob* j = job.get();
  restore_jobs_.push_back(std::move(job));
  Publish();
  // The job never touches the group's consumer (the loop's; see OnAssigned): its own changelog
  // reader and the store only.
  j->thread = std::thread([this, j] {
    j->status = RestoreTasks(j->tasks, *bg_reader_, &j->counts);
    j->done.store(true);
  });
}

void Runtime::Impl::WaitRestores() {
  for (auto& j : restore_jobs_) {
    if (j->thread.joinable()) j->thread.join();
  }
}

void Runtime::Impl::ApplyRestores(bool wait) {
  if (wait) WaitRestores();
  while (!restore_jobs_.empty() && restore_jobs_.front()->done.load()) {
    std::unique_ptr<RestoreJob> job = std::move(restore_jobs_.front());
    restore_jobs_.erase(restore_jobs_.begin());
    if (job->thread.joinable()) job->thread.join();
    loop_stats_.restored_entries += job->counts.entries;
    loop_stats_.corrupt_local_entries += job->counts.corrupt_local;
    if (!job->status.ok()) {
      if (fatal_.ok()) fatal_ = Annotate(job->status, "restoring state");
      continue;
    }
    loop_stats_.tasks_restored += job->counts.tasks;
    loop_stats_.last_restore_seconds = job->counts.seconds;
    auto mine = [&](Task* t) { return t != nullptr && t->restore_job == job->id && t->restoring; };
    // Messages read while restoring were skipped: read again from the committed offsets (the
    // log start when there is none, as the group's auto.offset.reset does).
    for (const TopicPartitionOffset& tp : job->committed) {
      int input = 0;
      Task* t = FindInput(tp.topic, tp.partition, &input);
      if (!mine(t)) continue;
      t->inputs[input].next_offset = tp.offset >= 0 ? tp.offset : -1;
      absl::Status s =
          consumer_->Seek({tp.topic, tp.partition, tp.offset >= 0 ? tp.offset : kOffsetBeginning},
                          absl::Seconds(10));
      if (!s.ok() && fatal_.ok()) {
        fatal_ = Annotate(
            s, absl::StrCat("resuming ", tp.topic, "[", tp.partition, "] after its restore"));
      }
    }
    std::vector<Task*> applied;
    for (const auto& key : job->keys) {
      auto it = tasks_.find(key);
      if (it != tasks_.end() && mine(it->second.get())) applied.push_back(it->second.get());
    }
    for (Task* t : applied) FinishLoad(*t);
    if (!applied.empty()) AssignedDone(applied, job->committed.size());
  }
}

void Runtime::Impl::OnRevoked(const std::vector<TopicPartitionOffset>& partitions, bool lost) {
  Drain();                       // before committing or dropping the tasks the lanes use
  WaitRestores();                // (a task being restored may be among them)
  if (fatal_.ok() && !dirty_) {  // dirty: the aborted state is dropped, not committed
    if (lost) {
      // A fenced member's commit in flight fails; what it and the pending work held is dropped
      // (the new owner restores from the last commit; tasks that stay are rewound).
      if (absl::Status s = FinishCommit(); !s.ok()) {
        spdlog::warn("{} commit in flight when partitions were lost: {}", log_, s.ToString());
        needs_rewind_ = true;
      }
      if (txn_open_) (void)producer_->AbortTransaction(kTxnTimeout);
      txn_open_ = false;
      if (pending_work_) needs_rewind_ = true;
      pending_work_ = false;
      pending_.clear();
    } else {
      CommitPendingInCallback();
    }
  }
  size_t closed = 0;
  for (const TopicPartitionOffset& tp : partitions) {
    int input = 0;
    Task* t = FindInput(tp.topic, tp.partition, &input);
    if (t == nullptr) continue;
    t->inputs[input].assigned = false;
    if (std::any_of(t->inputs.begin(), t->inputs.end(),
                    [](const Input& i) { return i.assigned; })) {
      continue;
    }
    if (t->sub == 0) {
      // Another instance reports this partition's lag now; a stale value here would add up.
      metrics_.lag.Remove(&metrics_.lag.Add({{"partition", absl::StrCat(t->partition)}}));
    }
    CloseTask(*t, /*revoked=*/!stopping_);
    if (!stopping_) {
      // Another instance will own it; our copy would miss tombstones compacted meanwhile.
      if (absl::Status s = WipeTask(*store_, t->prefix); !s.ok() && fatal_.ok()) {
        fatal_ = Annotate(s, absl::StrCat("wiping the local state of revoked ", t->spec->name, "[",
                                          t->partition, "]"));
      }
    }
    tasks_.erase({t->sub, t->partition});
    ++closed;
  }
  if (tasks_.empty()) needs_rewind_ = false;
  Publish();
  spdlog::info("{} revoked {} partition(s){}, {} task(s) closed, {} left", log_, partitions.size(),
               lost ? " (lost)" : "", closed, tasks_.size());
}

// --- gauges ---------------------------------------------------------------------------------

void Runtime::Impl::Sample() {
  std::vector<Processor*> all;
  for (auto& [k, t] : tasks_) {
    if (t->restoring) continue;
    all.push_back(t->processor.get());
    if (t->sub != 0) continue;
    int64_t lag = 0;
    CaughtUp(*t, &lag);
    metrics_.lag.Add({{"partition", absl::StrCat(t->partition)}}).Set(static_cast<double>(lag));
  }
  if (options_.on_sample) options_.on_sample(all);
  loop_stats_.state_bytes = store_->ApproximateBytes();
  metrics_.state_bytes.Set(static_cast<double>(loop_stats_.state_bytes));
  metrics_.store_memory.Set(static_cast<double>(store_->MemoryUsageBytes()));
  Publish();
}

void Runtime::Impl::Publish() {
  absl::MutexLock l(&stats_mu_);
  stats_.rewinds = loop_stats_.rewinds;
  stats_.tasks_restored = loop_stats_.tasks_restored;
  stats_.restored_entries = loop_stats_.restored_entries;
  stats_.corrupt_local_entries = loop_stats_.corrupt_local_entries;
  stats_.corrupt_changelog_entries = loop_stats_.corrupt_changelog_entries;
  stats_.store_rebuilds = loop_stats_.store_rebuilds;
  stats_.state_bytes = loop_stats_.state_bytes;
  stats_.last_restore_seconds = loop_stats_.last_restore_seconds;
  stats_.partitions.clear();
  stats_.restoring_tasks = 0;
  for (const auto& [k, t] : tasks_) {
    if (k.first == 0) stats_.partitions.push_back(k.second);
    stats_.restoring_tasks += t->restoring ? 1 : 0;
  }
}

// --- Runtime --------------------------------------------------------------------------------

Runtime::Runtime(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Runtime::~Runtime() = default;

absl::StatusOr<std::unique_ptr<Runtime>> Runtime::Create(RuntimeOptions options) {
  const Topology& t = options.topology;
  if (options.io == nullptr || !options.open_store || options.group_id.empty()) {
    return absl::InvalidArgumentError("stream runtime: io, open_store and group_id are required");
  }
  if (options.exactly_once && options.transactional_id.empty()) {
    return absl::InvalidArgumentError("stream runtime: exactly-once needs a transactional_id");
  }
  if (t.subtopologies.empty() || t.role.empty() || t.deadletter.empty()) {
    return absl::InvalidArgumentError(
        "stream runtime: a topology needs a role, a dead-letter topic and a sub-topology");
  }
  for (const Subtopology& s : t.subtopologies) {
    if (s.inputs.empty() || s.changelog.empty() || !s.make_processor || s.name.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("stream runtime: sub-topology '", s.name,
                                                     "' needs a name, inputs, a changelog and a "
                                                     "processor factory"));
    }
  }
  if (options.clock == nullptr) options.clock = Clock::Real();
  auto registry = options.registry ? options.registry : std::make_shared<prometheus::Registry>();
  return std::unique_ptr<Runtime>(
      new Runtime(std::make_unique<Impl>(std::move(options), std::move(registry))));
}

absl::Status Runtime::Run(const std::atomic<bool>& stop) { return impl_->Run(stop); }
absl::Status Runtime::Setup() { return impl_->Setup(); }
absl::StatusOr<size_t> Runtime::RunOnceForTest() { return impl_->RunOnce(); }
absl::Status Runtime::Shutdown() { return impl_->Shutdown(absl::OkStatus()); }
bool Runtime::ready() const { return impl_->ready(); }
std::vector<uint64_t> Runtime::counters() const { return impl_->counters(); }
RuntimeStats Runtime::stats() const { return impl_->stats(); }
Processor* Runtime::ProcessorForTest(absl::string_view subtopology, int32_t partition) {
  return impl_->FindProcessor(subtopology, partition);
}
KvStore* Runtime::store() { return impl_->store(); }

}  // namespace cybersyn::stream
