#include "ingest/publisher.h"

#include <algorithm>
#include <bit>
#include <cstdio>
#include <cstring>
#include <tuple>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/batch_decode.h"
#include "common/kafka_properties.h"
#include "librdkafka/rdkafka.h"
#include "spdlog/spdlog.h"

namespace cybersyn::ingest {
namespace {

constexpr absl::string_view kBatchPrefix = "b/";
constexpr absl::string_view kNextSeqKey = "m/next_seq";
constexpr absl::string_view kSourceKey = "m/source";
// The message limit last learnt (from the topic, or lowered after a refusal), for the next start.
constexpr absl::string_view kMessageLimitKey = "m/message_limit";
// Sealed groups waiting for the writer thread: enough to keep it busy, bounded memory.
constexpr uint64_t kMaxSealedBytes = uint64_t{16} << 20;
// "<enterprise>\n" + 10-digit record count + "\n" in front of each buffered batch.
constexpr size_t kCountDigits = 10;

std::string BatchKey(uint64_t id) {
  std::string k(kBatchPrefix);
  for (int i = 7; i >= 0; --i) k.push_back(static_cast<char>((id >> (8 * i)) & 0xff));
  return k;
}

uint64_t BatchId(absl::string_view key) {
  uint64_t id = 0;
  for (size_t i = kBatchPrefix.size(); i < key.size(); ++i) {
    id = (id << 8) | static_cast<unsigned char>(key[i]);
  }
  return id;
}

inline size_t VarintSize(uint64_t v) {
  // 7 bits per byte: 1 + floor(log2(v) / 7), without a loop (v | 1: log2 of 0 is undefined).
  return 1 + static_cast<size_t>((63 - __builtin_clzll(v | 1)) / 7);
}

// memcpy for the short strings of a record (tens of bytes) without a libc call: two overlapping
// fixed-size copies, which the compiler inlines. A call per record was 6% of the source thread.
inline char* CopyShort(char* dst, absl::string_view src) {
  const size_t n = src.size();
  const char* s = src.data();
  if (n >= 16 && n <= 32) {
    std::memcpy(dst, s, 16);
    std::memcpy(dst + n - 16, s + n - 16, 16);
  } else if (n >= 8 && n < 16) {
    std::memcpy(dst, s, 8);
    std::memcpy(dst + n - 8, s + n - 8, 8);
  } else if (n > 32 && n <= 64) {
    std::memcpy(dst, s, 32);
    std::memcpy(dst + n - 32, s + n - 32, 32);
  } else {
    std::memcpy(dst, s, n);
  }
  return dst + n;
}

inline char* PutStringRaw(char* p, char tag, absl::string_view v) {
  *p++ = tag;
  p = PutVarintRaw(p, v.size());
  std::memcpy(p, v.data(), v.size());
  return p + v.size();
}

inline void PutVarint(std::string* s, uint64_t v) {
  char buf[10];
  s->append(buf, PutVarintRaw(buf, v) - buf);
}

inline size_t StringFieldSize(size_t len) { return 1 + VarintSize(len) + len; }

// A numeric librdkafka setting, or `otherwise` when it is not set (or not a number).
uint64_t SettingOr(const std::map<std::string, std::string>& settings, const std::string& key,
                   uint64_t otherwise) {
  uint64_t v = 0;
  auto it = settings.find(key);
  return it != settings.end() && absl::SimpleAtoi(it->second, &v) ? v : otherwise;
}

// What librdkafka really applies to `rk` for a numeric `key` (after every layer of settings).
uint64_t AppliedSetting(rd_kafka_t* rk, const char* key, uint64_t otherwise) {
  char buf[32];
  size_t size = sizeof buf;
  uint64_t v = 0;
  return rd_kafka_conf_get(rd_kafka_conf(rk), key, buf, &size) == RD_KAFKA_CONF_OK &&
                 absl::SimpleAtoi(buf, &v)
             ? v
             : otherwise;
}

uint64_t DoubleBits(double d) {
  uint64_t bits;
  std::memcpy(&bits, &d, sizeof bits);
  return bits;
}

// The varints of a record that the encoder copies instead of encoding (varint.h): null when the
// field is 0 (left out, as protobuf does).
struct RecordVarints {
  const EncodedVarint* time = nullptr;  // event_time_ms
  const EncodedVarint* seq = nullptr;   // sequence
};

// The encoded size of `r` as a Record message (without the enclosing tag and length).
[[gnu::always_inline]] inline size_t RecordSize(const RecordRef& r, RecordVarints v) {
  size_t n = 0;
  if (!r.node_indicator_pb.empty()) {
    n += r.node_indicator_pb.size();
  } else {
    if (!r.node.empty()) n += StringFieldSize(r.node.size());
    if (!r.indicator.empty()) n += StringFieldSize(r.indicator.size());
  }
  if (DoubleBits(r.value) != 0) n += 9;
  if (v.time != nullptr) n += 1 + v.time->size;
  if (v.seq != nullptr) n += 1 + v.seq->size;
  if (r.labels != nullptr) {
    for (const auto& [k, v] : *r.labels) {
      const size_t entry = StringFieldSize(k.size()) + StringFieldSize(v.size());
      n += StringFieldSize(entry);
    }
  }
  return n;
}

// Writes `r` with its varints as RecordBatch field 3 at `p` (hand-rolled: the hot path of the
// gateway), the same bytes as SerializeToString of the Record with that sequence (publisher_test
// checks it); returns the end. `size` is RecordSize(r, v); 1 + VarintSize(size) + size bytes are
// written, and up to kEncodeSlack bytes after them may be overwritten.
constexpr size_t kEncodeSlack = 16;
inline char* EncodeRecord(char* p, const RecordRef& r, RecordVarints v, size_t size) {
  *p++ = 0x1A;
  p = PutVarintRaw(p, size);
  if (!r.node_indicator_pb.empty()) {
    p = CopyShort(p, r.node_indicator_pb);
  } else {
    if (!r.node.empty()) p = PutStringRaw(p, 0x0A, r.node);
    if (!r.indicator.empty()) p = PutStringRaw(p, 0x12, r.indicator);
  }
  if (const uint64_t bits = DoubleBits(r.value); bits != 0) {
    *p++ = 0x19;  // fixed64, little-endian
    if constexpr (std::endian::native == std::endian::little) {
      std::memcpy(p, &bits, 8);
      p += 8;
    } else {
      for (int i = 0; i < 8; ++i) *p++ = static_cast<char>((bits >> (8 * i)) & 0xff);
    }
  }
  if (v.time != nullptr) {
    *p++ = 0x20;
    p = v.time->CopyTo(p);
  }
  if (v.seq != nullptr) {
    *p++ = 0x30;
    p = v.seq->CopyTo(p);
  }
  if (r.labels != nullptr) {
    for (const auto& [k, v] : *r.labels) {
      *p++ = 0x3A;
      p = PutVarintRaw(p, StringFieldSize(k.size()) + StringFieldSize(v.size()));
      p = PutStringRaw(p, 0x0A, k);
      p = PutStringRaw(p, 0x12, v);
    }
  }
  return p;
}

// Buffer values: "<enterprise>\n<records>\n<RecordBatch bytes>".
struct StoredBatch {
  absl::string_view enterprise;
  int records = 0;
  absl::string_view bytes;
};

bool ParseStored(absl::string_view value, StoredBatch* out) {
  const size_t a = value.find('\n');
  if (a == absl::string_view::npos) return false;
  const size_t b = value.find('\n', a + 1);
  if (b == absl::string_view::npos) return false;
  out->enterprise = value.substr(0, a);
  out->bytes = value.substr(b + 1);
  return absl::SimpleAtoi(value.substr(a + 1, b - a - 1), &out->records);
}

}  // namespace

std::string EncodeRecordForTest(const v1::Record& record, uint64_t sequence) {
  return EncodeRecordForTest(RecordRef::Of(record), sequence);
}

std::string EncodeRecordForTest(const RecordRef& r, uint64_t sequence) {
  EncodedVarint time, seq;
  time.Set(static_cast<uint64_t>(r.event_time_ms));
  seq.Set(sequence);
  const RecordVarints v{r.event_time_ms != 0 ? &time : nullptr, sequence != 0 ? &seq : nullptr};
  const size_t size = RecordSize(r, v);
  const size_t framed = 1 + VarintSize(size) + size;
  std::string s(framed + kEncodeSlack, '\0');
  s.resize(EncodeRecord(s.data(), r, v, size) - s.data());
  return s;
}

absl::StatusOr<std::unique_ptr<Publisher>> Publisher::Create(PublisherOptions options,
                                                             KvStore* store) {
  std::unique_ptr<Publisher> p(new Publisher());
  options.batch_max_records = std::max(1, options.batch_max_records);
  p->options_ = std::move(options);
  p->store_ = store;
  // The producer's own limit (the config's kafka.producer may set it), and the one learnt from the
  // topic before, if lower.
  p->producer_limit_ =
      SettingOr(p->EffectiveProducerSettings(), "message.max.bytes", kDefaultMessageLimit);
  uint64_t limit = p->producer_limit_;
  if (absl::StatusOr<std::string> v = store->Get(kMessageLimitKey); v.ok()) {
    uint64_t stored = 0;
    if (absl::SimpleAtoi(*v, &stored) && stored >= kMinMessageLimit / 4) {
      limit = std::min(limit, stored);
    }
  }
  p->StoreMessageLimit(limit);
  if (p->options_.on_message_limit) p->options_.on_message_limit(limit);
  absl::MutexLock l(&p->mu_);
  std::optional<uint64_t> stored_next;
  if (absl::StatusOr<std::string> v = store->Get(kNextSeqKey); v.ok()) {
    uint64_t next = 0;
    if (!absl::SimpleAtoi(*v, &next)) {
      return absl::DataLossError(absl::StrCat("buffer: bad next sequence \"", *v, "\""));
    }
    p->next_seq_.store(next);
    p->durable_seq_ = next;
    stored_next = next;
  } else if (!absl::IsNotFound(v.status())) {
    return v.status();
  }
  absl::Status bad;
  WriteBatch redundant;
  absl::Status s = store->Scan(kBatchPrefix, [&](absl::string_view key, absl::string_view value) {
    StoredBatch b;
    if (!ParseStored(value, &b)) {
      bad = absl::DataLossError(absl::StrCat("buffer entry ", BatchId(key), " is corrupt"));
      return false;
    }
    if (stored_next && BatchId(key) >= *stored_next) {
      // Written after the stored checkpoint (a run that held batches in memory crashed): the
      // source is re-read from before it, with the same numbers, so it is sent again anyway.
      redundant.Delete(key);
      return true;
    }
    p->pending_.push_back({BatchId(key), value.size(), b.records, {}});
    p->buffer_bytes_ += value.size();
    p->buffer_records_ += b.records;
    ++p->buffer_batches_;
    return true;
  });
  if (!s.ok()) return s;
  if (!bad.ok()) return bad;
  if (!redundant.empty()) {
    spdlog::info(
        "gateway buffer: {} batches past the stored position (next sequence {}) are dropped: "
        "the source is re-read from there",
        redundant.size(), *stored_next);
    if (absl::Status w = store->Write(redundant); !w.ok()) return w;
    p->redundant_dropped_ = redundant.size();
  }
  if (absl::StatusOr<std::string> v = store->Get(kSourceKey); v.ok()) {
    const size_t nl = v->find('\n');
    if (nl != std::string::npos) {
      p->stored_position_.emplace(v->substr(0, nl), v->substr(nl + 1));
    }
  }
  if (!p->pending_.empty()) {
    spdlog::info("gateway buffer: {} batches ({} records, {} bytes) to resend, next sequence {}",
                 p->buffer_batches_, p->buffer_records_, p->buffer_bytes_, p->next_seq_.load());
  }
  Publisher* self = p.get();
  p->writer_thread_ = std::thread([self] { self->WriterLoop(); });
  return p;
}

Publisher::~Publisher() { Stop(absl::ZeroDuration()); }

std::optional<std::pair<std::string, std::string>> Publisher::StoredPosition() const {
  return stored_position_;
}

void Publisher::SetPositionProvider(std::string identity, std::function<std::string()> position) {
  absl::MutexLock l(&open_mu_);
  identity_ = std::move(identity);
  position_ = std::move(position);
  position_mode_.store(true);
  if (!prev_end_ && open_.empty()) {
    // Where the source is now: the start of the first group.
    prev_end_ = Checkpoint{absl::StrCat(identity_, "\n", position_()), next_seq_.load()};
  }
}

void Publisher::SetLineSource(std::string name) {
  absl::MutexLock l(&mu_);
  lines_source_ = std::move(name);
}

absl::Status Publisher::SkipSequences(uint64_t n) {
  absl::MutexLock o(&open_mu_);
  if (!open_.empty()) {
    return absl::FailedPreconditionError("skipping sequence numbers with records open");
  }
  {
    // A group written after this write would store its older next sequence over it.
    absl::MutexLock l(&mu_);
    if (!sealed_.empty() || writing_) {
      return absl::FailedPreconditionError("skipping sequence numbers with groups being written");
    }
  }
  const uint64_t next = next_seq_.load() + n;
  WriteBatch wb;
  wb.Put(kNextSeqKey, absl::StrCat(next));
  if (absl::Status s = store_->Write(wb); !s.ok()) return s;
  next_seq_.store(next);
  absl::MutexLock l(&mu_);
  durable_seq_ = next;
  return absl::OkStatus();
}

std::map<std::string, std::string> Publisher::ProducerSettings(const PublisherOptions& options) {
  std::map<std::string, std::string> settings = {
      {"message.timeout.ms", "0"},  // never give up locally: an outage only delays
      // A permanent failure of one batch must not let a later batch of its enterprise overtake
      // it: fatal instead (see the header), and then RecoverFromFatal resends in order.
      {"enable.gapless.guarantee", "true"},
      // A partition's messages go out when they fill batch.size (1 MB) or after linger.ms. A
      // gateway at full speed fills 1 MB per partition in about 13 ms (bench preset, 4
      // partitions), so 5 ms sent 400 KB batches: more requests, more CPU in librdkafka and
      // in the broker (ingest_bench median ratio 0.66-0.79 with 5 ms, 0.84-0.90 with 20). A
      // slow source's records wait at most 15 ms longer.
      {"linger.ms", "20"},
      {"queue.buffering.max.kbytes",
       absl::StrCat(std::max<uint64_t>(options.max_in_flight_bytes * 2 / 1024, 65536))},
      {"queue.buffering.max.messages", "1000000"},
      {"message.max.bytes", "1000000"},
  };
  for (const auto& [k, v] : options.producer_overrides) settings[k] = v;
  return settings;
}

std::map<std::string, std::string> Publisher::EffectiveProducerSettings() const {
  return EffectiveKafkaSettings(options_.client, KafkaClientKind::kProducer,
                                ProducerSettings(options_))
      .values;
}

absl::Status Publisher::CreateProducer() {
  ProducerOptions po;
  po.client = options_.client;
  po.idempotent = true;
  po.overrides = ProducerSettings(options_);
  // librdkafka puts messages of a partition into one record batch up to batch.size, and the
  // broker judges the record batch against max.message.bytes: so batch.size stays within it,
  // whatever the config's kafka.properties or kafka.producer say (they win over the code's).
  const uint64_t batch_size =
      std::min(SettingOr(EffectiveProducerSettings(), "batch.size", kDefaultMessageLimit),
               message_limit_.load());
  po.overrides["batch.size"] = absl::StrCat(batch_size);
  for (auto* configured : {&po.client.properties, &po.client.producer}) {
    if (configured->contains("batch.size")) (*configured)["batch.size"] = absl::StrCat(batch_size);
  }
  po.on_delivery = [this](const DeliveryReport& r) { OnReport(r); };
  absl::StatusOr<std::unique_ptr<KafkaProducer>> producer = KafkaProducer::Create(po);
  if (!producer.ok()) return producer.status();
  std::shared_ptr<KafkaProducer> fresh = *std::move(producer);
  const uint64_t applied = AppliedSetting(fresh->raw()->c_ptr(), "batch.size", batch_size);
  absl::MutexLock l(&mu_);
  producer_ = std::move(fresh);
  producer_batch_size_ = applied;
  return absl::OkStatus();
}

absl::Status Publisher::Start() {
  if (absl::Status s = CreateProducer(); !s.ok()) return s;
  {
    absl::MutexLock l(&mu_);
    started_ = true;
    last_progress_ = options_.clock->Now();
    topic_ready_ = !options_.ensure_topic;
    RefillLocked();
  }
  delivery_thread_ = std::thread([this] { DeliveryLoop(); });
  monitor_thread_ = std::thread([this] { MonitorLoop(); });
  return absl::OkStatus();
}

void Publisher::OnReport(const DeliveryReport& report) {
  absl::MutexLock l(&dr_mu_);
  reports_.push_back({reinterpret_cast<uint64_t>(report.opaque), report.status, report.error});
}

absl::Status Publisher::Add(const v1::Record& record, absl::string_view enterprise,
                            absl::Time deadline) {
  return Add(RecordRef::Of(record), enterprise, deadline);
}

absl::Status Publisher::Add(const RecordRef& record, absl::string_view enterprise,
                            absl::Time deadline) {
  absl::MutexLock l(&open_mu_);
  return AddLocked(record, enterprise, deadline);
}

absl::Status Publisher::AddLocked(const RecordRef& record, absl::string_view enterprise,
                                  absl::Time deadline, const void* token) {
  if (stop_adding_.load(std::memory_order_relaxed)) {
    return absl::CancelledError("publisher stopped");
  }
  if (write_failed_.load(std::memory_order_relaxed)) {
    absl::MutexLock m(&mu_);
    return write_error_;
  }
  const uint64_t seq = next_seq_.load(std::memory_order_relaxed);
  if (seq_varint_.value != seq) [[unlikely]] {
    seq_varint_.Set(seq);  // the first record, or after SkipSequences
  }
  RecordVarints varints{nullptr, seq != 0 ? &seq_varint_ : nullptr};
  if (record.event_time_ms != 0) {
    const uint64_t t = static_cast<uint64_t>(record.event_time_ms);
    if (time_varint_.value != t) time_varint_.Set(t);
    varints.time = &time_varint_;
  }
  const size_t size = RecordSize(record, varints);
  const size_t framed = 1 + (size < 0x80 ? 1 : VarintSize(size)) + size;
  const size_t header = enterprise.size() + kCountDigits + 2;
  constexpr size_t kNone = ~size_t{0};
  size_t index = kNone;
  if (last_open_ < open_.size() &&
      ((token != nullptr && token == last_token_) || open_[last_open_].enterprise == enterprise)) {
    index = last_open_;
  } else if (auto it = open_index_.find(enterprise); it != open_index_.end()) {
    index = it->second;
  }
  bool split = false;
  // The batch's value bound: the configured one, within the message limit (message_limit.h).
  const uint64_t max_value = value_room_.load(std::memory_order_relaxed);
  if (index != kNone && open_[index].used - header + framed + 12 + enterprise.size() > max_value) {
    if (!overflow_open_) {
      // The batch is full: it stays in the group, closed, the record starts a new batch of its
      // enterprise and the group is sealed right after it is in. Sealing before adding would
      // store a source position just past this record with the record itself not in the group:
      // a crash before the next seal would skip it on restart.
      open_index_.erase(enterprise);
      index = kNone;
      split = true;
    } else {
      // That seal timed out (the buffer is full): now block before adding, as backpressure.
      if (absl::Status s = SealLocked(/*block=*/true, deadline); !s.ok()) return s;
      index = kNone;
    }
  }
  if (stop_adding_.load()) return absl::CancelledError("publisher stopped");
  if (index == kNone) {
    if (open_.empty()) oldest_open_ = options_.clock->Now();
    OpenBatch b;
    b.enterprise = std::string(enterprise);
    b.first_seq = seq;
    {
      absl::MutexLock sl(&spare_mu_);
      if (!spare_.empty()) {
        b.bytes = std::move(spare_.back());
        spare_.pop_back();
        spare_bytes_ -= b.bytes.capacity();
      }
    }
    // Records are written through a pointer into room made once per batch: a resize per record
    // (length bookkeeping and a small memset) was a tenth of the source thread. A recycled string
    // keeps its size, so only growth is zero-filled.
    const size_t room =
        2 * header + 2 * options_.gateway_id.size() + 32 +
        std::min<uint64_t>(max_value,
                           static_cast<uint64_t>(options_.batch_max_records) * (framed + 2) + 64);
    if (b.bytes.size() < room) b.bytes.resize(room);
    char* p = b.bytes.data();
    std::memcpy(p, enterprise.data(), enterprise.size());
    p += enterprise.size();
    *p++ = '\n';
    std::memset(p, '0', kCountDigits);
    p += kCountDigits;
    *p++ = '\n';
    p = PutStringRaw(p, 0x0A, enterprise);
    p = PutStringRaw(p, 0x12, options_.gateway_id);
    b.used = p - b.bytes.data();
    open_.push_back(std::move(b));
    index = open_.size() - 1;
    open_index_.emplace(open_.back().enterprise, index);
  }
  last_open_ = index;
  last_token_ = token;
  OpenBatch& b = open_[index];
  if (record.line != 0) {
    if (b.lines.first == 0) b.lines.first = record.line;
    b.lines.last = record.line;
  }
  if (b.used + framed + kEncodeSlack > b.bytes.size()) [[unlikely]] {
    b.bytes.resize(std::max(2 * b.bytes.size(), b.used + framed + kEncodeSlack));
  }
  b.used = EncodeRecord(b.bytes.data() + b.used, record, varints, size) - b.bytes.data();
  ++b.records;
  // Written under open_mu_ only: plain stores, no locked read-modify-write per record.
  next_seq_.store(seq + 1, std::memory_order_relaxed);
  seq_varint_.Increment();
  records_added_.store(records_added_.load(std::memory_order_relaxed) + 1,
                       std::memory_order_relaxed);
  open_records_.store(open_records_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  // The record is in: a seal that times out leaves it open (sealed later), so no error.
  if (split) overflow_open_ = true;
  if (split || b.records >= options_.batch_max_records) {
    if (absl::Status s = SealLocked(/*block=*/true, deadline);
        !s.ok() && !absl::IsResourceExhausted(s)) {
      return s;
    }
  }
  return absl::OkStatus();
}

absl::Status Publisher::SealAll() {
  absl::MutexLock l(&open_mu_);
  return SealLocked();
}

absl::Status Publisher::MaybeLinger() {
  absl::MutexLock l(&open_mu_);
  if (write_failed_.load(std::memory_order_relaxed)) {
    absl::MutexLock m(&mu_);
    return write_error_;
  }
  if (open_.empty() || options_.clock->Now() - oldest_open_ < options_.linger) {
    return absl::OkStatus();
  }
  return SealLocked();
}

absl::Status Publisher::Persist(absl::Time deadline) {
  uint64_t target;
  {
    absl::MutexLock o(&open_mu_);
    target = next_seq_.load();
    if (absl::Status s = SealLocked(/*block=*/true, deadline); !s.ok()) return s;
  }
  absl::MutexLock l(&mu_);
  while (durable_seq_ < target) {
    if (!write_error_.ok()) return write_error_;
    if (writer_quit_) {
      return absl::UnavailableError("the gateway stopped before the records reached its buffer");
    }
    if (room_cv_.WaitWithDeadline(&mu_, deadline) && absl::Now() >= deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat("the gateway buffer writer is behind: ", sealed_records_,
                       " sealed records not yet on disk"));
    }
  }
  return absl::OkStatus();
}

absl::Status Publisher::SealLocked(bool block, absl::Time deadline) {
  // Backpressure: wait for room (an empty buffer always takes one seal, however large), and
  // for the writer when it is far behind. Other threads may add or seal while this one waits,
  // so the size is recomputed after each wait.
  if (open_.empty()) return absl::OkStatus();
  uint64_t total = 0;
  for (const OpenBatch& b : open_) total += b.used + 24;
  {
    absl::MutexLock l(&mu_);
    bool counted = false;  // in soft_bound_waits_
    while (true) {
      if (!write_error_.ok()) return write_error_;
      const uint64_t held = buffer_bytes_ + sealed_bytes_;
      if (stopping_ || draining_ || unblocked_) break;
      const bool room = (held == 0 || held + total <= options_.buffer_max_bytes) &&
                        sealed_bytes_ < kMaxSealedBytes;
      const bool soft = room && options_.soft_max_buffer_bytes > 0 && held > 0 &&
                        held + total > options_.soft_max_buffer_bytes &&
                        ConfirmingLocked(options_.clock->Now());
      if (room && !soft) break;
      if (!block) return absl::OkStatus();
      // On the soft bound, re-check now and then: a stall of confirmations lifts it, and no
      // event signals that.
      const absl::Time wake =
          soft ? std::min(deadline, absl::Now() + absl::Milliseconds(100)) : deadline;
      if (soft && !counted) {
        ++soft_bound_waits_;
        counted = true;
      }
      if (room_cv_.WaitWithDeadline(&mu_, wake) && absl::Now() >= deadline) {
        if (soft) {
          return absl::ResourceExhaustedError(
              absl::StrCat("the gateway is waiting for the broker to confirm (", held,
                           " bytes unconfirmed, soft bound ", options_.soft_max_buffer_bytes, ")"));
        }
        return absl::ResourceExhaustedError(
            absl::StrCat("the gateway buffer is full (", held, " bytes held, --buffer-max-bytes ",
                         options_.buffer_max_bytes, "; the broker is not taking them yet)"));
      }
    }
  }
  const int64_t produced_at = options_.clock->NowMillis();
  SealedGroup g;
  for (OpenBatch& b : open_) {
    b.bytes.resize(b.used);
    b.bytes.push_back(0x20);
    PutVarint(&b.bytes, static_cast<uint64_t>(produced_at));
    char digits[kCountDigits + 1];
    std::snprintf(digits, sizeof digits, "%010d", b.records);
    std::memcpy(b.bytes.data() + b.enterprise.size() + 1, digits, kCountDigits);
    g.bytes += b.bytes.size();
    g.records += b.records;
  }
  g.batches = std::move(open_);
  g.next_seq = next_seq_.load();
  if (position_) g.position = absl::StrCat(identity_, "\n", position_());
  if (options_.hold_unconfirmed_in_memory && g.position) {
    g.start = std::move(prev_end_);
    prev_end_ = Checkpoint{*g.position, g.next_seq};
  }
  open_.clear();
  open_index_.clear();
  last_token_ = nullptr;
  overflow_open_ = false;
  absl::MutexLock l(&mu_);
  sealed_bytes_ += g.bytes;
  sealed_records_ += g.records;
  sealed_.push_back(std::move(g));
  open_records_.store(0);
  sealed_cv_.Signal();
  return absl::OkStatus();
}

void Publisher::WriterLoop() {
  while (true) {
    SealedGroup g;
    std::optional<Checkpoint> cp;  // stored instead of the group's end (holding in memory)
    {
      absl::MutexLock l(&mu_);
      while (sealed_.empty() && !writer_quit_) sealed_cv_.Wait(&mu_);
      if (sealed_.empty()) return;
      g = std::move(sealed_.front());
      sealed_.pop_front();
      if (g.start) {
        const absl::Time now = options_.clock->Now();
        if (CanProduceNowLocked(now) && ConfirmingLocked(now)) {
          HoldLocked(g, now);
          continue;
        }
      }
      writing_ = true;
      if (options_.hold_unconfirmed_in_memory && g.position) {
        // The stored position may not pass a group still held in memory.
        if (!held_groups_.empty()) {
          cp = held_groups_.front().start;
        } else {
          cp = Checkpoint{*g.position, g.next_seq};
        }
      }
    }
    // The disk write happens outside the lock: the source keeps encoding meanwhile.
    // The batch bytes move into the write (no copy); they are produced from there afterwards.
    WriteBatch wb;
    for (OpenBatch& b : g.batches) wb.PutOwned(BatchKey(b.first_seq), std::move(b.bytes));
    if (cp) {
      wb.Put(kNextSeqKey, absl::StrCat(cp->next_seq));
      wb.Put(kSourceKey, cp->position);
    } else {
      wb.Put(kNextSeqKey, absl::StrCat(g.next_seq));
      if (g.position) wb.Put(kSourceKey, *g.position);
    }
    const absl::Status s = store_->Write(wb);
    absl::MutexLock l(&mu_);
    writing_ = false;
    if (s.ok()) {
      durable_seq_ = g.next_seq;
      ++groups_stored_;
      if (options_.hold_unconfirmed_in_memory && g.position) {
        written_end_ = Checkpoint{*g.position, g.next_seq};
      }
    }
    sealed_bytes_ -= g.bytes;
    sealed_records_ -= g.records;
    if (!s.ok()) {
      // Nothing after a failed write may be written (the buffer must stay a prefix); the
      // error surfaces from the next Add/SealAll/WaitConfirmed.
      write_error_ =
          absl::Status(s.code(), absl::StrCat("writing the gateway buffer: ", s.message()));
      write_failed_.store(true);
      spdlog::error("gateway: {}", write_error_.ToString());
      sealed_.clear();
      sealed_bytes_ = 0;
      sealed_records_ = 0;
      room_cv_.SignalAll();
      continue;
    }
    const absl::Time now = options_.clock->Now();
    if (buffer_batches_ == 0) last_progress_ = now;  // the stall clock starts now
    for (size_t i = 0; i < g.batches.size(); ++i) {
      const OpenBatch& b = g.batches[i];
      const std::string& bytes = *wb.ops()[i].second;
      buffer_bytes_ += bytes.size();
      buffer_records_ += b.records;
      ++buffer_batches_;
      bool produced = false;
      if (CanProduceNowLocked(now)) {
        produced = ProduceLocked(b.first_seq, b.enterprise, bytes, b.records, now, b.lines);
      }
      if (!produced) pending_.push_back({b.first_seq, bytes.size(), b.records, b.lines});
    }
    room_cv_.SignalAll();
    // The producer copied the bytes; hand the strings back to the source for its next batches.
    // Freeing them gave the memory back to the kernel, and the source page-faulted on every new
    // batch (a tenth of its CPU).
    absl::MutexLock sl(&spare_mu_);
    for (auto& [key, value] : wb.TakeOps()) {
      if (value) KeepSpareLocked(std::move(*value));
    }
  }
}

void Publisher::KeepSpareLocked(std::string&& s) {
  if (s.capacity() > (2u << 20) || spare_bytes_ + s.capacity() > kSpareBytes) return;
  spare_bytes_ += s.capacity();
  // Not cleared: the next batch overwrites it, and keeping its size saves zero-filling.
  spare_.push_back(std::move(s));
}

void Publisher::HoldLocked(SealedGroup& g, absl::Time now) {
  if (buffer_batches_ == 0) last_progress_ = now;  // the stall clock starts now
  const uint64_t group = held_groups_base_ + held_groups_.size();
  HeldGroup hg{*g.start, 0};
  for (OpenBatch& b : g.batches) {
    const uint64_t size = b.bytes.size();
    auto [it, inserted] = held_.try_emplace(b.first_seq, HeldBatch{std::move(b.bytes), group});
    if (!inserted) continue;  // cannot happen: ids are sequence numbers
    buffer_bytes_ += size;
    held_bytes_ += size;
    buffer_records_ += b.records;
    ++buffer_batches_;
    ++hg.unconfirmed;
    bool produced = false;
    if (pending_.empty() && in_flight_bytes_ < options_.max_in_flight_bytes) {
      produced =
          ProduceLocked(b.first_seq, b.enterprise, it->second.value, b.records, now, b.lines);
    }
    if (!produced) pending_.push_back({b.first_seq, size, b.records, b.lines});
  }
  held_groups_.push_back(std::move(hg));
  written_end_ = Checkpoint{*g.position, g.next_seq};
  durable_seq_ = g.next_seq;
  sealed_bytes_ -= g.bytes;
  sealed_records_ -= g.records;
  ++groups_held_;
  room_cv_.SignalAll();
}

std::optional<Publisher::Checkpoint> Publisher::CheckpointLocked() const {
  if (!held_groups_.empty()) return held_groups_.front().start;
  return written_end_;
}

void Publisher::StoreHeld() {
  WriteBatch wb;
  {
    absl::MutexLock l(&mu_);
    // Also with nothing held: a spill's write can land after the delivery thread's newer
    // checkpoint and leave an older one stored, which the next run (of another input, after this
    // clean stop) would number from.
    if (held_.empty() && !(options_.hold_unconfirmed_in_memory && written_end_)) return;
    for (const auto& [id, h] : held_) wb.Put(BatchKey(id), h.value);
    if (written_end_) {
      wb.Put(kNextSeqKey, absl::StrCat(written_end_->next_seq));
      wb.Put(kSourceKey, written_end_->position);
    }
  }
  if (absl::Status s = store_->Write(wb); !s.ok()) {
    // The stored checkpoint is older than these batches: the next run re-reads them.
    spdlog::error("gateway buffer: writing {} unconfirmed batches held in memory: {}", wb.size(),
                  s.ToString());
    return;
  }
  absl::MutexLock l(&mu_);
  held_.clear();
  held_bytes_ = 0;
  held_groups_base_ += held_groups_.size();
  held_groups_.clear();
}

bool Publisher::FitsLocked(absl::string_view key, size_t value_bytes) const {
  // The stored value has "<enterprise>\n<10 digits>\n" before the RecordBatch.
  const size_t prefix = key.size() + kCountDigits + 2;
  return value_bytes <= prefix ||
         value_bytes - prefix <= MaxBatchValueBytes(message_limit_.load(), key.size());
}

std::string Publisher::DescribeLinesLocked(LineRange lines) const {
  if (lines.first == 0) return "";
  return absl::StrCat(lines.first == lines.last
                          ? absl::StrCat("line ", lines.first)
                          : absl::StrCat("lines ", lines.first, "-", lines.last),
                      " of ", lines_source_);
}

bool Publisher::ProduceLocked(uint64_t id, const std::string& key, const std::string& value,
                              int records, absl::Time sealed_at, LineRange lines) {
  StoredBatch b;
  if (!ParseStored(value, &b)) return false;
  if (!FitsLocked(key, value.size())) return false;  // RefillLocked re-packs it
  absl::Status s = producer_->Produce(options_.topic, -1, key, b.bytes, {},
                                      reinterpret_cast<void*>(id), absl::Milliseconds(100));
  if (!s.ok()) {
    // Once per batch: it is retried every few milliseconds.
    if (!absl::IsResourceExhausted(s) && warned_batch_ != id) {
      warned_batch_ = id;
      const std::string where = DescribeLinesLocked(lines);
      spdlog::warn("gateway: batch {} of {} ({} records{}{}): {}", id, key, records,
                   where.empty() ? "" : ", ", where, s.ToString());
    }
    return false;
  }
  in_flight_[id] = InFlight{value.size(), records, sealed_at, lines};
  in_flight_bytes_ += value.size();
  return true;
}

bool Publisher::CanProduceNowLocked(absl::Time now) const {
  return started_ && topic_ready_ && !producer_broken_ && pending_.empty() &&
         in_flight_bytes_ < options_.max_in_flight_bytes && now >= retry_failed_after_;
}

bool Publisher::ConfirmingLocked(absl::Time now) const {
  return started_ && topic_ready_ && !producer_broken_ && connected_.load() &&
         (buffer_batches_ == 0 || now - last_progress_ < options_.soft_stall);
}

void Publisher::RefillLocked() {
  if (!started_ || !topic_ready_ || stopping_ || producer_broken_) return;
  const absl::Time now = options_.clock->Now();
  if (now < retry_failed_after_) return;
  while (!pending_.empty() && in_flight_bytes_ < options_.max_in_flight_bytes) {
    const Pending p = pending_.front();
    // Held in memory, or read back from the store.
    const std::string* value = nullptr;
    absl::StatusOr<std::string> stored;
    if (auto h = held_.find(p.id); h != held_.end()) {
      value = &h->second.value;
    } else {
      stored = store_->Get(BatchKey(p.id));
      if (!stored.ok()) {
        spdlog::error("gateway buffer: reading batch {}: {}", p.id, stored.status().ToString());
        return;
      }
      value = &*stored;
    }
    StoredBatch b;
    if (!ParseStored(*value, &b)) return;
    if (!FitsLocked(b.enterprise, value->size())) {
      // Sealed under a larger limit, or refused by the broker: re-packed in place in pending_.
      if (!RepackLocked(p, *value)) return;
      continue;
    }
    if (!ProduceLocked(p.id, std::string(b.enterprise), *value, p.records, now, p.lines)) return;
    pending_.pop_front();
  }
}

void Publisher::StoreMessageLimit(uint64_t limit) {
  message_limit_.store(limit);
  value_room_.store(std::min<uint64_t>(options_.batch_max_bytes, MaxBatchValueBytes(limit, 0)));
}

void Publisher::SetMessageLimitLocked(uint64_t limit, absl::string_view why) {
  if (limit == message_limit_.load()) return;
  StoreMessageLimit(limit);
  WriteBatch wb;
  wb.Put(kMessageLimitKey, absl::StrCat(limit));
  if (absl::Status s = store_->Write(wb); !s.ok()) {
    spdlog::warn("gateway buffer: storing the message limit: {}", s.ToString());
  }
  spdlog::info(
      "gateway: message limit {} bytes ({}): larger records are rejected, batches stay below it",
      limit, std::string(why));
  if (options_.on_message_limit) options_.on_message_limit(limit);
}

absl::StatusOr<uint64_t> Publisher::ReadTopicLimit(bool own_connection) {
  absl::StatusOr<std::map<std::string, std::string>> c =
      own_connection
          ? DescribeTopicConfig(options_.client, options_.topic, absl::Seconds(5))
          : DescribeTopicConfig(producer_->raw()->c_ptr(), options_.topic, absl::Seconds(2));
  if (!c.ok()) return c.status();
  uint64_t v = 0;
  auto it = c->find("max.message.bytes");
  if (it == c->end() || !absl::SimpleAtoi(it->second, &v)) {
    return absl::NotFoundError("the topic reports no max.message.bytes");
  }
  return v;
}

void Publisher::LowerMessageLimit(uint64_t refused_bytes) {
  uint64_t topic = 0;
  if (options_.read_topic_limit) {
    // Not through the producer: it has just failed fatally.
    absl::StatusOr<uint64_t> t = ReadTopicLimit(/*own_connection=*/true);
    if (t.ok()) topic = *t;
  }
  absl::MutexLock l(&mu_);
  const uint64_t current = message_limit_.load();
  // The topic's configuration when it explains the refusal; else something below what was refused
  // (a smaller limit elsewhere, e.g. the broker's), down to a floor below which nothing useful
  // fits.
  uint64_t limit = topic > 0 && topic < current ? topic : std::min(current, refused_bytes) / 4 * 3;
  limit = std::max<uint64_t>(limit, 1024);
  if (limit < current) {
    SetMessageLimitLocked(
        limit, topic > 0 && topic < current
                   ? absl::StrCat("max.message.bytes of topic ", options_.topic)
                   : absl::StrCat("the broker refused ", refused_bytes, " bytes as too large"));
  }
}

Publisher::Repacked Publisher::PackWithinLimitLocked(const Pending& p, absl::string_view enterprise,
                                                     absl::string_view bytes) const {
  Repacked out;
  out.aside = SetAside{std::string(enterprise), p.id, DescribeLinesLocked(p.lines), {}};
  v1::RecordBatch batch;
  std::vector<BadRecord> bad;
  if (absl::Status d = DecodeRecordBatch(bytes, &batch, &bad); !d.ok()) {
    out.aside.items.push_back({{}, std::string(d.message()), std::string(bytes)});
  }
  for (const BadRecord& b : bad) out.aside.items.push_back({{}, b.reason, std::string(b.wire)});
  const uint64_t limit = message_limit_.load();
  const uint64_t max_value =
      std::min<uint64_t>(options_.batch_max_bytes, MaxBatchValueBytes(limit, enterprise.size()));
  v1::RecordBatch part;
  part.set_enterprise(batch.enterprise());
  part.set_gateway_id(batch.gateway_id());
  part.set_produced_at_ms(batch.produced_at_ms());
  const size_t empty = part.ByteSizeLong();
  size_t size = empty;
  auto seal = [&] {
    if (part.records_size() == 0) return;
    char digits[kCountDigits + 1];
    std::snprintf(digits, sizeof digits, "%010d", part.records_size());
    Part done{out.parts.empty() ? p.id : part.records(0).sequence(), part.records_size(),
              absl::StrCat(enterprise, "\n", digits, "\n")};
    part.AppendToString(&done.value);
    out.parts.push_back(std::move(done));
    part.clear_records();
    size = empty;
  };
  for (v1::Record& r : *batch.mutable_records()) {
    const size_t bytes = r.ByteSizeLong();
    const size_t framed = 1 + VarintSize(bytes) + bytes;
    if (empty + framed > max_value) {
      out.aside.items.push_back(
          {r,
           absl::StrCat("record of ", FormatMessageBytes(empty + framed), " exceeds the ",
                        FormatMessageBytes(limit), " message limit"),
           ""});
      continue;
    }
    if (size + framed > max_value) seal();
    part.add_records()->Swap(&r);
    size += framed;
  }
  seal();
  return out;
}

bool Publisher::RepackLocked(const Pending& p, const std::string& value) {
  // Decode first: `value` may be the held batch this replaces.
  StoredBatch stored;
  if (!ParseStored(value, &stored)) return false;
  const std::string enterprise(stored.enterprise);
  Repacked packed = PackWithinLimitLocked(p, enterprise, stored.bytes);
  std::vector<Part>& parts = packed.parts;
  SetAside& aside = packed.aside;
  const uint64_t limit = message_limit_.load();
  if (!aside.items.empty() && !set_aside_done_.contains(p.id)) {
    absl::Status s;
    if (options_.set_aside) {
      s = options_.set_aside(aside);
    } else {  // nowhere to keep them: at least the log has them
      for (const SetAside::Item& i : aside.items) {
        spdlog::error("gateway: dropping record {} of {} ({}): {}", i.record.sequence(), enterprise,
                      i.reason, i.record.ShortDebugString());
      }
    }
    if (!s.ok()) {
      spdlog::error("gateway: cannot set aside {} records of batch {} ({}); retrying in 5 s",
                    aside.items.size(), p.id, s.ToString());
      retry_failed_after_ = options_.clock->Now() + absl::Seconds(5);
      return false;
    }
    set_aside_done_.insert(p.id);
    records_set_aside_ += aside.items.size();
  }
  // The parts take the batch's place: in memory when it was held, else in the store.
  std::optional<Checkpoint> cp;
  const bool was_held = held_.contains(p.id);
  if (auto h = held_.find(p.id); h != held_.end()) {
    const uint64_t group = h->second.group;
    HeldGroup& hg = held_groups_[group - held_groups_base_];
    held_bytes_ -= h->second.value.size();
    held_.erase(h);
    hg.unconfirmed += static_cast<int>(parts.size()) - 1;
    for (Part& part : parts) {
      held_bytes_ += part.value.size();
      held_.try_emplace(part.id, HeldBatch{std::move(part.value), group});
    }
    if (hg.unconfirmed == 0) {  // all of it set aside: the checkpoint may move on
      while (!held_groups_.empty() && held_groups_.front().unconfirmed == 0) {
        held_groups_.pop_front();
        ++held_groups_base_;
      }
      cp = CheckpointLocked();
    }
  }
  WriteBatch wb;
  if (cp) {
    wb.Put(kNextSeqKey, absl::StrCat(cp->next_seq));
    wb.Put(kSourceKey, cp->position);
  } else if (!was_held) {
    wb.Delete(BatchKey(p.id));
    for (const Part& part : parts) wb.Put(BatchKey(part.id), part.value);
  }
  if (!wb.empty()) {
    if (absl::Status w = store_->Write(wb); !w.ok()) {
      spdlog::error("gateway buffer: re-packing batch {}: {}; retrying in 5 s", p.id, w.ToString());
      retry_failed_after_ = options_.clock->Now() + absl::Seconds(5);
      return false;
    }
  }
  set_aside_done_.erase(p.id);
  ++batches_repacked_;
  buffer_bytes_ -= p.bytes;
  buffer_records_ -= p.records;
  --buffer_batches_;
  pending_.pop_front();
  uint64_t part_records = 0;
  for (auto it = parts.rbegin(); it != parts.rend(); ++it) {
    const uint64_t bytes = was_held ? held_.at(it->id).value.size() : it->value.size();
    pending_.push_front({it->id, bytes, it->records, p.lines});
    buffer_bytes_ += bytes;
    buffer_records_ += it->records;
    ++buffer_batches_;
    part_records += it->records;
  }
  spdlog::warn(
      "gateway: batch {} of {} ({} records, {} bytes{}{}) is over the message limit of {} bytes: "
      "re-packed into {} batches of {} records{}",
      p.id, enterprise, p.records, p.bytes, aside.lines.empty() ? "" : ", ", aside.lines, limit,
      parts.size(), part_records,
      aside.items.empty() ? "" : absl::StrCat(", ", aside.items.size(), " records set aside"));
  room_cv_.SignalAll();
  return true;
}

void Publisher::RecoverFromFatal(const std::string& reason) {
  std::shared_ptr<KafkaProducer> old;
  size_t unconfirmed = 0;
  {
    absl::MutexLock l(&mu_);
    producer_broken_ = true;
    // Everything unconfirmed goes back to pending_, in sequence order.
    std::vector<Pending> all(pending_.begin(), pending_.end());
    for (const auto& [id, f] : in_flight_) all.push_back({id, f.bytes, f.records, f.lines});
    std::sort(all.begin(), all.end(),
              [](const Pending& a, const Pending& b) { return a.id < b.id; });
    all.erase(std::unique(all.begin(), all.end(),
                          [](const Pending& a, const Pending& b) { return a.id == b.id; }),
              all.end());
    pending_.assign(all.begin(), all.end());
    in_flight_.clear();
    in_flight_bytes_ = 0;
    unconfirmed = pending_.size();
    old = producer_;
  }
  spdlog::warn(
      "gateway: producer failed fatally ({}); resending {} unconfirmed batches in order "
      "with a new producer",
      reason, unconfirmed);
  old->raw()->purge(RdKafka::Producer::PURGE_QUEUE | RdKafka::Producer::PURGE_INFLIGHT);
  old->Poll(absl::ZeroDuration());
  {
    // Reports of the old producer (purges, late successes) are moot: all of it is resent.
    absl::MutexLock l(&dr_mu_);
    reports_.clear();
  }
  if (absl::Status s = CreateProducer(); !s.ok()) {
    spdlog::error("gateway: cannot create a new producer (retrying): {}", s.ToString());
    absl::SleepFor(absl::Seconds(1));
    return;  // producer_ is still the broken one: the next round tries again
  }
  {
    absl::MutexLock l(&mu_);
    producer_broken_ = false;
    ++producer_recoveries_;
    last_progress_ = options_.clock->Now();
    retry_failed_after_ = options_.clock->Now();
    RefillLocked();
  }
  old.reset();  // after purge this does not wait
}

void Publisher::InjectFatalErrorForTest() {
  std::shared_ptr<KafkaProducer> p;
  {
    absl::MutexLock l(&mu_);
    p = producer_;
  }
  rd_kafka_test_fatal_error(p->raw()->c_ptr(), RD_KAFKA_RESP_ERR__GAPLESS_GUARANTEE,
                            "injected by a test");
}

bool Publisher::MakeTopicReady() {
  if (absl::Status s = options_.ensure_topic(); !s.ok()) {
    spdlog::warn("gateway: cannot create topic {} yet (retrying): {}", options_.topic,
                 s.ToString());
    return false;
  }
  // The topic's own limit, before anything is produced to it.
  uint64_t limit = producer_limit_;
  std::string why = "the producer's message.max.bytes";
  if (options_.read_topic_limit) {
    absl::StatusOr<uint64_t> t = ReadTopicLimit(/*own_connection=*/false);
    if (!t.ok()) {
      // (The embedded broker, or no DescribeConfigs right: a refusal still lowers it.)
      spdlog::info("gateway: cannot read max.message.bytes of topic {} ({}); assuming {} bytes",
                   options_.topic, t.status().ToString(), limit);
    } else if (*t < limit) {
      limit = *t;
      why = absl::StrCat("max.message.bytes of topic ", options_.topic);
    }
  }
  bool replace;
  {
    absl::MutexLock l(&mu_);
    SetMessageLimitLocked(limit, why);
    replace = producer_batch_size_ > limit;
  }
  // Nothing was produced yet (the topic was not ready): a producer with the smaller batch.size
  // simply takes over.
  if (replace) {
    if (absl::Status c = CreateProducer(); !c.ok()) {
      spdlog::error("gateway: cannot create a producer (retrying): {}", c.ToString());
      return false;
    }
  }
  absl::MutexLock l(&mu_);
  topic_ready_ = true;
  RefillLocked();
  return true;
}

void Publisher::DeliveryLoop() {
  absl::Time next_ensure = absl::InfinitePast();
  std::vector<Report> reports;
  uint64_t refused_bytes = 0;  // the largest batch the broker refused as too large
  // Confirmed batches whose delete from the buffer failed (e.g. the store refuses writes while
  // the disk is nearly full, until a flush or compaction frees space): retried, or the buffer
  // never drains and Drain waits forever.
  std::vector<Pending> undeleted;
  absl::Time retry_deletes_at = absl::InfinitePast();
  while (!quit_.load()) {
    if (!undeleted.empty() && absl::Now() >= retry_deletes_at) {
      WriteBatch deletes;
      for (const Pending& p : undeleted) deletes.Delete(BatchKey(p.id));
      if (store_->Write(deletes).ok()) {
        absl::MutexLock l(&mu_);
        for (const Pending& p : undeleted) {
          buffer_bytes_ -= p.bytes;
          buffer_records_ -= p.records;
          --buffer_batches_;
          ++batches_confirmed_;
        }
        undeleted.clear();
        room_cv_.SignalAll();
      } else {
        retry_deletes_at = absl::Now() + absl::Milliseconds(200);
      }
    }
    bool ready;
    {
      absl::MutexLock l(&mu_);
      ready = topic_ready_;
    }
    if (!ready && absl::Now() >= next_ensure && !MakeTopicReady()) {
      next_ensure = absl::Now() + absl::Seconds(3);
    }
    // Only this thread replaces producer_, so it may use it without the lock.
    producer_->Poll(absl::Milliseconds(20));
    reports.clear();
    {
      absl::MutexLock l(&dr_mu_);
      reports.swap(reports_);
    }
    if (!reports.empty()) {
      // Confirmed batches held in memory are dropped here (no store delete); when the oldest
      // held groups complete, the stored checkpoint moves on, in the same write as the deletes.
      std::vector<bool> was_held(reports.size(), false);
      std::optional<Checkpoint> cp;
      std::vector<std::string> freed;
      {
        absl::MutexLock l(&mu_);
        if (!held_.empty()) {
          bool completed = false;
          for (size_t i = 0; i < reports.size(); ++i) {
            const uint64_t id = reports[i].id;
            if (!reports[i].status.ok() || !in_flight_.contains(id)) continue;
            auto h = held_.find(id);
            if (h == held_.end()) continue;
            was_held[i] = true;
            held_confirmed_since_flush_ += h->second.value.size();
            held_bytes_ -= h->second.value.size();
            HeldGroup& hg = held_groups_[h->second.group - held_groups_base_];
            completed |= --hg.unconfirmed == 0;
            freed.push_back(std::move(h->second.value));
            held_.erase(h);
          }
          if (completed) {
            while (!held_groups_.empty() && held_groups_.front().unconfirmed == 0) {
              held_groups_.pop_front();
              ++held_groups_base_;
            }
            cp = CheckpointLocked();
          }
        }
      }
      if (!freed.empty()) {
        absl::MutexLock sl(&spare_mu_);
        for (std::string& v : freed) KeepSpareLocked(std::move(v));
      }
      WriteBatch deletes;
      for (size_t i = 0; i < reports.size(); ++i) {
        if (reports[i].status.ok() && !was_held[i]) deletes.Delete(BatchKey(reports[i].id));
      }
      if (cp) {
        deletes.Put(kNextSeqKey, absl::StrCat(cp->next_seq));
        deletes.Put(kSourceKey, cp->position);
      }
      absl::Status ws = deletes.empty() ? absl::OkStatus() : store_->Write(deletes);
      if (ws.ok() && options_.flush_store &&
          held_confirmed_since_flush_ >= options_.flush_every_bytes) {
        // Bounds what a crash re-reads: the store has no log, only its flushes survive.
        options_.flush_store();
        held_confirmed_since_flush_ = 0;
      }
      if (!ws.ok()) spdlog::error("gateway buffer: deleting confirmed batches: {}", ws.ToString());
      std::vector<std::tuple<absl::Status, int, absl::Duration>> notes;
      {
        absl::MutexLock l(&mu_);
        const absl::Time now = options_.clock->Now();
        std::vector<Pending> failed;
        std::string failed_status, failed_lines;
        for (size_t i = 0; i < reports.size(); ++i) {
          const uint64_t id = reports[i].id;
          const absl::Status& status = reports[i].status;
          auto it = in_flight_.find(id);
          if (it == in_flight_.end()) continue;
          const InFlight f = it->second;
          in_flight_.erase(it);
          in_flight_bytes_ -= f.bytes;
          notes.emplace_back(status, f.records, now - f.sealed_at);
          if (status.ok()) last_progress_ = now;
          if (status.ok() && (ws.ok() || was_held[i])) {
            buffer_bytes_ -= f.bytes;
            buffer_records_ -= f.records;
            --buffer_batches_;
            records_confirmed_ += f.records;
            ++batches_confirmed_;
          } else if (status.ok()) {
            // Delivered but still in the buffer (resent on a restart, harmless) until a retried
            // delete succeeds.
            records_confirmed_ += f.records;
            undeleted.push_back({id, f.bytes, f.records, f.lines});
            retry_deletes_at = absl::Now() + absl::Milliseconds(200);
          } else {
            ++delivery_errors_;
            failed.push_back({id, f.bytes, f.records, f.lines});
            if (failed_status.empty()) {
              failed_status = status.ToString();
              failed_lines = DescribeLinesLocked(f.lines);
            }
            if (reports[i].error == RdKafka::ERR_MSG_SIZE_TOO_LARGE ||
                reports[i].error == RdKafka::ERR_RECORD_LIST_TOO_LARGE) {
              refused_bytes = std::max(refused_bytes, f.bytes);
            }
          }
        }
        if (!failed.empty()) {
          spdlog::warn("gateway: {} batches failed delivery ({}{}{}); retrying", failed.size(),
                       failed_status, failed_lines.empty() ? "" : "; the first holds ",
                       failed_lines);
          // Back in front of what waits, in sequence order. (Later batches of the same
          // partition cannot have overtaken them: that failure would be fatal, see above.)
          std::vector<Pending> all(pending_.begin(), pending_.end());
          all.insert(all.end(), failed.begin(), failed.end());
          std::sort(all.begin(), all.end(),
                    [](const Pending& a, const Pending& b) { return a.id < b.id; });
          pending_.assign(all.begin(), all.end());
          retry_failed_after_ = now + absl::Seconds(1);
        }
        room_cv_.SignalAll();
      }
      if (options_.on_delivery) {
        for (const auto& [s, n, lat] : notes) options_.on_delivery(s, n, lat);
      }
    }
    if (refused_bytes > 0) {
      // The broker takes less than the limit said: lower it, and resend everything unconfirmed
      // in order through a producer whose batch.size fits, re-packing what is over it.
      LowerMessageLimit(refused_bytes);
      RecoverFromFatal(
          absl::StrCat("the broker refused a batch of ", refused_bytes, " bytes as too large"));
      refused_bytes = 0;
      continue;
    }
    std::string fatal;
    if (producer_->raw()->fatal_error(fatal) != RdKafka::ERR_NO_ERROR) {
      RecoverFromFatal(fatal);
      continue;
    }
    {
      absl::MutexLock l(&mu_);
      RefillLocked();
    }
    // Never block here, not even on open_mu_: this thread is the one that frees room in the
    // buffer, and a thread sealing into a full buffer holds open_mu_ while it waits for room.
    if (!position_mode_.load() && open_records_.load() > 0 && open_mu_.TryLock()) {
      if (!open_.empty() && options_.clock->Now() - oldest_open_ >= options_.linger) {
        if (absl::Status s = SealLocked(/*block=*/false); !s.ok()) {
          spdlog::error("gateway: {}", s.ToString());
        }
      }
      open_mu_.Unlock();
    }
  }
}

void Publisher::MonitorLoop() {
  while (!quit_.load()) {
    std::shared_ptr<KafkaProducer> p;
    {
      absl::MutexLock l(&mu_);
      p = producer_;
    }
    RdKafka::Metadata* md = nullptr;
    const RdKafka::ErrorCode err = p->raw()->metadata(false, nullptr, &md, 1500);
    const bool up = err == RdKafka::ERR_NO_ERROR;
    if (connected_.exchange(up) != up) {
      // A source waiting on the soft bound re-checks it (it lifts when the broker goes away).
      absl::MutexLock l(&mu_);
      room_cv_.SignalAll();
    }
    delete md;
    p.reset();
    for (int i = 0; i < 20 && !quit_.load(); ++i) absl::SleepFor(absl::Milliseconds(100));
  }
}

absl::Status Publisher::WaitConfirmed(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  absl::MutexLock l(&mu_);
  while (buffer_batches_ > 0 || open_records_.load() > 0 || !sealed_.empty() || writing_) {
    if (!write_error_.ok()) return write_error_;
    if (room_cv_.WaitWithDeadline(&mu_, deadline) && absl::Now() >= deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat(buffer_batches_, " batches (", buffer_records_ + sealed_records_,
                       " records) still unconfirmed after ", absl::FormatDuration(timeout)));
    }
  }
  return write_error_;
}

