// MemoryBroker: an in-memory Kafka for the broker-free test driver (test_driver.h) and unit
// tests. It keeps what exactly-once depends on, the way Kafka does it:
// - partitioned logs with offsets; a transaction's records are appended when produced and
//   become visible to read_committed readers only when it commits; commit and abort append a
//   control marker (one offset) to every partition the transaction touched; the last stable
//   offset stops readers at the first record of an open transaction;
// - transactional ids with epochs: InitTransactions fences the previous producer of the id and
//   aborts its open transaction;
// - consumer groups with committed offsets, offsets committed with a transaction
//   (pending, so Committed() fails as UNSTABLE until it completes), rebalance events delivered
//   inside ConsumeBatch: cooperative (sticky: members keep what they own, only the partitions
//   that change owner are revoked and assigned) unless a member's overrides ask for "range"
//   (eager: everything is revoked and assigned again); paired topics follow the subscribed
//   ones (io.h); as in librdkafka, a consumer's Committed() called from another thread is not
//   answered while that consumer delivers rebalance events (it times out);
// - log compaction (Compact): the last value per key stays, tombstones and markers go (offsets
//   keep their gaps), as after delete.retention.ms.
// Tests steer what a real cluster does on its own: moving partitions between members
// (Reassign, optionally in the middle of a consumer's batch), fencing a producer, failing
// changelog reads.
//
// Thread-safety: safe for concurrent use; listeners and delivery reports are called without the
// broker's lock held, on the thread that called the client.
#ifndef CYBERSYN_STREAM_MEMORY_BROKER_H_
#define CYBERSYN_STREAM_MEMORY_BROKER_H_

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "stream/io.h"

namespace cybersyn::stream {

using TopicPartition = std::pair<std::string, int32_t>;

class MemoryBroker {
 public:
  // Topics created implicitly (by producing, subscribing or EnsureTopics without a count) get
  // `default_partitions`.
  explicit MemoryBroker(int default_partitions = 4);
  ~MemoryBroker();
  MemoryBroker(const MemoryBroker&) = delete;
  MemoryBroker& operator=(const MemoryBroker&) = delete;

  // Clients over this broker (the broker must outlive it and them).
  std::unique_ptr<KafkaIo> NewIo();

  // --- topics and records ---
  void CreateTopic(const std::string& topic, int partitions);  // no-op when it exists
  int Partitions(const std::string& topic);
  // The partition a key goes to (partition -1 when producing).
  int32_t PartitionFor(const std::string& topic, absl::string_view key);
  // Appends outside any transaction (a plain producer), visible at once. Returns the offset.
  int64_t Append(const std::string& topic, int32_t partition, absl::string_view key,
                 std::optional<std::string> value, const KafkaHeaders& headers = {});
  struct Record {
    int64_t offset = 0;
    std::string key;
    std::optional<std::string> value;  // nullopt: tombstone
    KafkaHeaders headers;
  };
  // The read_committed view of a partition from `from` (data records only).
  std::vector<Record> ReadCommitted(const std::string& topic, int32_t partition, int64_t from = 0);
  // Every partition's read_committed records, in partition then offset order.
  std::vector<std::pair<int32_t, Record>> ReadCommittedAll(const std::string& topic);
  // Log start and end offset (the end counts markers and open transactions' records).
  std::pair<int64_t, int64_t> Watermarks(const std::string& topic, int32_t partition);
  int64_t LastStableOffset(const std::string& topic, int32_t partition);
  // Compacts every partition of `topic`: keeps the last committed record of each key, removes
  // tombstones (delete.retention.ms has passed), markers and aborted records.
  void Compact(const std::string& topic);
  // Overwrites the value of a stored record in place (a corrupted changelog entry).
  absl::Status CorruptRecordForTest(const std::string& topic, int32_t partition, int64_t offset,
                                    std::string value);

