#include "ingest/gateway.h"

#include <filesystem>
#include <map>
#include <optional>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/kafka_admin.h"
#include "common/kafka_stats.h"
#include "common/rocksdb_store.h"
#include "common/safe_text.h"
#include "common/status.h"
#include "ingest/buffer_sizing.h"
#include "spdlog/spdlog.h"

namespace cybersyn::ingest {

absl::StatusOr<std::unique_ptr<Gateway>> Gateway::Start(GatewayOptions options) {
  if (options.config == nullptr) return absl::InvalidArgumentError("gateway: no config");
  if (options.brokers.empty() && options.config->kafka.embedded() && !options.embedded_broker) {
    return absl::FailedPreconditionError(
        "gateway: kafka.bootstrap is \"embedded\" and no brokers were given: pass --brokers "
        "HOST:PORT (or set kafka.bootstrap) to publish to a Kafka cluster, or run `cybersyn "
        "demo` to try the whole system on its embedded broker (--embedded-broker starts one "
        "inside this gateway, whose data lives only as long as the process)");
  }
  absl::StatusOr<BufferWalChoice> wal = ChooseBufferWal(options.buffer_wal, options.input);
  if (!wal.ok()) return wal.status();
  std::unique_ptr<Gateway> g(new Gateway());
  g->options_ = std::move(options);
  const Config& config = *g->options_.config;
  g->topic_ = config.kafka.Topic("records");

  // Metrics.
  g->registry_ = g->options_.registry != nullptr ? g->options_.registry
                                                 : std::make_shared<prometheus::Registry>();
  auto& reg = *g->registry_;
  g->accepted_metric_ = &prometheus::BuildCounter()
                             .Name("cybersyn_gateway_records_accepted_total")
                             .Help("Records that passed validation and were buffered for Kafka")
                             .Register(reg)
                             .Add({});
  g->rejected_family_ = &prometheus::BuildCounter()
                             .Name("cybersyn_gateway_records_rejected_total")
                             .Help("Records rejected at the edge, by reason")
                             .Register(reg);
  g->confirmed_metric_ = &prometheus::BuildCounter()
                              .Name("cybersyn_gateway_records_confirmed_total")
                              .Help("Records the broker acknowledged (acks=all)")
                              .Register(reg)
                              .Add({});
  g->buffer_bytes_metric_ = &prometheus::BuildGauge()
                                 .Name("cybersyn_gateway_buffer_bytes")
                                 .Help(
                                     "Bytes of unconfirmed batches in the disk buffer (or held in "
                                     "memory instead, see cybersyn_gateway_buffer_held_bytes)")
                                 .Register(reg)
                                 .Add({});
  g->buffer_records_metric_ = &prometheus::BuildGauge()
                                   .Name("cybersyn_gateway_buffer_records")
                                   .Help("Unconfirmed records in the disk buffer")
                                   .Register(reg)
                                   .Add({});
  g->buffer_held_metric_ =
      &prometheus::BuildGauge()
           .Name("cybersyn_gateway_buffer_held_bytes")
           .Help(
               "Bytes of unconfirmed batches held in memory instead of the disk buffer (a buffer "
               "without its write-ahead log, whose input is re-read after a crash); part of "
               "cybersyn_gateway_buffer_bytes")
           .Register(reg)
           .Add({});
  g->connected_metric_ = &prometheus::BuildGauge()
                              .Name("cybersyn_gateway_broker_connected")
                              .Help("1 while the Kafka cluster answers, else 0")
                              .Register(reg)
                              .Add({});
  g->set_aside_metric_ =
      &prometheus::BuildCounter()
           .Name("cybersyn_gateway_records_set_aside_total")
           .Help(
               "Accepted records that could not be sent (over the message limit, or undecodable) "
               "and were written to the set-aside file instead (docs/ingest.md)")
           .Register(reg)
           .Add({});
  g->message_limit_metric_ =
      &prometheus::BuildGauge()
           .Name("cybersyn_gateway_message_limit_bytes")
           .Help(
               "The largest Kafka message the gateway produces: the smaller of the producer's "
               "message.max.bytes and the topic's max.message.bytes")
           .Register(reg)
           .Add({});
  g->latency_metric_ =
      &prometheus::BuildHistogram()
           .Name("cybersyn_gateway_delivery_latency_seconds")
           .Help("From sealing a batch into the buffer to the broker's acknowledgement")
           .Register(reg)
           .Add({}, prometheus::Histogram::BucketBoundaries{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                            0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
                                                            300});

  // Kafka: the embedded broker or the cluster.
  KafkaClientOptions client = KafkaClientFor(
      config.kafka, g->options_.brokers.empty() ? config.kafka.bootstrap : g->options_.brokers);
  std::function<absl::Status()> ensure;
  const TopicSpec spec{g->topic_, config.kafka.partitions, config.kafka.replication_factor, {}};
  if (g->options_.brokers.empty() && config.kafka.embedded()) {
    absl::StatusOr<std::unique_ptr<EmbeddedBroker>> broker = EmbeddedBroker::Start();
    if (!broker.ok()) return broker.status();
    g->embedded_ = *std::move(broker);
    client.bootstrap = g->embedded_->bootstrap();
    spdlog::warn(
        "gateway: embedded Kafka broker at {} (--embedded-broker): what it takes lives only as "
        "long as this process",
        client.bootstrap);
    EmbeddedBroker* b = g->embedded_.get();
    ensure = [b, spec] { return b->EnsureTopics({spec}); };
  } else {
    ensure = [client, spec] { return EnsureTopics(client, {spec}, absl::Seconds(2)); };
  }
  g->bootstrap_ = client.bootstrap;
  client.stats = std::make_shared<KafkaStats>(reg);

  // The disk buffer.
  const std::string dir =
      g->options_.buffer_dir.empty() ? config.gateway.buffer_dir : g->options_.buffer_dir;
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    return absl::FailedPreconditionError(
        absl::StrCat("gateway: cannot create buffer dir ", dir, ": ", ec.message()));
  }
  const uint64_t buffer_max_bytes = g->options_.buffer_max_bytes != 0
                                        ? g->options_.buffer_max_bytes
                                        : config.gateway.buffer_max_bytes;
  const uint64_t free_disk = FreeDiskBytes(dir);
  const BufferSizing sizing = SizeBuffer(free_disk, buffer_max_bytes);
  spdlog::info("gateway buffer {}: {} MiB memtables, {} ({} MiB free on its disk)", dir,
               sizing.write_buffer_bytes >> 20, sizing.compress ? "LZ4" : "no compression",
               free_disk >> 20);
  g->buffer_dir_ = dir;
  g->buffer_wal_ = wal->wal;
  g->buffer_wal_reason_ = wal->reason;
  // Read before the store is opened: it names the input of a run that did not stop cleanly
  // (buffer_wal.h).
  absl::StatusOr<std::optional<std::string>> marker = ReadRunMarker(dir);
  if (!marker.ok()) return Annotate(marker.status(), "gateway buffer");
  spdlog::info("gateway buffer {}: write-ahead log {} ({})", dir, wal->wal ? "on" : "off",
               wal->reason);
  prometheus::BuildGauge()
      .Name("cybersyn_gateway_buffer_wal")
      .Help(
          "1 if the disk buffer writes RocksDB's write-ahead log, 0 if the input is re-read "
          "after a crash instead (--buffer-wal)")
      .Register(reg)
      .Add({})
      .Set(wal->wal ? 1 : 0);
  g->sequence_jumps_metric_ =
      &prometheus::BuildCounter()
           .Name("cybersyn_gateway_sequence_jumps_total")
           .Help(
               "Times the next sequence number was moved 2^32 forward because an earlier run "
               "had not stopped cleanly (its last buffer writes may be lost)")
           .Register(reg)
           .Add({});
  RocksDbOptions ro;
  ro.path = dir;
  ro.disable_wal = !wal->wal;
  ro.memory_limit_bytes = sizing.memory_limit_bytes;
  ro.write_buffer_bytes = sizing.write_buffer_bytes;
  ro.compress = sizing.compress;
  ro.registry = g->registry_.get();
  ro.metrics_store = "gateway_buffer";
  absl::StatusOr<std::unique_ptr<RocksDbStore>> store = RocksDbStore::Open(ro);
  if (!store.ok()) return Annotate(store.status(), absl::StrCat("gateway buffer ", dir));
  g->rocks_ = store->get();
  g->store_ = *std::move(store);

