#include "stream/memory_broker.h"

#include <algorithm>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace cybersyn::stream {
namespace {

uint64_t Fnv1a(absl::string_view s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

}  // namespace

// --- clients --------------------------------------------------------------------------------

class MemoryConsumer : public InputConsumer {
 public:
  MemoryConsumer(MemoryBroker* b, ConsumerSettings s) : b_(b), s_(std::move(s)) {}
  ~MemoryConsumer() override { Leave(/*revoke=*/false); }

  const std::string& group() const { return s_.group_id; }
  bool member() {
    absl::MutexLock l(&b_->mu_);
    return joined_;
  }

  absl::Status Subscribe(const std::vector<std::string>& topics) override {
    if (s_.group_id.empty()) return absl::InvalidArgumentError("subscribe without a group");
    absl::MutexLock l(&b_->mu_);
    for (const std::string& t : topics) b_->PartitionsLocked(t);  // auto-create
    MemoryBroker::Group& g = b_->groups_[s_.group_id];
    member_.id = s_.group_instance_id.empty() ? absl::StrCat("member-", ++b_->next_member_)
                                              : s_.group_instance_id;
    member_.topics = topics;
    auto strategy = s_.overrides.find("partition.assignment.strategy");
    member_.cooperative = strategy == s_.overrides.end() || strategy->second != "range";
    g.members[member_.id] = &member_;
    joined_ = true;
    b_->AssignLocked(g);
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<ConsumedMessage>> ConsumeBatch(size_t max_messages,
                                                            absl::Duration timeout) override {
    if (closed_) return absl::FailedPreconditionError("consumer closed");
    DeliverEvents(/*mid_batch=*/false);
    std::vector<ConsumedMessage> out;
    {
      absl::MutexLock l(&b_->mu_);
      // Round robin over the owned partitions, so that no partition starves the others.
      bool progress = true;
      while (out.size() < max_messages && progress) {
        progress = false;
        for (auto& [tp, pos] : positions_) {
          const size_t before = out.size();
          b_->ReadLocked(tp.first, tp.second, b_->PartitionLocked(tp.first, tp.second), &pos,
                         std::min<size_t>(max_messages - out.size(), 64), &out);
          progress |= out.size() > before;
          if (out.size() >= max_messages) break;
        }
      }
    }
    DeliverEvents(/*mid_batch=*/true);
    if (out.empty() && timeout > absl::ZeroDuration()) {
      absl::SleepFor(std::min(timeout, absl::Milliseconds(2)));  // no busy loop when idle
    }
    return out;
  }

  absl::StatusOr<std::vector<TopicPartitionOffset>> Committed(
      const std::vector<TopicPartitionOffset>& partitions, absl::Duration timeout) override {
    // As librdkafka: the offset fetch is not answered while a rebalance callback of this
    // consumer runs on another thread (the group waits for the callback's assign first).
    const absl::Time give_up = absl::Now() + timeout;
    while (true) {
      {
        absl::MutexLock l(&cb_mu_);
        if (!in_callback_ || *in_callback_ == std::this_thread::get_id()) break;
      }
      if (absl::Now() >= give_up) {
        return absl::DeadlineExceededError(
            "reading committed offsets: timed out (a rebalance callback of this consumer is "
            "running on another thread)");
      }
      absl::SleepFor(absl::Milliseconds(1));
    }
    absl::MutexLock l(&b_->mu_);
    MemoryBroker::Group& g = b_->groups_[s_.group_id];
    std::vector<TopicPartitionOffset> out;
    for (const TopicPartitionOffset& tp : partitions) {
      const TopicPartition key{tp.topic, tp.partition};
      if (g.pending.contains(key)) {
        return absl::UnavailableError(absl::StrCat("reading committed offsets: ", tp.topic, "[",
                                                   tp.partition, "] unstable (pending)"));
      }
      auto it = g.committed.find(key);
      out.push_back(
          {tp.topic, tp.partition, it == g.committed.end() ? kOffsetInvalid : it->second});
    }
    return out;
  }

  absl::Status Seek(const TopicPartitionOffset& position, absl::Duration) override {
    absl::MutexLock l(&b_->mu_);
    auto it = positions_.find({position.topic, position.partition});
    if (it == positions_.end()) {
      return absl::FailedPreconditionError(
          absl::StrCat("seek: ", position.topic, "[", position.partition, "] not assigned"));
    }
    it->second = position.offset >= 0 ? position.offset : 0;  // (ReadLocked clamps to start)
    return absl::OkStatus();
  }

  std::pair<int64_t, int64_t> CachedWatermarks(const std::string& topic,
                                               int32_t partition) override {
    absl::MutexLock l(&b_->mu_);
    MemoryBroker::Partition& p = b_->PartitionLocked(topic, partition);
    return {p.start, b_->LsoLocked(p)};
  }

  absl::Status CommitOffsets(const std::vector<TopicPartitionOffset>& offsets) override {
    absl::MutexLock l(&b_->mu_);
    for (const auto& o : offsets)
      b_->groups_[s_.group_id].committed[{o.topic, o.partition}] = o.offset;
    return absl::OkStatus();
  }

  absl::Status Close() override {
    if (closed_) return absl::OkStatus();
    Leave(/*revoke=*/true);
    closed_ = true;
    return absl::OkStatus();
  }

 private:
  // Leaves the group (revoking what it owns when `revoke`); the others rebalance.
  void Leave(bool revoke) {
    std::vector<TopicPartitionOffset> owned;
    {
      absl::MutexLock l(&b_->mu_);
      if (!joined_) return;
      for (const auto& [tp, pos] : positions_) owned.push_back({tp.first, tp.second, pos});
    }
    if (revoke && !owned.empty() && s_.listener != nullptr) s_.listener->OnRevoked(owned, false);
    absl::MutexLock l(&b_->mu_);
    positions_.clear();
    MemoryBroker::Group& g = b_->groups_[s_.group_id];
    auto it = g.members.find(member_.id);
    if (it != g.members.end() && it->second == &member_) g.members.erase(it);
    joined_ = false;
    b_->AssignLocked(g);
  }

  // Marks this thread as inside a rebalance callback (see Committed) until DeliverEvents ends.
  struct InCallback {
    explicit InCallback(MemoryConsumer* c) : c_(c) {}
    ~InCallback() {
      if (!set_) return;
      absl::MutexLock l(&c_->cb_mu_);
      c_->in_callback_.reset();
    }
    void Set() {
      if (set_) return;
      set_ = true;
      absl::MutexLock l(&c_->cb_mu_);
      c_->in_callback_ = std::this_thread::get_id();
    }
    MemoryConsumer* c_;
    bool set_ = false;
  };

  void DeliverEvents(bool mid_batch) {
    InCallback in_callback(this);
    while (true) {
      MemoryBroker::Event e;
      {
        absl::MutexLock l(&b_->mu_);
        if (member_.events.empty() || member_.events.front().mid_batch != mid_batch) return;
        if (member_.events.front().after_fetches > 0) {
          --member_.events.front().after_fetches;
          return;
        }
        e = std::move(member_.events.front());
        member_.events.pop_front();
      }
      WithPaired(&e.partitions);
      in_callback.Set();
      if (!e.assign) {
        if (s_.listener != nullptr) s_.listener->OnRevoked(e.partitions, false);
        absl::MutexLock l(&b_->mu_);
        for (const auto& tp : e.partitions) positions_.erase({tp.topic, tp.partition});
        continue;
      }
      if (s_.listener != nullptr) s_.listener->OnAssigned(e.partitions);
      absl::MutexLock l(&b_->mu_);
      MemoryBroker::Group& g = b_->groups_[s_.group_id];
      for (const auto& tp : e.partitions) {
        int64_t pos = tp.offset;
        if (pos < 0 && pos != kOffsetBeginning) {
          auto c = g.committed.find({tp.topic, tp.partition});
          pos = c != g.committed.end() ? c->second : kOffsetBeginning;
        }
        positions_[{tp.topic, tp.partition}] = std::max<int64_t>(pos, 0);
      }
    }
  }

  // Appends partition p of every paired topic for each partition p of the group's.
  void WithPaired(std::vector<TopicPartitionOffset>* partitions) const {
    const size_t n = partitions->size();
    for (size_t i = 0; i < n; ++i) {
      const int32_t p = (*partitions)[i].partition;
      for (const std::string& t : s_.paired_topics) partitions->push_back({t, p});
    }
  }

  MemoryBroker* b_;
  ConsumerSettings s_;
  MemoryBroker::Member member_;  // guarded by b_->mu_
  bool joined_ = false;          // guarded by b_->mu_
  bool closed_ = false;
  std::map<TopicPartition, int64_t> positions_;  // guarded by b_->mu_
  absl::Mutex cb_mu_;
  // The thread delivering this poll's rebalance events, from the first until the poll goes on.
  std::optional<std::thread::id> in_callback_ ABSL_GUARDED_BY(cb_mu_);
};

class MemoryReader : public ChangelogReader {
 public:
  explicit MemoryReader(MemoryBroker* b) : b_(b) {}

