// Publisher: batches validated records per enterprise into RecordBatch messages keyed by the
// enterprise path and publishes them with an idempotent producer (acks=all), through a
// store-and-forward disk buffer.
//
// Every sealed batch is written to the buffer (a KvStore, RocksDB in production) BEFORE it is
// produced, together with the next sequence number and the source position, in one atomic write;
// it is deleted only after the broker confirmed it. The write is not fsynced: a kill -9 keeps
// what is in the page cache, only a power loss could lose the last seals (RocksDB then recovers
// a consistent prefix, and the stored source position goes back with it). A store without its
// write-ahead log (buffer_wal.h) makes a kill -9 such a loss of everything since the last flush.
//
// Pipelining: sealing only hands the encoded batches to a writer thread, which writes them to
// the buffer and produces them, in seal order; the caller's thread meanwhile encodes the next
// records. A sealed group that is not written yet is not durable, but neither is the source
// position stored with it, so a crash makes the source re-read those records (with the same
// sequence numbers, which are persisted with the group too). So a kill -9 or a broker outage loses
// nothing: on restart every batch still in the buffer is produced again, in sequence order (the
// aggregator deduplicates on (gateway id, sequence), so resending a batch that did arrive is
// harmless), and the source resumes after the stored position.
//
// Sequence numbers are assigned per record when it is added, strictly increasing per gateway, and
// persisted with the batches. All open batches are sealed together (when one reaches
// max_records / max_bytes, or the oldest is `linger` old) so that the stored source position is
// exact: everything before it is in the buffer, nothing after it is.
//
// Memory stays bounded: at most `max_in_flight_bytes` of batches are handed to librdkafka; the
// rest waits on disk and is read back in order as deliveries free room. When the buffer holds
// `buffer_max_bytes`, Add blocks (backpressure on the source); nothing is dropped. An optional
// soft bound (`soft_max_buffer_bytes`) blocks it much earlier, but only while the broker is
// confirming: a source that can wait (re-readable input) then stays just ahead of Kafka instead of
// piling up a backlog that the store must flush and compact; in an outage it lifts, and the
// buffer fills up to buffer_max_bytes as before.
//
// Holding in memory (`hold_unconfirmed_in_memory`, for a buffer without a write-ahead log: a
// re-readable source with a position provider): while the broker is confirming, a sealed group is
// produced from memory and never written to the store; the store then holds a checkpoint instead,
// the source position and next sequence number at the start of the oldest group not fully
// confirmed (or after the newest group when none is open), rewritten as groups complete. A
// WAL-less store keeps only its last flush, so unconfirmed batches in its memtable were no safer
// than in memory: a crash made the source re-read from the flushed position either way, and now
// it re-reads from the flushed checkpoint, with the same sequence numbers. Groups that cannot be
// produced at once (broker away, stalled, in-flight limit) are written to the store as before,
// with the checkpoint. Stored batches at or past the stored next sequence number are redundant
// with that re-read (a checkpoint before them was stored), so Create deletes them. Stop writes the
// batches still held to the store, with the checkpoint after the last group, so the next run
// (any input) starts as after a run with the store. `flush_store` is called after every
// `flush_every_bytes` of confirmed held bytes, so that a crash re-reads a bounded stretch.
//
// Per-enterprise order is kept: batches are produced in sequence order, librdkafka's idempotent
// producer keeps order per partition across retries, and messages never time out locally
// (message.timeout.ms=0), so an outage only delays them. A batch that fails permanently must not
// be overtaken by a later batch of its enterprise (consumers deduplicate on a per-(gateway,
// enterprise) high-water mark, so an overtaken batch would be dropped as a duplicate): the
// producer runs with enable.gapless.guarantee, so such a failure is fatal for the producer instead
// of leaving a gap; the publisher then purges it, creates a new one and resends every unconfirmed
// batch in sequence order.
//
// Message size: no batch is produced larger than the message limit, the smaller of the producer's
// message.max.bytes and the topic's max.message.bytes (read through the admin API when the topic
// is ready, `read_topic_limit`; kept in the buffer across restarts). Batches are sealed below it,
// the producer's batch.size is capped by it, and a buffered batch over it (sealed under a larger
// limit, or one the broker refuses as too large, which lowers the limit) is re-packed into
// batches that fit.
// A record too large for any batch, or one that cannot be decoded, is handed to `set_aside` (a
// file a person can resend from) and dropped from the buffer, so one record never wedges the ones
// behind it. The gateway rejects records over the limit before they are added; this is for what
// was accepted under a larger one.
//
// Thread-safety: Add/SealAll/MaybeLinger/Stop may be called from any thread (serialised by a
// mutex for the open batches, open_mu_, which the background threads rarely take: they work
// under mu_, so adding a record does not wait while they produce). A writer thread writes and
// produces sealed batches; a delivery thread serves delivery reports and refills from disk.
// Lock order: open_mu_ before mu_.
#ifndef CYBERSYN_INGEST_PUBLISHER_H_
#define CYBERSYN_INGEST_PUBLISHER_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/kafka_admin.h"
#include "common/kafka_producer.h"
#include "common/kv_store.h"
#include "cybersyn/v1/record.pb.h"
#include "ingest/message_limit.h"
#include "ingest/record_ref.h"
#include "ingest/varint.h"