  if (g->options_.validator != nullptr) {
    g->validator_ = g->options_.validator;
  } else {
    g->own_validator_ = std::make_unique<RecordValidator>(config, g->options_.clock);
    g->validator_ = g->own_validator_.get();
  }
  g->set_aside_path_ = absl::StrCat(dir, "/set-aside/", RejectFileName("set-aside", "jsonl"));
  g->set_aside_ = std::make_unique<RejectFile>(g->set_aside_path_);

  PublisherOptions po;
  po.gateway_id = config.gateway.id;
  po.topic = g->topic_;
  po.client = client;
  po.producer_overrides = g->options_.producer_overrides;
  po.batch_max_records = config.gateway.batch.max_records;
  po.batch_max_bytes = config.gateway.batch.max_bytes;
  po.linger = config.gateway.batch.linger;
  po.buffer_max_bytes = buffer_max_bytes;
  // The bound, so dashboards and the buffer-filling alerts can show buffer_bytes as a fraction.
  prometheus::BuildGauge()
      .Name("cybersyn_gateway_buffer_max_bytes")
      .Help("The disk buffer bound (gateway.buffer_max_bytes or --buffer-max-bytes)")
      .Register(*g->registry_)
      .Add({})
      .Set(static_cast<double>(po.buffer_max_bytes));
  po.max_in_flight_bytes = g->options_.max_in_flight_bytes;
  if (!wal->wal) {
    // A re-readable source can wait: while the broker confirms, keep the unconfirmed backlog
    // short. An unpaced source otherwise runs far ahead, and librdkafka's own CPU per record
    // fell by half with the shorter queue (ingest_bench: 0.19 vs 0.34 CPU s per 3M). Enough for
    // two full produce batches per partition in use (buffer_sizing.h), at least an eighth of a
    // memtable (4 MiB), at most half the in-flight bound (the rest would spill to the store).
    // The producer's effective settings (common/kafka_properties.h).
    const std::map<std::string, std::string> settings =
        EffectiveKafkaSettings(client, KafkaClientKind::kProducer, Publisher::ProducerSettings(po))
            .values;
    uint64_t produce_batch = 1'000'000;  // librdkafka's default batch.size
    if (auto it = settings.find("batch.size"); it != settings.end()) {
      (void)absl::SimpleAtoi(it->second, &produce_batch);
    }
    const int depth = config.hierarchy->LevelIndex(Hierarchy::kEnterpriseLevel);
    const int enterprises =
        depth < 0 ? 1 : static_cast<int>(config.hierarchy->NodesAtDepth(depth).size());
    po.soft_max_buffer_bytes =
        SoftBoundBytes(config.kafka.partitions, enterprises, produce_batch,
                       sizing.write_buffer_bytes / 8, po.max_in_flight_bytes / 2);
    // And the batches the broker is confirming are not written to the store at all: without a
    // log, a memtable is no safer than memory (publisher.h, "Holding in memory"). A flush every
    // two memtables' worth of confirmed bytes bounds what a crash re-reads, as the memtable
    // flushes did when the batches went through them.
    po.hold_unconfirmed_in_memory = true;
    RocksDbStore* rocks = g->rocks_;
    po.flush_store = [rocks] {
      if (absl::Status s = rocks->Flush(/*wait=*/false); !s.ok()) {
        spdlog::warn("gateway buffer: {}", s.ToString());
      }
    };
    po.flush_every_bytes = 2 * sizing.write_buffer_bytes;
    spdlog::info(
        "gateway buffer {}: while the broker confirms, batches are sent from memory (only a "
        "checkpoint is written) and the source waits above {:.1f} MiB unconfirmed",
        dir, static_cast<double>(po.soft_max_buffer_bytes) / (1 << 20));
  }
  po.ensure_topic = std::move(ensure);
  // The mock cluster keeps no topic configuration (and does not answer DescribeConfigs).
  po.read_topic_limit = g->options_.read_topic_limit && g->embedded_ == nullptr;
  po.clock = g->options_.clock;
  Gateway* self = g.get();
  po.on_message_limit = [self](uint64_t limit) {
    self->validator_->SetMessageLimit(limit);
    self->message_limit_metric_->Set(static_cast<double>(limit));
  };
  po.set_aside = [self](const SetAside& aside) { return self->WriteSetAside(aside); };
  po.on_delivery = [self](const absl::Status& s, int records, absl::Duration latency) {
    if (!s.ok()) return;
    self->confirmed_metric_->Increment(records);
    self->latency_metric_->Observe(absl::ToDoubleSeconds(latency));
  };
  absl::StatusOr<std::unique_ptr<Publisher>> publisher = Publisher::Create(po, g->store_.get());
  if (!publisher.ok()) return publisher.status();
  g->publisher_ = *std::move(publisher);