  absl::Status Assign(const std::vector<TopicPartitionOffset>& partitions) override {
    absl::MutexLock l(&b_->mu_);
    positions_.clear();
    ended_.clear();
    for (const auto& tp : partitions) {
      positions_[{tp.topic, tp.partition}] = std::max<int64_t>(tp.offset, 0);
    }
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<ConsumedMessage>> Read(
      size_t max_messages, absl::Duration timeout,
      std::vector<TopicPartitionOffset>* ended) override {
    std::vector<ConsumedMessage> out;
    absl::MutexLock l(&b_->mu_);
    if (b_->read_failures_left_ > 0) {
      --b_->read_failures_left_;
      return b_->read_failure_;
    }
    for (auto& [tp, pos] : positions_) {
      MemoryBroker::Partition& p = b_->PartitionLocked(tp.first, tp.second);
      if (out.size() < max_messages) {
        b_->ReadLocked(tp.first, tp.second, p, &pos, max_messages - out.size(), &out);
      }
      if (pos >= b_->LsoLocked(p)) {
        if (ended_.insert(tp).second) ended->push_back({tp.first, tp.second, pos});
      } else {
        ended_.erase(tp);
      }
    }
    return out;
  }

  absl::StatusOr<std::pair<int64_t, int64_t>> Watermarks(const std::string& topic,
                                                         int32_t partition,
                                                         absl::Duration) override {
    absl::MutexLock l(&b_->mu_);
    MemoryBroker::Partition& p = b_->PartitionLocked(topic, partition);
    return std::make_pair(p.start, p.end);
  }

 private:
  MemoryBroker* b_;
  std::map<TopicPartition, int64_t> positions_;
  std::set<TopicPartition> ended_;
};

// (Inside MemoryProducer, with the broker locked.)
#define RETURN_IF_FENCED()                                                                   \
  if (!s_.transactional_id.empty() && b_->producers_[s_.transactional_id].epoch != epoch_) { \
    return absl::FailedPreconditionError(                                                    \
        absl::StrCat("producer ", s_.transactional_id, " fenced by a newer epoch (fatal)")); \
  }

class MemoryProducer : public OutputProducer {
 public:
  MemoryProducer(MemoryBroker* b, ProducerSettings s) : b_(b), s_(std::move(s)) {}