namespace cybersyn::ingest {

// Records the publisher cannot send (PublisherOptions::set_aside).
struct SetAside {
  std::string enterprise;
  uint64_t batch = 0;  // the batch's first sequence number
  std::string lines;   // "lines 12-40 of csv:/abs/x.csv" where its input lines are known, else ""
  struct Item {
    v1::Record record;   // with its sequence number (empty when it could not be decoded)
    std::string reason;  // "record of 1.2 MB exceeds the 1 MB message limit", ...
    std::string wire;    // its bytes, when it could not be decoded
  };
  std::vector<Item> items;
};

struct PublisherOptions {
  std::string gateway_id;
  std::string topic;  // <prefix>.records
  KafkaClientOptions client;
  std::map<std::string, std::string> producer_overrides;  // win over the defaults below
  int batch_max_records = 1000;
  uint64_t batch_max_bytes = 1 << 20;  // capped by the message limit (message_limit.h)
  absl::Duration linger = absl::Milliseconds(50);
  uint64_t buffer_max_bytes = uint64_t{1} << 30;
  uint64_t max_in_flight_bytes = uint64_t{64} << 20;
  // Soft bound on unconfirmed bytes (buffered or being written), 0 = off. Applies only while the
  // broker is confirming: started, topic ready, connected, and (with batches unconfirmed) a
  // confirmation within `soft_stall`; otherwise only buffer_max_bytes does. The gateway sets it
  // when the buffer has no WAL, to two produce batches per partition in use (SoftBoundBytes).
  uint64_t soft_max_buffer_bytes = 0;
  absl::Duration soft_stall = absl::Seconds(2);
  // See the header comment. REQUIRES a position provider (SetPositionProvider) to take effect:
  // without one every group is written to the store.
  bool hold_unconfirmed_in_memory = false;
  std::function<void()> flush_store;  // may be empty
  uint64_t flush_every_bytes = uint64_t{64} << 20;
  // Creates the topic before the first produce; retried every few seconds while it fails
  // (batches stay buffered meanwhile). Empty: the topic is assumed to exist.
  std::function<absl::Status()> ensure_topic;
  // Read the topic's max.message.bytes (through the producer's connection) when the topic is
  // ready and after the broker refuses a batch as too large; unreadable: the producer's limit
  // applies. Off for the embedded broker, which keeps no topic configuration.
  bool read_topic_limit = false;
  // Called whenever the message limit changes (in Create with the stored one, then on the
  // delivery thread).
  std::function<void(uint64_t limit)> on_message_limit;
  // Takes records that cannot be sent (see the header); called on the delivery thread before
  // their batch leaves the buffer, and must have made them durable when it returns OK (else the
  // batch stays and this is retried). Empty: they are logged as errors.
  std::function<absl::Status(const SetAside&)> set_aside;
  const Clock* clock = Clock::Real();
  // Called after every delivery report (success or not), on the delivery thread.
  std::function<void(const absl::Status&, int records, absl::Duration latency)> on_delivery;
};

struct PublisherStats {
  uint64_t records_added = 0;
  uint64_t records_confirmed = 0;
  uint64_t batches_confirmed = 0;
  uint64_t delivery_errors = 0;
  uint64_t buffer_bytes = 0;  // bytes of batches in the disk buffer (unconfirmed)
  uint64_t buffer_batches = 0;
  uint64_t buffer_records = 0;  // unconfirmed records in the buffer
  uint64_t open_records = 0;    // added, not sealed yet
  uint64_t next_sequence = 0;
  uint64_t producer_recoveries = 0;  // producers replaced after a fatal error
  uint64_t soft_bound_waits = 0;     // seals that waited on soft_max_buffer_bytes
  uint64_t held_batches = 0;         // unconfirmed batches held in memory, not in the store
  uint64_t held_bytes = 0;           // their bytes (part of buffer_bytes)
  uint64_t groups_held = 0;          // sealed groups produced from memory (ever)
  uint64_t groups_stored = 0;        // sealed groups written to the store (ever)
  uint64_t redundant_dropped = 0;    // stored batches Create found past the checkpoint
  uint64_t message_limit = 0;        // bytes (message_limit.h)
  uint64_t producer_batch_size = 0;  // batch.size librdkafka applies: never over message_limit
  uint64_t batches_repacked = 0;     // batches over the message limit, re-packed
  uint64_t records_set_aside = 0;    // handed to set_aside
  bool topic_ready = false;
};

class Publisher {
 public:
  // `store` must outlive the publisher. Reads the buffer (pending batches, next sequence, stored
  // source position) but produces nothing until Start.
  static absl::StatusOr<std::unique_ptr<Publisher>> Create(PublisherOptions options,
                                                           KvStore* store);
  ~Publisher();  // Stop()