  if (marker->has_value()) {
    const std::string& previous = **marker;
    if (!g->options_.input.identity.empty() && previous == g->options_.input.identity) {
      // Re-read from the flushed position with the same numbers (a Seek failure jumps in Run).
      g->resuming_unclean_ = true;
      spdlog::warn(
          "gateway: the last run of {} did not stop cleanly; it is re-read from the position of "
          "the buffer's last durable write, with the same sequence numbers",
          previous);
    } else {
      const std::string now = g->options_.input.identity.empty()
                                  ? std::string("no resumable input")
                                  : absl::StrCat("input ", g->options_.input.identity);
      if (absl::Status s = g->JumpSequences(absl::StrCat(
              "the last run (",
              previous.empty() ? std::string("an input that cannot be re-read")
                               : absl::StrCat("input ", previous),
              ") did not stop cleanly, so sequence numbers it sent to Kafka may be missing from "
              "the buffer (without the write-ahead log a crash loses what was not flushed; with "
              "it, a power cut loses what the OS had not written back); this run has ",
              now));
          !s.ok()) {
        return s;
      }
    }
  }
  // The marker goes down before the first write, with the WAL or without (a jump above is
  // flushed already); a clean stop removes it.
  if (absl::Status s = WriteRunMarker(dir, g->options_.input.identity); !s.ok()) {
    return Annotate(s, "gateway buffer");
  }
  g->buffer_run_started_ = true;
  g->export_thread_ = std::thread([self] { self->ExportLoop(); });
  return g;
}