  // --- groups ---
  std::map<TopicPartition, int64_t> CommittedOffsets(const std::string& group);
  // Moves partitions of the subscribed topics (paired ones follow): each member (by
  // group.instance.id, or member id when dynamic) gets exactly `assignment[member]`; members not
  // named get nothing. Cooperative members are told about what they lose and gain; eager ones
  // revoke all they have, then take their new set. With `mid_batch`, the events are delivered
  // after the member's next ConsumeBatch fetched its messages (the batch straddles the
  // rebalance, as librdkafka may do); `after_fetches` more fetches go first (the runtime has
  // processed what they returned: its work is pending when the events arrive).
  void Reassign(const std::string& group,
                const std::map<std::string, std::vector<TopicPartition>>& assignment,
                bool mid_batch = false, int after_fetches = 0);
  // Members' ids (group.instance.id when static) and what they own now.
  std::map<std::string, std::vector<TopicPartition>> Assignment(const std::string& group);

  // --- faults ---
  // The next changelog Read of any reader fails with `status`, `times` times.
  void FailChangelogReads(absl::Status status, int times = 1);
  // The producer of `transactional_id` is fenced: its next operations fail FAILED_PRECONDITION
  // and it reports the fatal error.
  void FenceProducer(const std::string& transactional_id);
  // Producer sends to the broker, counted (tests of what a commit writes).
  uint64_t produced_records() const;

 private:
  friend class MemoryConsumer;
  friend class MemoryReader;
  friend class MemoryProducer;
  friend class MemoryIo;

  enum class TxnState { kNone, kOpen, kCommitted, kAborted };
  struct Txn {
    TxnState state = TxnState::kNone;
  };
  struct Stored {
    int64_t offset = 0;
    std::string key;
    std::optional<std::string> value;
    KafkaHeaders headers;
    bool control = false;
    bool removed = false;
    std::shared_ptr<Txn> txn;  // null: not transactional
  };
  struct Partition {
    std::deque<Stored> log;  // offsets ascending, from start
    int64_t start = 0;
    int64_t end = 0;
  };
  struct Event {
    bool assign = false;  // else revoke
    std::vector<TopicPartitionOffset> partitions;
    bool mid_batch = false;
    int after_fetches = 0;  // mid_batch: fetches to let pass first
  };
  struct Member {
    std::string id;
    bool cooperative = true;
    std::vector<std::string> topics;
    std::vector<TopicPartition> owned;
    std::deque<Event> events;
  };
  struct Group {
    std::map<std::string, Member*> members;  // by id
    std::map<TopicPartition, int64_t> committed;
    std::map<TopicPartition, int> pending;  // offsets in open transactions
  };
  struct Producer {
    uint64_t epoch = 0;
    std::shared_ptr<Txn> open;
    std::set<TopicPartition> touched;
    std::map<std::string, std::map<TopicPartition, int64_t>> offsets;  // group ->
  };

  Partition& PartitionLocked(const std::string& topic, int32_t partition)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  int PartitionsLocked(const std::string& topic) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  int64_t LsoLocked(const Partition& p) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  static bool Visible(const Stored& s);
  // Reads committed data of `p` from `*position` up to its LSO (at most `max`), moving
  // `*position` past everything it skipped.
  void ReadLocked(const std::string& topic, int32_t partition, Partition& p, int64_t* position,
                  size_t max, std::vector<ConsumedMessage>* out) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Range when a member is eager, else sticky (owners keep their partitions up to a fair share).
  void AssignLocked(Group& g) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void SetAssignmentLocked(Group& g, const std::map<std::string, std::vector<TopicPartition>>& a,
                           bool mid_batch, int after_fetches = 0)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void EndTxnLocked(Producer& p, bool commit) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const int default_partitions_;
  mutable absl::Mutex mu_;
  std::map<std::string, std::vector<Partition>> topics_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, Group> groups_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, Producer> producers_ ABSL_GUARDED_BY(mu_);  // by transactional id
  std::set<std::string> fenced_ ABSL_GUARDED_BY(mu_);
  absl::Status read_failure_ ABSL_GUARDED_BY(mu_);
  int read_failures_left_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t produced_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t next_member_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace cybersyn::stream

#endif  // CYBERSYN_STREAM_MEMORY_BROKER_H_