  // The librdkafka settings of the publisher's producer, on top of options.client: its defaults,
  // then options.producer_overrides (ingest_bench gives its baseline producer the same).
  static std::map<std::string, std::string> ProducerSettings(const PublisherOptions& options);

  // The source identity and position stored by the last seal of an earlier run, if any.
  std::optional<std::pair<std::string, std::string>> StoredPosition() const;
  // Makes seals store `identity` and the position `position()` returns (called on the thread
  // that calls Add, at seal time). REQUIRES: before Start; then only that thread may call
  // Add/SealAll/MaybeLinger, and the background thread does not seal on linger. May be called
  // again (e.g. with a constant final position when the source goes away).
  void SetPositionProvider(std::string identity, std::function<std::string()> position);

  // Names the input whose lines RecordRef::line counts from now on (in messages about batches).
  void SetLineSource(std::string name);

  // Creates the producer and starts producing the buffered batches, then new ones.
  absl::Status Start();

  // Moves the next sequence number `n` forward and writes it to the buffer (consumers only need
  // increasing numbers, so the gap is harmless; see buffer_wal.h). REQUIRES: no records open,
  // and not adding concurrently (before the first Add, or after Stop).
  absl::Status SkipSequences(uint64_t n);

  // Adds one validated record of `enterprise` (the Kafka key). Assigns its sequence number. May
  // seal, and then block while the buffer is full: until `deadline`, then RESOURCE_EXHAUSTED
  // (the record is not added). CANCELLED if Stop() was called meanwhile; other errors are
  // failures to write the buffer.
  absl::Status Add(const v1::Record& record, absl::string_view enterprise,
                   absl::Time deadline = absl::InfiniteFuture());
  absl::Status Add(const RecordRef& record, absl::string_view enterprise,
                   absl::Time deadline = absl::InfiniteFuture());

