// Gateway: the plant edge as a library (what `cybersyn gateway` and `cybersyn demo` run).
// Validates records from sources (files, stdin, the simulator, gRPC pushes via Feed), publishes
// them through the store-and-forward Publisher to <prefix>.records, and exports metrics:
//   cybersyn_gateway_records_accepted_total, cybersyn_gateway_records_rejected_total{reason},
//   cybersyn_gateway_records_confirmed_total, cybersyn_gateway_buffer_bytes,
//   cybersyn_gateway_buffer_records, cybersyn_gateway_delivery_latency_seconds (histogram),
//   cybersyn_gateway_broker_connected (1/0), cybersyn_gateway_records_set_aside_total,
//   cybersyn_gateway_message_limit_bytes.
// With kafka.bootstrap "embedded" and no brokers override it refuses to start unless
// GatewayOptions::embedded_broker asks for an EmbeddedBroker in-process (data in it lives only as
// long as the process).
// Records are checked against the message limit (the smaller of the producer's message.max.bytes
// and the topic's max.message.bytes, read through the admin API); what the publisher must set
// aside anyway goes to a JSON-lines file under <buffer dir>/set-aside/ (publisher.h).
// The disk buffer skips RocksDB's write-ahead log when the input Run will read can be re-read
// after a crash (GatewayOptions::buffer_wal and ::input, buffer_wal.h); Feed is then refused.
//
// Thread-safety: Feed may be called from many threads; Run from one thread at a time (and not
// concurrently with Feed if the source should resume after a restart); Stop from the owner.
#ifndef CYBERSYN_INGEST_GATEWAY_H_
#define CYBERSYN_INGEST_GATEWAY_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "common/config.h"
#include "common/embedded_broker.h"
#include "common/kv_store.h"
#include "common/rocksdb_store.h"
#include "ingest/buffer_wal.h"
#include "ingest/publisher.h"
#include "ingest/record_source.h"
#include "ingest/reject_file.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace cybersyn::ingest {

struct GatewayOptions {
  std::shared_ptr<const Config> config;  // required
  std::string brokers;                   // overrides config kafka.bootstrap when non-empty
  std::string buffer_dir;                // overrides gateway.buffer_dir when non-empty
  uint64_t buffer_max_bytes = 0;         // 0: gateway.buffer_max_bytes
  uint64_t max_in_flight_bytes = uint64_t{64} << 20;
  std::map<std::string, std::string> producer_overrides;
  // Start an in-process broker when the config says kafka.bootstrap "embedded" (and `brokers` is
  // empty); otherwise Start refuses such a config (FAILED_PRECONDITION).
  bool embedded_broker = false;
  // Read the topic's max.message.bytes through the admin API (publisher.h). Off for a
  // mock-cluster broker (`cybersyn demo`'s), which does not answer DescribeConfigs.
  bool read_topic_limit = true;
  // The validator to use (and to keep at the message limit), e.g. the one a source was opened
  // with; null: the gateway makes its own.
  RecordValidator* validator = nullptr;
  const Clock* clock = Clock::Real();
  std::shared_ptr<prometheus::Registry> registry;  // null: the gateway makes its own
  // The buffer's write-ahead log (buffer_wal.h). The default (auto, no input declared) keeps it.
  BufferWal buffer_wal = BufferWal::kAuto;
  // What this gateway will read: Run must then be given a source with input.identity. Start
  // fails (INVALID_ARGUMENT) for buffer_wal off with an input that cannot be re-read.
  BufferWalInput input;
};

enum class OnError { kSkip, kStop };

struct RunOptions {
  OnError on_error = OnError::kSkip;
  double rate = 0;  // wall-clock records/s; 0 = as the source allows (speedup, or unpaced)
  // Called for every rejected record (e.g. to print it); may be empty.
  std::function<void(const RecordError&)> report;
  // Set to stop Run early (e.g. by a signal handler thread).
  const std::atomic<bool>* cancel = nullptr;
  // > 0: read the source from this line (RecordSource::SeekLine) instead of resuming after the
  // stored position. The lines get new sequence numbers: downstream they are new records.
  int64_t from_line = 0;
};