  absl::Status InitTransactions(absl::Duration) override {
    if (s_.transactional_id.empty()) return absl::FailedPreconditionError("not transactional");
    absl::MutexLock l(&b_->mu_);
    MemoryBroker::Producer& p = b_->producers_[s_.transactional_id];
    if (p.open) b_->EndTxnLocked(p, /*commit=*/false);  // what the previous one left open
    epoch_ = ++p.epoch;
    return absl::OkStatus();
  }

  absl::Status BeginTransaction() override {
    absl::MutexLock l(&b_->mu_);
    RETURN_IF_FENCED();
    MemoryBroker::Producer& p = b_->producers_[s_.transactional_id];
    if (p.open) return absl::FailedPreconditionError("begin transaction: one is open already");
    p.open = std::make_shared<MemoryBroker::Txn>();
    p.open->state = MemoryBroker::TxnState::kOpen;
    return absl::OkStatus();
  }

  absl::Status Produce(absl::string_view topic, int32_t partition, absl::string_view key,
                       absl::string_view value, const KafkaHeaders& headers,
                       absl::Duration) override {
    absl::MutexLock l(&b_->mu_);
    std::shared_ptr<MemoryBroker::Txn> txn;
    if (!s_.transactional_id.empty()) {
      RETURN_IF_FENCED();
      MemoryBroker::Producer& p = b_->producers_[s_.transactional_id];
      if (!p.open) return absl::FailedPreconditionError("produce outside a transaction");
      txn = p.open;
    }
    const std::string t(topic);
    const int n = b_->PartitionsLocked(t);
    if (partition < 0) partition = static_cast<int32_t>(Fnv1a(key) % static_cast<uint64_t>(n));
    if (partition >= n) return absl::InvalidArgumentError(absl::StrCat("no partition ", partition));
    MemoryBroker::Partition& part = b_->PartitionLocked(t, partition);
    MemoryBroker::Stored s;
    s.offset = part.end++;
    s.key = std::string(key);
    // Kafka has null values (tombstones); the runtime produces an empty value for them.
    if (!value.empty()) s.value = std::string(value);
    s.headers = headers;
    s.txn = txn;
    part.log.push_back(std::move(s));
    if (txn) b_->producers_[s_.transactional_id].touched.insert({t, partition});
    ++b_->produced_;
    reports_.push_back({absl::OkStatus(), t, partition, part.end - 1, nullptr});
    return absl::OkStatus();
  }