  // Holds the lock of the open batches across several Adds from one thread: the gateway's source
  // loop adds 16 records per hold instead of paying a lock round trip per record (a third of the
  // source thread's CPU with Debian's abseil, which checks lock order on every Lock). Never hold
  // it while waiting for input: a linger seal on the delivery thread needs the same lock.
  class ABSL_SCOPED_LOCKABLE Appender {
   public:
    explicit Appender(Publisher* p) ABSL_EXCLUSIVE_LOCK_FUNCTION(p->open_mu_) : p_(p) {
      p_->open_mu_.Lock();
    }
    ~Appender() ABSL_UNLOCK_FUNCTION() { p_->open_mu_.Unlock(); }
    Appender(const Appender&) = delete;
    Appender& operator=(const Appender&) = delete;
    // As Publisher::Add. `token`, when not null, stands for `enterprise` (the same token always
    // with the same enterprise, e.g. its hierarchy node): a run of records of one enterprise
    // then skips comparing the path per record.
    absl::Status Add(const RecordRef& record, absl::string_view enterprise,
                     const void* token = nullptr) {
      return p_->AddLocked(record, enterprise, absl::InfiniteFuture(), token);
    }
    absl::Status Add(const v1::Record& record, absl::string_view enterprise) {
      return p_->AddLocked(RecordRef::Of(record), enterprise);
    }

   private:
    Publisher* p_;
  };
  // Seals every open batch into the buffer (and hands it to the producer).
  absl::Status SealAll();
  // Seals if the oldest open batch is `linger` old.
  absl::Status MaybeLinger();
  // Seals what is open and waits until every record added before the call is written to the
  // disk buffer (what a gRPC acknowledgement promises: a kill -9 from then on loses none of
  // them). Errors, by `deadline`: RESOURCE_EXHAUSTED when the buffer is full (the records stay
  // open, to be sealed when there is room), DEADLINE_EXCEEDED when the writer is behind, the
  // write error when the buffer cannot be written, UNAVAILABLE when the publisher stops first.
  absl::Status Persist(absl::Time deadline);
  // Waits until every sealed batch is confirmed (the buffer is empty) or `timeout` passed
  // (DEADLINE_EXCEEDED saying how much is left).
  absl::Status WaitConfirmed(absl::Duration timeout);
  // Seals, stops producing and the background thread; unconfirmed batches stay in the buffer.
  // Waits up to `grace` for outstanding deliveries first.
  void Stop(absl::Duration grace = absl::Seconds(5));
  // Lifts backpressure for good (a blocked Add gets through), so the thread feeding records can
  // notice it is asked to stop and seal where its source really is (Gateway::Stop).
  void Unblock();

  PublisherStats stats() const;
  // Makes the producer fail fatally, as a permanent delivery failure under
  // enable.gapless.guarantee does (tests of the recovery). REQUIRES: started.
  void InjectFatalErrorForTest();
  // True while the broker answers metadata requests (checked every 2 s).
  bool connected() const { return connected_.load(); }

 private:
  struct LineRange {  // input lines of a batch's records, where known (0: unknown)
    int64_t first = 0;
    int64_t last = 0;
  };
  struct OpenBatch {
    std::string enterprise;
    LineRange lines;
    // The buffer value being built in place: "<enterprise>\n<10-digit record count>\n" and the
    // encoded RecordBatch so far (fields 1, 2 and every record); the count is filled at seal.
    // Only the first `used` bytes are written; the rest is room for the next records (cut at seal).
    std::string bytes;
    size_t used = 0;
    int records = 0;
    uint64_t first_seq = 0;
  };
  struct Checkpoint {      // where a re-read resumes: source position and next sequence number
    std::string position;  // "<identity>\n<position>"
    uint64_t next_seq = 0;
  };
  struct SealedGroup {  // sealed together, written to the buffer in one write
    std::vector<OpenBatch> batches;
    uint64_t next_seq = 0;
    std::optional<std::string> position;  // "<identity>\n<position>"
    std::optional<Checkpoint> start;      // the previous group's end (hold_unconfirmed_in_memory)
    uint64_t bytes = 0;
    uint64_t records = 0;
  };
  struct Pending {  // sealed and buffered, not yet handed to the producer
    uint64_t id = 0;
    uint64_t bytes = 0;
    int records = 0;
    LineRange lines;
  };
  struct InFlight {
    uint64_t bytes = 0;
    int records = 0;
    absl::Time sealed_at;
    LineRange lines;
  };
  struct HeldBatch {    // produced from memory, not in the store
    std::string value;  // as the store would hold it
    uint64_t group = 0;
  };
  struct HeldGroup {
    Checkpoint start;
    int unconfirmed = 0;  // its batches still in held_
  };