struct RunSummary {
  uint64_t read = 0;  // records and rejected lines
  uint64_t accepted = 0;
  uint64_t rejected = 0;
  std::map<std::string, uint64_t> rejected_by_reason;
  bool stopped_on_error = false;
  bool resumed = false;     // continued after a stored position
  bool bad_header = false;  // a CSV header the source could not use ended it
};

struct GatewayStats {
  uint64_t accepted = 0;
  uint64_t rejected = 0;
  uint64_t confirmed = 0;
  uint64_t buffer_bytes = 0;
  uint64_t buffer_records = 0;
  uint64_t next_sequence = 0;
  uint64_t producer_recoveries = 0;  // producers replaced after a fatal error
  uint64_t set_aside = 0;            // records the publisher could not send (set_aside_path)
  std::string set_aside_path;        // where they are, once there are any
  uint64_t message_limit = 0;        // bytes
  bool connected = false;
  bool buffer_wal = true;  // the disk buffer writes RocksDB's write-ahead log
};

class Gateway {
 public:
  // Opens the buffer, creates the producer and starts resending what the buffer holds. Logs
  // whether the buffer writes its WAL and why; when an earlier run did not stop cleanly (with the
  // WAL or without) and this one is not the same input resuming, moves the next sequence number
  // kSequenceJump forward first (and logs a warning saying why).
  static absl::StatusOr<std::unique_ptr<Gateway>> Start(GatewayOptions options);
  ~Gateway();  // Stop()

  // Runs `source` to its end (or the first error with kStop, or cancel): validated records are
  // published, rejected ones reported and counted. A resumable source continues after the
  // position stored by an earlier run with the same identity (or from options.from_line); it
  // refuses (FAILED_PRECONDITION, naming the first changed line where known) when the input
  // changed before that position. Does not wait for confirmation.
  // Errors: failures to write the buffer (the source is not read further); without the buffer's
  // WAL, FAILED_PRECONDITION unless `source` is the declared input (GatewayOptions::input) and
  // nothing was published yet (its position must be stored with every seal).
  absl::StatusOr<RunSummary> Run(RecordSource& source, const RunOptions& options);

  // Validates and publishes one record (gRPC). INVALID_ARGUMENT "<field>: <problem>" when it is
  // rejected (and `err`, if given, filled). May block on a full buffer, until `deadline`: then
  // RESOURCE_EXHAUSTED and the record is not taken. Returning OK does NOT mean the record is
  // durable yet; Persist does. FAILED_PRECONDITION when the buffer has no WAL (a pushed record
  // could not be re-read after a crash).
  absl::Status Feed(const v1::Record& record, RecordError* err = nullptr,
                    absl::Time deadline = absl::InfiniteFuture());
  // Waits until every record Feed took before the call is in the disk buffer (sealing the open
  // batches): see Publisher::Persist for the errors.
  absl::Status Persist(absl::Time deadline);

  // Starts producing (resending the buffer first) without a source, e.g. for gRPC-only
  // gateways. Run and Feed call it themselves. Idempotent.
  absl::Status StartPublishing();
  // Seals open batches and waits until every buffered record is confirmed.
  absl::Status Drain(absl::Duration timeout);
  // Stops publishing; what is unconfirmed stays in the disk buffer for the next start. Flushes the
  // buffer and then removes the run marker (kept if the flush fails).
  void Stop(absl::Duration grace = absl::Seconds(5));