void Publisher::Unblock() {
  absl::MutexLock l(&mu_);
  unblocked_ = true;
  room_cv_.SignalAll();
}

void Publisher::Stop(absl::Duration grace) {
  {
    absl::MutexLock l(&mu_);
    if (draining_) return;  // stopped (or stopping) already
    draining_ = true;       // no backpressure from here on: a blocked Add gets through
    room_cv_.SignalAll();
  }
  {
    absl::MutexLock o(&open_mu_);
    if (absl::Status s = SealLocked(); !s.ok()) spdlog::error("gateway: {}", s.ToString());
    stop_adding_.store(true);
  }
  {
    // Sealed records must reach the disk buffer before stopping (records fed through Feed exist
    // nowhere else).
    absl::MutexLock l(&mu_);
    while ((!sealed_.empty() || writing_) && write_error_.ok()) room_cv_.Wait(&mu_);
  }
  if (grace > absl::ZeroDuration() && producer_ != nullptr) (void)WaitConfirmed(grace);
  {
    absl::MutexLock l(&mu_);
    stopping_ = true;
    writer_quit_ = true;
    sealed_cv_.SignalAll();
    room_cv_.SignalAll();
  }
  if (writer_thread_.joinable()) writer_thread_.join();
  quit_.store(true);
  if (delivery_thread_.joinable()) delivery_thread_.join();
  if (monitor_thread_.joinable()) monitor_thread_.join();
  if (producer_ != nullptr) {
    // What is not confirmed stays in the buffer for the next run; do not wait for it here.
    producer_->raw()->purge(RdKafka::Producer::PURGE_QUEUE | RdKafka::Producer::PURGE_INFLIGHT);
    producer_->Poll(absl::ZeroDuration());
    producer_.reset();
  }
  StoreHeld();
}

PublisherStats Publisher::stats() const {
  absl::MutexLock l(&mu_);
  PublisherStats s;
  s.records_added = records_added_.load();
  s.records_confirmed = records_confirmed_;
  s.batches_confirmed = batches_confirmed_;
  s.delivery_errors = delivery_errors_;
  s.buffer_bytes = buffer_bytes_;
  s.buffer_batches = buffer_batches_;
  s.buffer_records = buffer_records_;
  s.open_records = open_records_.load() + sealed_records_;
  s.next_sequence = next_seq_.load();
  s.producer_recoveries = producer_recoveries_;
  s.soft_bound_waits = soft_bound_waits_;
  s.held_batches = held_.size();
  s.held_bytes = held_bytes_;
  s.groups_held = groups_held_;
  s.groups_stored = groups_stored_;
  s.redundant_dropped = redundant_dropped_;
  s.message_limit = message_limit_.load();
  s.producer_batch_size = producer_batch_size_;
  s.batches_repacked = batches_repacked_;
  s.records_set_aside = records_set_aside_;
  s.topic_ready = topic_ready_;
  return s;
}

}  // namespace cybersyn::ingest
