#include "stream/test_driver.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "stream/task_store.h"

namespace cybersyn::stream {

// The runtime's view of the driver's persistent store, with the driver's write faults.
class TopologyTestDriver::Store : public KvStore {
 public:
  explicit Store(TopologyTestDriver* d) : d_(d) {}
  absl::StatusOr<std::string> Get(absl::string_view key) override { return d_->data_->Get(key); }
  absl::Status Write(const WriteBatch& batch) override {
    if (d_->write_failures_left_ > 0) {
      --d_->write_failures_left_;
      return d_->write_failure_;
    }
    return d_->data_->Write(batch);
  }
  absl::Status Scan(absl::string_view prefix,
                    const std::function<bool(absl::string_view, absl::string_view)>& fn) override {
    return d_->data_->Scan(prefix, fn);
  }
  uint64_t ApproximateBytes() override { return d_->data_->ApproximateBytes(); }

 private:
  TopologyTestDriver* d_;
};

TopologyTestDriver::TopologyTestDriver(MakeTopology make, DriverOptions options)
    : make_(std::move(make)),
      options_(std::move(options)),
      clock_(options_.start),
      broker_(options_.partitions),
      io_(broker_.NewIo()),
      data_(std::make_unique<MemoryKvStore>()) {}

TopologyTestDriver::~TopologyTestDriver() {
  if (runtime_) (void)Stop();
}

std::string TopologyTestDriver::group() const { return absl::StrCat(topology_.role, "-driver"); }

KvStore& TopologyTestDriver::store() { return *data_; }

absl::Status TopologyTestDriver::Start() {
  if (runtime_) return absl::FailedPreconditionError("driver: already started");
  topology_ = make_(&clock_);
  RuntimeOptions o;
  o.topology = topology_;
  o.io = io_.get();
  o.group_id = group();
  o.group_instance_id = options_.instance_id;
  o.transactional_id = absl::StrCat(topology_.role, ".", options_.instance_id);
  o.open_store = [this]() -> absl::StatusOr<std::unique_ptr<KvStore>> {
    if (corrupt_at_open_) {
      corrupt_at_open_ = false;
      return absl::DataLossError("driver: store corrupt (injected)");
    }
    return std::unique_ptr<KvStore>(new Store(this));
  };
  o.destroy_store = [this] {
    data_ = std::make_unique<MemoryKvStore>();
    return absl::OkStatus();
  };
  o.clock = &clock_;
  o.processing_threads = options_.processing_threads;
  o.restore_in_background = options_.restore_in_background;
  o.stable_offsets_wait = options_.stable_offsets_wait;
  o.max_batch_messages = options_.max_batch_messages;
  o.commit_hook_for_test = [this](uint64_t n) {
    return commit_hook_ ? commit_hook_(n) : absl::OkStatus();
  };
  if (on_committed_) o.on_committed = on_committed_;
  ASSIGN_OR_RETURN(runtime_, Runtime::Create(std::move(o)));
  return runtime_->Setup();
}

absl::Status TopologyTestDriver::Stop() {
  if (!runtime_) return absl::OkStatus();
  absl::Status s = runtime_->Shutdown();
  runtime_.reset();
  return s;
}

void TopologyTestDriver::Crash(bool wipe_store) {
  runtime_.reset();  // no Shutdown: nothing committed, the group is left as by a dead member
  if (wipe_store) data_ = std::make_unique<MemoryKvStore>();
}

int64_t TopologyTestDriver::Pipe(const std::string& topic, const std::string& key,
                                 const std::string& value, int32_t partition) {
  return broker_.Append(topic, partition, key, value);
}

absl::Status TopologyTestDriver::Process() {
  if (!runtime_) return absl::FailedPreconditionError("driver: not started");
  // A bound, so that a processor that feeds itself forever fails the test instead of hanging.
  // Two quiet batches in a row: what the first one's punctuation published (closed windows
  // feeding a next stage) was consumed by the second, and that produced nothing more to read.
  int quiet = 0;
  for (int i = 0; i < 10000; ++i) {
    ASSIGN_OR_RETURN(size_t n, runtime_->RunOnceForTest());
    if (n == 0 && runtime_->stats().restoring_tasks > 0) {
      absl::SleepFor(absl::Milliseconds(1));  // (a background restore: not quiet yet)
      quiet = 0;
      continue;
    }
    quiet = n == 0 ? quiet + 1 : 0;
    if (quiet == 2) return absl::OkStatus();
  }
  return absl::DeadlineExceededError("driver: input still arriving after 10000 batches");
}

absl::Status TopologyTestDriver::Advance(absl::Duration d) {
  clock_.Advance(d);
  return Process();
}

std::vector<MemoryBroker::Record> TopologyTestDriver::ReadOutput(const std::string& topic) {
  std::vector<MemoryBroker::Record> out;
  const int n = broker_.Partitions(topic);
  for (int p = 0; p < n; ++p) {
    size_t& next = read_positions_[absl::StrCat(topic, "/", p)];
    for (MemoryBroker::Record& r : broker_.ReadCommitted(topic, p, static_cast<int64_t>(next))) {
      next = static_cast<size_t>(r.offset) + 1;
      out.push_back(std::move(r));
    }
  }
  return out;
}

std::vector<MemoryBroker::Record> TopologyTestDriver::ReadAll(const std::string& topic) {
  std::vector<MemoryBroker::Record> out;
  for (auto& [p, r] : broker_.ReadCommittedAll(topic)) out.push_back(std::move(r));
  return out;
}

void TopologyTestDriver::KeepPartitions(const std::vector<int32_t>& keep, bool mid_batch,
                                        int after_fetches) {
  std::vector<TopicPartition> tps;  // (the other inputs follow the lead: topology.h)
  for (int32_t p : keep) tps.push_back({LeadTopic(topology_), p});
  broker_.Reassign(group(), {{options_.instance_id, tps}}, mid_batch, after_fetches);
}

void TopologyTestDriver::AssignAll() {
  std::vector<int32_t> all;
  for (int p = 0; p < options_.partitions; ++p) all.push_back(p);
  KeepPartitions(all);
}

std::map<std::string, std::string> TopologyTestDriver::State(const std::string& subtopology,
                                                             int32_t partition) {
  std::map<std::string, std::string> out;
  const std::string sp = StatePrefix(TaskPrefix(subtopology, partition));
  (void)data_->Scan(sp, [&](absl::string_view k, absl::string_view v) {
    out[std::string(k.substr(sp.size()))] = std::string(v);
    return true;
  });
  return out;
}

std::map<TopicPartition, int64_t> TopologyTestDriver::Committed() {
  return broker_.CommittedOffsets(group());
}

uint64_t TopologyTestDriver::counter(const std::string& name) {
  if (!runtime_) return 0;
  const std::vector<uint64_t> c = runtime_->counters();
  for (size_t i = 0; i < topology_.counters.size(); ++i) {
    if (topology_.counters[i] == name) return c[i];
  }
  return 0;
}

void TopologyTestDriver::FailStoreWrites(absl::Status status, int n) {
  write_failure_ = std::move(status);
  write_failures_left_ = n;
}

}  // namespace cybersyn::stream