  Publisher() = default;
  absl::Status AddLocked(const RecordRef& record, absl::string_view enterprise,
                         absl::Time deadline = absl::InfiniteFuture(), const void* token = nullptr)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(open_mu_);
  // Seals every open batch; when the buffer is full waits for room (until `deadline`, then
  // RESOURCE_EXHAUSTED with the batches left open), or (block = false) leaves the batches open.
  absl::Status SealLocked(bool block = true, absl::Time deadline = absl::InfiniteFuture())
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(open_mu_) ABSL_LOCKS_EXCLUDED(mu_);
  // Whether a sealed batch may go to the producer right away (nothing waits before it, room in
  // flight, no failure backoff).
  bool CanProduceNowLocked(absl::Time now) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Whether the broker is confirming (the soft bound applies), see PublisherOptions.
  bool ConfirmingLocked(absl::Time now) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Produces buffered batches while there is room in flight. REQUIRES: topic ready.
  void RefillLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Hands one batch to the producer; false when it cannot now (queue full, error, or the batch
  // is over the message limit: RefillLocked re-packs it).
  bool ProduceLocked(uint64_t id, const std::string& key, const std::string& value, int records,
                     absl::Time sealed_at, LineRange lines) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Whether a buffered batch value (with its "<enterprise>\n<count>\n" prefix) fits a message.
  bool FitsLocked(absl::string_view key, size_t value_bytes) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  struct Part {  // a batch re-packed under the message limit
    uint64_t id = 0;
    int records = 0;
    std::string value;  // as the store holds it
  };
  struct Repacked {
    std::vector<Part> parts;
    SetAside aside;  // what fits no part, or cannot be decoded
  };
  // The records of batch `p` (its RecordBatch `bytes`) in batches under the message limit.
  Repacked PackWithinLimitLocked(const Pending& p, absl::string_view enterprise,
                                 absl::string_view bytes) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Re-packs the pending batch `p` (value `value`) into batches under the message limit, setting
  // aside what cannot be sent, and puts them in its place in pending_. False when that failed
  // (set-aside or buffer write; retried later).
  bool RepackLocked(const Pending& p, const std::string& value) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Sets message_limit_ and value_room_.
  void StoreMessageLimit(uint64_t limit);
  // Makes `limit` the message limit (stored in the buffer; on_message_limit called).
  void SetMessageLimitLocked(uint64_t limit, absl::string_view why)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // After the broker refused a batch of `refused_bytes` as too large: a lower limit (from the
  // topic's configuration when it says so, else below the refused size).
  void LowerMessageLimit(uint64_t refused_bytes);
  // The topic's max.message.bytes (read_topic_limit), through the producer's connection or a
  // connection of its own. Delivery thread only (uses producer_).
  absl::StatusOr<uint64_t> ReadTopicLimit(bool own_connection);
  // "lines 12-40 of csv:/x.csv", or "".
  std::string DescribeLinesLocked(LineRange lines) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status CreateProducer();
  // What the producer gets: ProducerSettings under the config's kafka.properties/producer.
  std::map<std::string, std::string> EffectiveProducerSettings() const;
  // Replaces a producer that hit a fatal error (or whose batch.size is over a lowered message
  // limit); unconfirmed batches go back to pending_.
  void RecoverFromFatal(const std::string& reason);
  void WriterLoop();
  void DeliveryLoop();
  // Delivery thread: creates the topic, reads its message limit (replacing the producer when its
  // batch.size is over it) and starts producing. False: retry later.
  bool MakeTopicReady();
  void MonitorLoop();
  void OnReport(const DeliveryReport& report);
  // Where a crash may resume now (hold_unconfirmed_in_memory); empty before the first group.
  std::optional<Checkpoint> CheckpointLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Registers `g` as held and produces it. REQUIRES: the broker is confirming.
  void HoldLocked(SealedGroup& g, absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Stop: writes the batches still held to the store, with the checkpoint after the last group
  // (also when none is held).
  void StoreHeld();

  PublisherOptions options_;
  KvStore* store_ = nullptr;
  // Replaced after a fatal error (by the delivery thread, under mu_); other threads take a
  // reference under mu_.
  std::shared_ptr<KafkaProducer> producer_;

  mutable absl::Mutex open_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  absl::flat_hash_map<std::string, size_t> open_index_ ABSL_GUARDED_BY(open_mu_);
  std::vector<OpenBatch> open_ ABSL_GUARDED_BY(open_mu_);
  // Index in open_ of the batch the last record went to: records come in runs per enterprise,
  // so this saves most lookups (hashing the path) in open_index_.
  size_t last_open_ ABSL_GUARDED_BY(open_mu_) = 0;
  const void* last_token_ ABSL_GUARDED_BY(open_mu_) = nullptr;  // the token of that record
  // The encodings of next_seq_ and of the last record's event time (varint.h).
  EncodedVarint seq_varint_ ABSL_GUARDED_BY(open_mu_);
  EncodedVarint time_varint_ ABSL_GUARDED_BY(open_mu_);
  // A batch reached max_bytes and the seal after its overflowing record did not happen yet (the
  // buffer is full): the next overflow seals before adding instead, so open batches stay bounded.
  bool overflow_open_ ABSL_GUARDED_BY(open_mu_) = false;
  std::atomic<uint64_t> open_records_{0};  // written under open_mu_
  absl::Time oldest_open_ ABSL_GUARDED_BY(open_mu_);
  std::atomic<uint64_t> next_seq_{1};       // written under open_mu_
  std::atomic<uint64_t> records_added_{0};  // written under open_mu_
  std::atomic<bool> stop_adding_{false};    // Stop() finished: Add is CANCELLED
  std::atomic<bool> write_failed_{false};   // write_error_ is set

  mutable absl::Mutex mu_;
  absl::CondVar room_cv_;  // signalled when batches are confirmed (room in the buffer)
  std::deque<SealedGroup> sealed_ ABSL_GUARDED_BY(mu_);  // for the writer thread, in order
  uint64_t sealed_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t sealed_records_ ABSL_GUARDED_BY(mu_) = 0;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;  // the writer holds a group outside sealed_
  // Every record with a smaller sequence number is in the disk buffer (or confirmed): the
  // next_seq of the last group written (groups are written in seal order).
  uint64_t durable_seq_ ABSL_GUARDED_BY(mu_) = 1;
  absl::Status write_error_ ABSL_GUARDED_BY(mu_);  // sticky: the buffer could not be written
  absl::CondVar sealed_cv_;                        // signalled when sealed_ grows or on stop
  bool producer_broken_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t producer_recoveries_ ABSL_GUARDED_BY(mu_) = 0;
  std::deque<Pending> pending_ ABSL_GUARDED_BY(mu_);
  std::map<uint64_t, InFlight> in_flight_ ABSL_GUARDED_BY(mu_);
  uint64_t in_flight_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t buffer_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t buffer_batches_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t buffer_records_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t records_confirmed_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t batches_confirmed_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t delivery_errors_ ABSL_GUARDED_BY(mu_) = 0;
  bool topic_ready_ ABSL_GUARDED_BY(mu_) = false;
  // Last confirmation, or when unconfirmed batches appeared after none (for soft_stall).
  absl::Time last_progress_ ABSL_GUARDED_BY(mu_);
  uint64_t soft_bound_waits_ ABSL_GUARDED_BY(mu_) = 0;
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool unblocked_ ABSL_GUARDED_BY(mu_) = false;  // Unblock(): no backpressure
  bool draining_ ABSL_GUARDED_BY(mu_) = false;   // Stop() is sealing: no backpressure
  absl::Time retry_failed_after_ ABSL_GUARDED_BY(mu_);
  std::optional<std::pair<std::string, std::string>> stored_position_;
  std::string identity_ ABSL_GUARDED_BY(open_mu_);
  // The end of the last sealed group (the next group's start), once a position provider is set.
  std::optional<Checkpoint> prev_end_ ABSL_GUARDED_BY(open_mu_);
  // Held batches by id, held groups from held_groups_base_ on (front: the oldest open one).
  absl::flat_hash_map<uint64_t, HeldBatch> held_ ABSL_GUARDED_BY(mu_);
  std::deque<HeldGroup> held_groups_ ABSL_GUARDED_BY(mu_);
  uint64_t held_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t held_groups_base_ ABSL_GUARDED_BY(mu_) = 0;
  // The end of the newest group held, or written to the store (after the write).
  std::optional<Checkpoint> written_end_ ABSL_GUARDED_BY(mu_);
  uint64_t groups_held_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t groups_stored_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t redundant_dropped_ = 0;  // set by Create
  // The message limit; read without the lock by the adding thread (a batch sealed under a stale
  // one is re-packed before it is produced).
  std::atomic<uint64_t> message_limit_{0};
  // min(batch_max_bytes, MaxBatchValueBytes(message_limit_, 0)): what a batch value (plus its
  // key) may reach; the adding thread reads it per record.
  std::atomic<uint64_t> value_room_{0};
  uint64_t producer_limit_ = kDefaultMessageLimit;  // the producer's message.max.bytes
  // Batches whose records were set aside but whose re-pack did not reach the buffer yet: a retry
  // does not set them aside twice.
  absl::flat_hash_set<uint64_t> set_aside_done_ ABSL_GUARDED_BY(mu_);
  uint64_t producer_batch_size_ ABSL_GUARDED_BY(mu_) = 0;  // batch.size of producer_
  uint64_t batches_repacked_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t records_set_aside_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t warned_batch_ ABSL_GUARDED_BY(mu_) =
      0;  // the last batch a produce failure was logged for
  std::string lines_source_ ABSL_GUARDED_BY(mu_);  // SetLineSource
  uint64_t held_confirmed_since_flush_ = 0;        // delivery thread only
  std::function<std::string()> position_ ABSL_GUARDED_BY(open_mu_);
  std::atomic<bool> position_mode_{false};  // a position provider is set

  // Batch strings the writer and delivery threads return for reuse (capacity kept), up to
  // kSpareBytes of capacity: enough for the batches a soft bound of 8 MB keeps in flight, which
  // come back in bursts (16 strings left the source allocating, zero-filling and page-faulting
  // new ones for most batches). A leaf lock.
  static constexpr uint64_t kSpareBytes = uint64_t{16} << 20;
  absl::Mutex spare_mu_;
  std::vector<std::string> spare_ ABSL_GUARDED_BY(spare_mu_);
  uint64_t spare_bytes_ ABSL_GUARDED_BY(spare_mu_) = 0;  // their capacities
  // Keeps `s` in spare_ if the budget allows (else it is freed). REQUIRES: spare_mu_ held.
  void KeepSpareLocked(std::string&& s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(spare_mu_);

  // Delivery reports collected inside Poll (which may run on any producing thread).
  struct Report {
    uint64_t id = 0;
    absl::Status status;
    RdKafka::ErrorCode error = RdKafka::ERR_NO_ERROR;
  };
  absl::Mutex dr_mu_;
  std::vector<Report> reports_ ABSL_GUARDED_BY(dr_mu_);

  std::atomic<bool> connected_{false};
  std::atomic<bool> quit_{false};
  bool writer_quit_ ABSL_GUARDED_BY(mu_) = false;
  std::thread writer_thread_;
  std::thread delivery_thread_;
  std::thread monitor_thread_;
};

// Encodes a Record the way RecordBatch field 3 carries it (for tests).
std::string EncodeRecordForTest(const v1::Record& record, uint64_t sequence);
std::string EncodeRecordForTest(const RecordRef& record, uint64_t sequence);

}  // namespace cybersyn::ingest

#endif  // CYBERSYN_INGEST_PUBLISHER_H_