Gateway::~Gateway() { Stop(absl::ZeroDuration()); }

absl::Status Gateway::JumpSequences(const std::string& why) {
  if (absl::Status s = publisher_->SkipSequences(kSequenceJump); !s.ok()) {
    return Annotate(s, "gateway: skipping sequence numbers");
  }
  // Durable before anything uses the new numbers (and before the marker goes).
  if (absl::Status s = rocks_->Flush(); !s.ok()) return Annotate(s, "gateway buffer");
  sequence_jumps_metric_->Increment();
  spdlog::warn(
      "gateway: {}: next sequence number moved {} forward to {}, so that consumers do not drop "
      "this run's records as duplicates of the lost ones",
      why, kSequenceJump, publisher_->stats().next_sequence);
  return absl::OkStatus();
}

void Gateway::FinishBufferRun() {
  // A Start that failed half way leaves the marker as it found it.
  if (!buffer_run_started_ || rocks_ == nullptr || publisher_ == nullptr) return;
  if (resuming_unclean_) {
    // This run may have stopped before re-reading up to where the crashed run had sent records:
    // the next run must not reuse those numbers, whatever it reads.
    if (absl::Status s = JumpSequences(absl::StrCat(
            "stopping a re-read of ", options_.input.identity, " after an unclean stop"));
        !s.ok()) {
      spdlog::error("{}; keeping {}", s.ToString(), RunMarkerPath(buffer_dir_));
      return;
    }
  } else if (absl::Status s = rocks_->Flush(); !s.ok()) {
    spdlog::error(
        "gateway: {}; keeping {} (the next run with another input skips sequence numbers)",
        s.ToString(), RunMarkerPath(buffer_dir_));
    return;
  }
  if (absl::Status s = RemoveRunMarker(buffer_dir_); !s.ok()) {
    spdlog::error("gateway: {}", s.ToString());
  }
}