  GatewayStats stats() const;
  // Counts a record an input rejected before Feed (cybersyn_gateway_records_rejected_total).
  void CountRejected(const std::string& reason);
  // Makes the Kafka producer fail fatally (tests of the in-order resend). REQUIRES: publishing.
  void InjectProducerFatalErrorForTest() { publisher_->InjectFatalErrorForTest(); }
  const RecordValidator& validator() const { return *validator_; }
  // The file records the publisher set aside go to (created when the first one does).
  const std::string& set_aside_path() const { return set_aside_path_; }
  const Config& config() const { return *options_.config; }
  const std::string& bootstrap() const { return bootstrap_; }
  const std::string& topic() const { return topic_; }
  // Whether the disk buffer writes RocksDB's write-ahead log, and why (the start-up log line).
  bool buffer_wal() const { return buffer_wal_; }
  const std::string& buffer_wal_reason() const { return buffer_wal_reason_; }
  std::shared_ptr<prometheus::Registry> registry() const { return registry_; }

 private:
  Gateway() = default;
  // Run: where `source` starts (from_line, the stored position, or its start).
  absl::Status PlaceSource(RecordSource& source, const std::string& identity, int64_t from_line,
                           RunSummary* summary);
  // Writes records the publisher could not send to the set-aside file (PublisherOptions).
  absl::Status WriteSetAside(const SetAside& aside);
  // Skips kSequenceJump sequence numbers, durably (see buffer_wal.h). `why` for the warning.
  absl::Status JumpSequences(const std::string& why);
  // Stop, buffer part: flush and remove the run marker (an unclean run resumed jumps first).
  void FinishBufferRun();
  void ExportLoop();

  GatewayOptions options_;
  std::string bootstrap_;
  std::string topic_;
  std::unique_ptr<EmbeddedBroker> embedded_;
  std::unique_ptr<KvStore> store_;
  RocksDbStore* rocks_ = nullptr;  // store_, for Flush
  std::string buffer_dir_;
  bool buffer_wal_ = true;
  std::string buffer_wal_reason_;
  // A run of the same input did not stop cleanly and this one resumes it: Kafka may hold
  // sequence numbers past the buffer's next one (re-read with the same numbers). Until the source
  // has been re-read past them the marker stays, and a clean stop jumps before removing it.
  bool resuming_unclean_ = false;
  bool buffer_run_started_ = false;  // Start got past the marker (Stop may remove it)
  prometheus::Counter* sequence_jumps_metric_ = nullptr;
  std::unique_ptr<RecordValidator> own_validator_;
  RecordValidator* validator_ = nullptr;  // own_validator_ or GatewayOptions::validator
  std::string set_aside_path_;
  std::unique_ptr<RejectFile> set_aside_;
  std::unique_ptr<Publisher> publisher_;

  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Counter* accepted_metric_ = nullptr;
  prometheus::Counter* confirmed_metric_ = nullptr;
  prometheus::Family<prometheus::Counter>* rejected_family_ = nullptr;
  prometheus::Gauge* buffer_bytes_metric_ = nullptr;
  prometheus::Gauge* buffer_records_metric_ = nullptr;
  prometheus::Gauge* buffer_held_metric_ = nullptr;
  prometheus::Gauge* connected_metric_ = nullptr;
  prometheus::Histogram* latency_metric_ = nullptr;
  prometheus::Counter* set_aside_metric_ = nullptr;
  prometheus::Gauge* message_limit_metric_ = nullptr;

  std::atomic<uint64_t> accepted_{0};
  std::atomic<uint64_t> rejected_{0};
  mutable absl::Mutex reasons_mu_;
  std::map<std::string, prometheus::Counter*> rejected_metrics_ ABSL_GUARDED_BY(reasons_mu_);
  // Stop waits for running Run calls to end: only the Run thread may seal while it reads the
  // source, or a seal from Stop stores a position past a record read but not yet added.
  absl::Mutex run_mu_;
  int runs_ ABSL_GUARDED_BY(run_mu_) = 0;
  std::atomic<bool> stop_runs_{false};
  absl::Mutex start_mu_;
  bool publishing_ ABSL_GUARDED_BY(start_mu_) = false;
  std::atomic<bool> quit_{false};
  std::thread export_thread_;
  bool stopped_ = false;
};

}  // namespace cybersyn::ingest

#endif  // CYBERSYN_INGEST_GATEWAY_H_