  absl::Status SendOffsetsToTransaction(const std::vector<TopicPartitionOffset>& offsets,
                                        InputConsumer& consumer, absl::Duration) override {
    auto& c = static_cast<MemoryConsumer&>(consumer);
    if (!c.member()) return absl::FailedPreconditionError("send offsets: not a group member");
    absl::MutexLock l(&b_->mu_);
    RETURN_IF_FENCED();
    MemoryBroker::Producer& p = b_->producers_[s_.transactional_id];
    if (!p.open) return absl::FailedPreconditionError("send offsets outside a transaction");
    MemoryBroker::Group& g = b_->groups_[c.group()];
    for (const auto& o : offsets) {
      const TopicPartition tp{o.topic, o.partition};
      auto& slot = p.offsets[c.group()];
      if (!slot.contains(tp)) ++g.pending[tp];
      slot[tp] = o.offset;
    }
    return absl::OkStatus();
  }

  absl::Status CommitTransaction(absl::Duration) override { return EndTxn(true); }
  absl::Status AbortTransaction(absl::Duration) override { return EndTxn(false); }

  absl::Status Flush(absl::Duration) override {
    Deliver();
    return absl::OkStatus();
  }
  void Poll() override { Deliver(); }

  absl::Status FatalError() override {
    absl::MutexLock l(&b_->mu_);
    RETURN_IF_FENCED();
    return absl::OkStatus();
  }
  void Purge() override { reports_.clear(); }

 private:
  absl::Status EndTxn(bool commit) {
    if (commit) Deliver();  // (as librdkafka: the commit flushes first)
    absl::MutexLock l(&b_->mu_);
    RETURN_IF_FENCED();
    MemoryBroker::Producer& p = b_->producers_[s_.transactional_id];
    if (!p.open) return absl::FailedPreconditionError("no open transaction");
    if (!commit) reports_.clear();
    b_->EndTxnLocked(p, commit);
    return absl::OkStatus();
  }

  void Deliver() {
    std::deque<DeliveryReport> r;
    r.swap(reports_);
    if (!s_.on_delivery) return;
    for (const DeliveryReport& d : r) s_.on_delivery(d);
  }