absl::Status Gateway::WriteSetAside(const SetAside& aside) {
  const std::string from = absl::StrCat("batch ", aside.batch, " of ", aside.enterprise,
                                        aside.lines.empty() ? "" : ", from ", aside.lines);
  for (size_t i = 0; i < aside.items.size(); ++i) {
    const SetAside::Item& item = aside.items[i];
    const bool last = i + 1 == aside.items.size();
    absl::Status s =
        item.wire.empty()
            ? set_aside_->Append(
                  absl::StrCat(item.reason, " (sequence ", item.record.sequence(), ", ", from, ")"),
                  RecordAsJsonLine(item.record), "", last)
            : set_aside_->Append(absl::StrCat(item.reason, " (a record of ", from,
                                              " that cannot be decoded; its bytes in base64: ",
                                              absl::Base64Escape(item.wire), ")"),
                                 "", "", last);
    if (!s.ok()) return s;
  }
  set_aside_metric_->Increment(static_cast<double>(aside.items.size()));
  spdlog::warn(
      "gateway: {} records of {} set aside in {} ({}); fix them and send that file with "
      "--input jsonl:FILE (docs/ingest.md)",
      aside.items.size(), from, set_aside_path_, SafeLine(aside.items.front().reason));
  return absl::OkStatus();
}

absl::Status Gateway::PlaceSource(RecordSource& source, const std::string& identity,
                                  int64_t from_line, RunSummary* summary) {
  bool renumbered = false;  // its records get other sequence numbers than an earlier run gave
  if (from_line > 0) {
    if (absl::Status s = source.SeekLine(from_line); !s.ok()) return s;
    spdlog::info(
        "gateway: reading {} from line {}; lines sent before get new sequence numbers, so they "
        "are new records downstream",
        identity, from_line);
    renumbered = true;
  } else if (auto stored = publisher_->StoredPosition(); stored && stored->first == identity) {
    absl::Status s = source.Seek(stored->second);
    if (s.ok()) {
      summary->resumed = true;
      spdlog::info("gateway: resuming {} after position {}", identity, stored->second);
    } else if (absl::IsFailedPrecondition(s)) {
      return absl::FailedPreconditionError(absl::StrCat(
          s.message(),
          ". Not resuming at a stale position. To send lines of it again, pass --from-line N "
          "(they get new sequence numbers, so downstream they are new records: lines sent "
          "before would count twice); to send corrected lines only, send the reject file as a "
          "new input; to start over with this input, use another --buffer-dir"));
    } else {
      spdlog::warn("gateway: cannot resume {} ({}); reading from the start", identity,
                   s.ToString());
      renumbered = true;
    }
  }
  if (renumbered && resuming_unclean_) {
    // The unclean run may have sent these numbers for other records.
    if (absl::Status j = JumpSequences(absl::StrCat("not resuming ", identity)); !j.ok()) {
      return j;
    }
    resuming_unclean_ = false;
  }
  return absl::OkStatus();
}

void Gateway::ExportLoop() {
  uint64_t exported_accepted = 0;
  while (!quit_.load()) {
    const uint64_t a = accepted_.load();
    accepted_metric_->Increment(static_cast<double>(a - exported_accepted));
    exported_accepted = a;
    if (publisher_ != nullptr) {
      const PublisherStats s = publisher_->stats();
      buffer_bytes_metric_->Set(static_cast<double>(s.buffer_bytes));
      buffer_records_metric_->Set(static_cast<double>(s.buffer_records));
      buffer_held_metric_->Set(static_cast<double>(s.held_bytes));
      connected_metric_->Set(publisher_->connected() ? 1 : 0);
    }
    for (int i = 0; i < 5 && !quit_.load(); ++i) absl::SleepFor(absl::Milliseconds(100));
  }
}

void Gateway::CountRejected(const std::string& reason) {
  rejected_.fetch_add(1);
  absl::MutexLock l(&reasons_mu_);
  auto it = rejected_metrics_.find(reason);
  if (it == rejected_metrics_.end()) {
    it = rejected_metrics_.emplace(reason, &rejected_family_->Add({{"reason", reason}})).first;
  }
  it->second->Increment();
}