  MemoryBroker* b_;
  ProducerSettings s_;
  uint64_t epoch_ = 0;
  std::deque<DeliveryReport> reports_;
};

#undef RETURN_IF_FENCED

class MemoryIo : public KafkaIo {
 public:
  explicit MemoryIo(MemoryBroker* b) : b_(b) {}
  absl::StatusOr<std::unique_ptr<InputConsumer>> CreateConsumer(
      const ConsumerSettings& s) override {
    return std::unique_ptr<InputConsumer>(new MemoryConsumer(b_, s));
  }
  absl::StatusOr<std::unique_ptr<ChangelogReader>> CreateChangelogReader() override {
    return std::unique_ptr<ChangelogReader>(new MemoryReader(b_));
  }
  absl::StatusOr<std::unique_ptr<OutputProducer>> CreateProducer(
      const ProducerSettings& s) override {
    return std::unique_ptr<OutputProducer>(new MemoryProducer(b_, s));
  }
  absl::Status EnsureTopics(const std::vector<TopicSpec>& specs) override {
    for (const TopicSpec& t : specs) b_->CreateTopic(t.name, t.partitions);
    return absl::OkStatus();
  }
  absl::StatusOr<int> PartitionCount(const std::string& topic) override {
    absl::MutexLock l(&b_->mu_);
    auto it = b_->topics_.find(topic);
    if (it == b_->topics_.end()) return absl::NotFoundError(absl::StrCat("no topic ", topic));
    return static_cast<int>(it->second.size());
  }

 private:
  MemoryBroker* b_;
};

// --- broker ---------------------------------------------------------------------------------

MemoryBroker::MemoryBroker(int default_partitions) : default_partitions_(default_partitions) {}
MemoryBroker::~MemoryBroker() = default;

std::unique_ptr<KafkaIo> MemoryBroker::NewIo() { return std::make_unique<MemoryIo>(this); }

void MemoryBroker::CreateTopic(const std::string& topic, int partitions) {
  absl::MutexLock l(&mu_);
  if (!topics_.contains(topic)) topics_[topic].resize(std::max(1, partitions));
}

int MemoryBroker::Partitions(const std::string& topic) {
  absl::MutexLock l(&mu_);
  return PartitionsLocked(topic);
}

int MemoryBroker::PartitionsLocked(const std::string& topic) {
  auto& parts = topics_[topic];
  if (parts.empty()) parts.resize(default_partitions_);
  return static_cast<int>(parts.size());
}

MemoryBroker::Partition& MemoryBroker::PartitionLocked(const std::string& topic,
                                                       int32_t partition) {
  PartitionsLocked(topic);
  auto& parts = topics_[topic];
  if (partition < 0 || static_cast<size_t>(partition) >= parts.size()) {
    parts.resize(partition + 1);  // (tests only ever name existing partitions)
  }
  return parts[partition];
}

int32_t MemoryBroker::PartitionFor(const std::string& topic, absl::string_view key) {
  return static_cast<int32_t>(Fnv1a(key) % static_cast<uint64_t>(Partitions(topic)));
}

int64_t MemoryBroker::Append(const std::string& topic, int32_t partition, absl::string_view key,
                             std::optional<std::string> value, const KafkaHeaders& headers) {
  if (partition < 0) partition = PartitionFor(topic, key);
  absl::MutexLock l(&mu_);
  Partition& p = PartitionLocked(topic, partition);
  Stored s;
  s.offset = p.end++;
  s.key = std::string(key);
  s.value = std::move(value);
  s.headers = headers;
  p.log.push_back(std::move(s));
  return p.end - 1;
}

bool MemoryBroker::Visible(const Stored& s) {
  return !s.removed && !s.control && (!s.txn || s.txn->state == TxnState::kCommitted);
}

int64_t MemoryBroker::LsoLocked(const Partition& p) const {
  for (const Stored& s : p.log) {
    if (s.txn && s.txn->state == TxnState::kOpen) return s.offset;
  }
  return p.end;
}

void MemoryBroker::ReadLocked(const std::string& topic, int32_t partition, Partition& p,
                              int64_t* position, size_t max, std::vector<ConsumedMessage>* out) {
  if (*position < p.start) *position = p.start;
  const int64_t lso = LsoLocked(p);
  size_t n = 0;
  while (*position < lso && n < max) {
    const Stored& s = p.log[*position - p.start];
    ++*position;
    if (!Visible(s)) continue;
    out->emplace_back(topic, partition, s.offset, s.key, s.value.value_or(""), s.headers);
    ++n;
  }
}

std::vector<MemoryBroker::Record> MemoryBroker::ReadCommitted(const std::string& topic,
                                                              int32_t partition, int64_t from) {
  absl::MutexLock l(&mu_);
  Partition& p = PartitionLocked(topic, partition);
  std::vector<Record> out;
  const int64_t lso = LsoLocked(p);
  for (const Stored& s : p.log) {
    if (s.offset < from || s.offset >= lso || !Visible(s)) continue;
    out.push_back({s.offset, s.key, s.value, s.headers});
  }
  return out;
}

std::vector<std::pair<int32_t, MemoryBroker::Record>> MemoryBroker::ReadCommittedAll(
    const std::string& topic) {
  std::vector<std::pair<int32_t, Record>> out;
  const int n = Partitions(topic);
  for (int p = 0; p < n; ++p) {
    for (Record& r : ReadCommitted(topic, p)) out.emplace_back(p, std::move(r));
  }
  return out;
}

std::pair<int64_t, int64_t> MemoryBroker::Watermarks(const std::string& topic, int32_t partition) {
  absl::MutexLock l(&mu_);
  Partition& p = PartitionLocked(topic, partition);
  return {p.start, p.end};
}

int64_t MemoryBroker::LastStableOffset(const std::string& topic, int32_t partition) {
  absl::MutexLock l(&mu_);
  return LsoLocked(PartitionLocked(topic, partition));
}

void MemoryBroker::Compact(const std::string& topic) {
  absl::MutexLock l(&mu_);
  for (Partition& p : topics_[topic]) {
    std::map<std::string, int64_t> last;
    for (const Stored& s : p.log) {
      if (Visible(s)) last[s.key] = s.offset;
    }
    for (Stored& s : p.log) {
      if (s.removed || (s.txn && s.txn->state == TxnState::kOpen)) continue;
      if (!Visible(s) || last[s.key] != s.offset || !s.value.has_value()) s.removed = true;
    }
  }
}

absl::Status MemoryBroker::CorruptRecordForTest(const std::string& topic, int32_t partition,
                                                int64_t offset, std::string value) {
  absl::MutexLock l(&mu_);
  Partition& p = PartitionLocked(topic, partition);
  if (offset < p.start || offset >= p.end) return absl::NotFoundError("no such offset");
  p.log[offset - p.start].value = std::move(value);
  return absl::OkStatus();
}

std::map<TopicPartition, int64_t> MemoryBroker::CommittedOffsets(const std::string& group) {
  absl::MutexLock l(&mu_);
  return groups_[group].committed;
}

void MemoryBroker::AssignLocked(Group& g) {
  const bool eager = std::any_of(g.members.begin(), g.members.end(),
                                 [](const auto& m) { return !m.second->cooperative; });
  std::map<std::string, std::vector<TopicPartition>> a;
  std::set<std::string> topics;
  for (const auto& [id, m] : g.members) topics.insert(m->topics.begin(), m->topics.end());
  for (const std::string& t : topics) {
    std::vector<std::string> members;
    for (const auto& [id, m] : g.members) {
      if (std::find(m->topics.begin(), m->topics.end(), t) != m->topics.end()) {
        members.push_back(id);
      }
    }
    const int n = PartitionsLocked(t);
    const int per = n / static_cast<int>(members.size());
    const int extra = n % static_cast<int>(members.size());
    auto share = [&](size_t i) { return per + (static_cast<int>(i) < extra ? 1 : 0); };
    if (eager) {
      int next = 0;
      for (size_t i = 0; i < members.size(); ++i) {
        for (int k = 0; k < share(i); ++k) a[members[i]].push_back({t, next++});
      }
      continue;
    }
    // Sticky: an owner keeps its partitions up to its share; the rest go where there is room.
    std::vector<bool> taken(n, false);
    std::vector<int> count(members.size(), 0);
    for (size_t i = 0; i < members.size(); ++i) {
      for (const TopicPartition& tp : g.members[members[i]]->owned) {
        if (tp.first != t || tp.second >= n || taken[tp.second] || count[i] >= share(i)) continue;
        taken[tp.second] = true;
        ++count[i];
        a[members[i]].push_back(tp);
      }
    }
    size_t i = 0;
    for (int p = 0; p < n; ++p) {
      if (taken[p]) continue;
      while (count[i] >= share(i)) i = (i + 1) % members.size();
      ++count[i];
      a[members[i]].push_back({t, p});
    }
  }
  SetAssignmentLocked(g, a, /*mid_batch=*/false);
}

void MemoryBroker::SetAssignmentLocked(Group& g,
                                       const std::map<std::string, std::vector<TopicPartition>>& a,
                                       bool mid_batch, int after_fetches) {
  for (auto& [id, m] : g.members) {
    auto it = a.find(id);
    std::vector<TopicPartition> next = it == a.end() ? std::vector<TopicPartition>() : it->second;
    const std::set<TopicPartition> keep(next.begin(), next.end());
    const std::set<TopicPartition> had(m->owned.begin(), m->owned.end());
    Event revoke{false, {}, mid_batch};
    for (const auto& tp : m->owned) {
      if (!m->cooperative || !keep.contains(tp)) revoke.partitions.push_back({tp.first, tp.second});
    }
    const size_t first = m->events.size();
    if (!revoke.partitions.empty()) m->events.push_back(std::move(revoke));
    // (Also when empty: the member knows the rebalance is over.)
    Event assign{true, {}, mid_batch};
    for (const auto& tp : next) {
      if (!m->cooperative || !had.contains(tp)) assign.partitions.push_back({tp.first, tp.second});
    }
    m->events.push_back(std::move(assign));
    m->events[first].after_fetches = after_fetches;
    m->owned = std::move(next);
  }
}

void MemoryBroker::Reassign(const std::string& group,
                            const std::map<std::string, std::vector<TopicPartition>>& assignment,
                            bool mid_batch, int after_fetches) {
  absl::MutexLock l(&mu_);
  SetAssignmentLocked(groups_[group], assignment, mid_batch, after_fetches);
}

std::map<std::string, std::vector<TopicPartition>> MemoryBroker::Assignment(
    const std::string& group) {
  absl::MutexLock l(&mu_);
  std::map<std::string, std::vector<TopicPartition>> out;
  for (const auto& [id, m] : groups_[group].members) out[id] = m->owned;
  return out;
}

void MemoryBroker::EndTxnLocked(Producer& p, bool commit) {
  for (const TopicPartition& tp : p.touched) {
    Partition& part = PartitionLocked(tp.first, tp.second);
    Stored marker;
    marker.offset = part.end++;
    marker.control = true;
    marker.txn = p.open;
    part.log.push_back(std::move(marker));
  }
  p.open->state = commit ? TxnState::kCommitted : TxnState::kAborted;
  for (auto& [group, offsets] : p.offsets) {
    Group& g = groups_[group];
    for (const auto& [tp, off] : offsets) {
      if (commit) g.committed[tp] = off;
      if (--g.pending[tp] <= 0) g.pending.erase(tp);
    }
  }
  p.open.reset();
  p.touched.clear();
  p.offsets.clear();
}

void MemoryBroker::FailChangelogReads(absl::Status status, int times) {
  absl::MutexLock l(&mu_);
  read_failure_ = std::move(status);
  read_failures_left_ = times;
}

void MemoryBroker::FenceProducer(const std::string& transactional_id) {
  absl::MutexLock l(&mu_);
  Producer& p = producers_[transactional_id];
  if (p.open) EndTxnLocked(p, /*commit=*/false);
  ++p.epoch;
}

uint64_t MemoryBroker::produced_records() const {
  absl::MutexLock l(&mu_);
  return produced_;
}

}  // namespace cybersyn::stream