absl::StatusOr<RunSummary> Gateway::Run(RecordSource& source, const RunOptions& options) {
  {
    absl::MutexLock l(&run_mu_);
    if (stop_runs_.load()) return absl::CancelledError("gateway stopped");
    ++runs_;
  }
  struct RunCount {
    Gateway* g;
    ~RunCount() {
      absl::MutexLock l(&g->run_mu_);
      --g->runs_;
    }
  } run_count{this};
  RunSummary summary;
  const std::string identity = source.Identity();
  bool publishing;
  {
    absl::MutexLock l(&start_mu_);
    publishing = publishing_;
  }
  // `source` may go away after Run; later seals (Stop, another Run) store where it ended.
  struct FreezePosition {
    Publisher* publisher;
    RecordSource* source;
    const std::string* identity;
    bool on = false;
    ~FreezePosition() {
      if (on) {
        publisher->SetPositionProvider(*identity, [end = source->Position()] { return end; });
      }
    }
  } freeze{publisher_.get(), &source, &identity};
  if (!buffer_wal_ && (identity != options_.input.identity || publishing)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "gateway: the disk buffer has no write-ahead log, so it can only run the declared input ",
        options_.input.identity, " from its stored position; got ",
        identity.empty() ? std::string("an input that cannot resume") : identity,
        publishing ? " after publishing started" : ""));
  }
  // Resuming needs the seals to happen on this thread only, so not after Feed started.
  if (!identity.empty() && !publishing) {
    source.SetStateDir(buffer_dir_);
    if (absl::Status s = PlaceSource(source, identity, options.from_line, &summary); !s.ok()) {
      return s;
    }
    publisher_->SetPositionProvider(identity, [&source] { return source.Position(); });
    freeze.on = true;
  } else if (options.from_line > 0) {
    if (absl::Status s = source.SeekLine(options.from_line); !s.ok()) return s;
  }
  if (absl::Status s = StartPublishing(); !s.ok()) return s;
  publisher_->SetLineSource(identity.empty() ? std::string("stdin") : identity);

  const absl::Time wall_start = absl::Now();
  // Event-time pacing: event time `first_event` was read at `pace_start`; both are re-anchored
  // when the source changes its pace (a replay that continues live).
  absl::Time pace_start = wall_start;
  int64_t first_event = -1;
  double speedup = options.rate > 0 ? 0 : source.speedup();
  RecordRef record;
  RecordError err;
  const Hierarchy::Node* enterprise = nullptr;
  // With a position provider only this thread seals (the delivery thread does not linger), so
  // the publisher's lock is held per round of records; only a concurrent Feed waits for it.
  const bool hold_lock = freeze.on;
  // Unpaced resumable sources (files, the bench simulator: they do not wait for input) take 64
  // records per round: the linger check (a clock read and a lock) and the lock round trip per
  // round were ~5% of the source thread at 16.
  const int per_round = (hold_lock && options.rate <= 0 && speedup <= 0) ? 64 : 16;
  bool end = false;
  while (!end) {
    // Every 16 (64) records: fine enough that a slow live source (tens of records/s) is paced,
    // lingers and sees cancel within a second, cheap enough at a million records/s.
    if (options.cancel != nullptr && options.cancel->load()) break;
    if (stop_runs_.load()) {  // Gateway::Stop: seal here, where the source really is
      if (absl::Status s = publisher_->SealAll(); !s.ok()) return s;
      return absl::CancelledError("gateway stopped");
    }
    if (absl::Status s = publisher_->MaybeLinger(); !s.ok()) return s;
    // Pacing: by record rate, or event time at `speedup` x wall time.
    absl::Duration ahead = absl::ZeroDuration();
    if (options.rate > 0) {
      ahead = absl::Seconds(static_cast<double>(summary.read) / options.rate) -
              (absl::Now() - wall_start);
    } else {
      if (const double pace = source.speedup(); pace != speedup && speedup > 0 && pace > 0) {
        speedup = pace;
        first_event = source.event_time_ms();
        pace_start = absl::Now();
      }
      if (speedup > 0 && first_event >= 0) {
        ahead = absl::Milliseconds(static_cast<double>(source.event_time_ms() - first_event) /
                                   speedup) -
                (absl::Now() - pace_start);
      }
    }
    while (ahead > absl::Milliseconds(2)) {
      const absl::Duration step = std::min(ahead, absl::Milliseconds(20));
      absl::SleepFor(step);
      ahead -= step;
      if (absl::Status s = publisher_->MaybeLinger(); !s.ok()) return s;
      if ((options.cancel != nullptr && options.cancel->load()) || stop_runs_.load()) break;
    }
    std::optional<Publisher::Appender> appender;
    if (hold_lock) appender.emplace(publisher_.get());
    uint64_t added = 0;
    for (int i = 0; i < per_round; ++i) {
      const RecordSource::Result r = source.NextRef(&record, &enterprise, &err);
      if (r == RecordSource::Result::kEnd) {
        end = true;
        break;
      }
      ++summary.read;
      if (r == RecordSource::Result::kError) {
        ++summary.rejected;
        ++summary.rejected_by_reason[err.reason];
        if (err.reason == kReasonBadHeader) summary.bad_header = true;
        CountRejected(err.reason);
        if (options.report) options.report(err);
        if (options.on_error == OnError::kStop) {
          summary.stopped_on_error = true;
          end = true;
          break;
        }
        continue;
      }
      if (first_event < 0) first_event = record.event_time_ms;
      if (absl::Status s = appender ? appender->Add(record, enterprise->path, enterprise)
                                    : publisher_->Add(record, enterprise->path);
          !s.ok()) {
        accepted_.fetch_add(added, std::memory_order_relaxed);
        return s;
      }
      ++summary.accepted;
      ++added;
    }
    accepted_.fetch_add(added, std::memory_order_relaxed);
  }
  if (absl::Status s = publisher_->SealAll(); !s.ok()) return s;
  return summary;
}

absl::Status Gateway::Feed(const v1::Record& record, RecordError* err, absl::Time deadline) {
  if (!buffer_wal_) {
    return absl::FailedPreconditionError(
        "gateway: the disk buffer has no write-ahead log (--buffer-wal), so pushed records would "
        "not survive a crash");
  }
  RecordError local;
  RecordError* e = err != nullptr ? err : &local;
  const Hierarchy::Node* enterprise = validator_->Validate(record, e);
  if (enterprise == nullptr) {
    CountRejected(e->reason);
    return absl::InvalidArgumentError(absl::StrCat(e->field, ": ", e->problem));
  }
  if (absl::Status s = StartPublishing(); !s.ok()) return s;
  if (absl::Status s = publisher_->Add(record, enterprise->path, deadline); !s.ok()) return s;
  accepted_.fetch_add(1, std::memory_order_relaxed);
  return absl::OkStatus();
}

absl::Status Gateway::Persist(absl::Time deadline) {
  if (!buffer_wal_) {
    return absl::FailedPreconditionError(
        "gateway: the disk buffer has no write-ahead log (--buffer-wal); nothing is persisted "
        "per call");
  }
  if (absl::Status s = StartPublishing(); !s.ok()) return s;
  return publisher_->Persist(deadline);
}

absl::Status Gateway::StartPublishing() {
  absl::MutexLock l(&start_mu_);
  if (publishing_) return absl::OkStatus();
  if (absl::Status s = publisher_->Start(); !s.ok()) return s;
  publishing_ = true;
  return absl::OkStatus();
}

absl::Status Gateway::Drain(absl::Duration timeout) {
  if (absl::Status s = StartPublishing(); !s.ok()) return s;
  if (absl::Status s = publisher_->SealAll(); !s.ok()) return s;
  return publisher_->WaitConfirmed(timeout);
}

void Gateway::Stop(absl::Duration grace) {
  if (stopped_) return;
  stopped_ = true;
  if (publisher_ != nullptr) {
    stop_runs_.store(true);
    publisher_->Unblock();
    absl::MutexLock l(&run_mu_);
    run_mu_.Await(absl::Condition(
        +[](int* runs) { return *runs == 0; }, &runs_));
  }
  if (publisher_ != nullptr) publisher_->Stop(grace);
  FinishBufferRun();
  quit_.store(true);
  if (export_thread_.joinable()) export_thread_.join();
  publisher_.reset();
  store_.reset();
  embedded_.reset();
}

GatewayStats Gateway::stats() const {
  GatewayStats g;
  g.accepted = accepted_.load();
  g.rejected = rejected_.load();
  if (publisher_ != nullptr) {
    const PublisherStats s = publisher_->stats();
    g.confirmed = s.records_confirmed;
    g.buffer_bytes = s.buffer_bytes;
    g.buffer_records = s.buffer_records + s.open_records;
    g.next_sequence = s.next_sequence;
    g.producer_recoveries = s.producer_recoveries;
    g.connected = publisher_->connected();
    g.set_aside = s.records_set_aside;
    g.message_limit = s.message_limit;
  }
  g.buffer_wal = buffer_wal_;
  if (g.set_aside > 0) g.set_aside_path = set_aside_path_;
  return g;
}

}  // namespace cybersyn::ingest
