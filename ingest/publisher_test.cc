// Publisher unit tests on an in-memory store. Most never call Start (no broker: sealed groups are
// written to the buffer and wait there); the soft-bound tests produce to librdkafka's mock cluster
// (a fake broker in-process), whose partition leader and broker state they control.
#include "ingest/publisher.h"

#include <atomic>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "librdkafka/rdkafka.h"
#include "librdkafka/rdkafka_mock.h"

namespace cybersyn::ingest {
namespace {

// A MemoryKvStore that remembers, for every write that stores a source position, that position
// and how many records all buffered batches held after the write.
class RecordingStore : public KvStore {
 public:
  struct Checkpoint {
    std::string position;
    uint64_t records_buffered = 0;
  };
  absl::StatusOr<std::string> Get(absl::string_view key) override { return mem_.Get(key); }
  absl::Status Write(const WriteBatch& batch) override {
    absl::MutexLock l(&mu_);
    std::optional<std::string> position;
    for (const auto& [k, v] : batch.ops()) {
      if (!v.has_value()) continue;
      if (absl::StartsWith(k, "b/")) {
        // "<enterprise>\n<10-digit count>\n<RecordBatch>"
        std::vector<absl::string_view> parts = absl::StrSplit(*v, absl::MaxSplits('\n', 2));
        uint64_t n = 0;
        EXPECT_EQ(parts.size(), 3u);
        EXPECT_TRUE(absl::SimpleAtoi(parts[1], &n));
        records_ += n;
        max_value_ = std::max<uint64_t>(max_value_, parts[2].size());
      } else if (k == "m/source") {
        position = *v;
      }
    }
    if (position) checkpoints_.push_back({*position, records_});
    return mem_.Write(batch);
  }
  absl::Status Scan(absl::string_view prefix,
                    const std::function<bool(absl::string_view, absl::string_view)>& fn) override {
    return mem_.Scan(prefix, fn);
  }
  uint64_t ApproximateBytes() override { return mem_.ApproximateBytes(); }

  std::vector<Checkpoint> checkpoints() {
    absl::MutexLock l(&mu_);
    return checkpoints_;
  }
  uint64_t max_value() {
    absl::MutexLock l(&mu_);
    return max_value_;
  }
  void ResetMaxValue() {
    absl::MutexLock l(&mu_);
    max_value_ = 0;
  }

 private:
  MemoryKvStore mem_;
  absl::Mutex mu_;
  uint64_t records_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t max_value_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<Checkpoint> checkpoints_ ABSL_GUARDED_BY(mu_);
};

v1::Record MakeRecord(int i) {
  v1::Record r;
  r.set_node(absl::StrCat("ent", i % 3, "/site/unit", i % 7));
  r.set_indicator("temperature");
  r.set_value(20.0 + i);
  r.set_event_time_ms(1'714'521'600'000 + i * 1000);
  return r;
}

// A batch that reaches max_bytes is sealed with the record that overflowed it in the same group:
// every stored source position is exactly the number of records in the buffer. (Sealing before
// adding that record stored a position one past it, so a crash before the next seal skipped it.)
TEST(PublisherTest, ByteBoundSealStoresThePositionOfExactlyWhatIsBuffered) {
  RecordingStore store;
  PublisherOptions o;
  o.gateway_id = "gw";
  o.topic = "t.records";
  o.batch_max_records = 1000;  // only the byte bound seals
  o.batch_max_bytes = 300;     // about 6 records per batch
  o.linger = absl::Hours(1);
  auto p = Publisher::Create(o, &store);
  ASSERT_TRUE(p.ok()) << p.status();
  uint64_t read = 0;  // what the source has returned so far (its position)
  (*p)->SetPositionProvider("test:source", [&read] { return absl::StrCat(read); });
  constexpr int kRecords = 500;
  for (int i = 0; i < kRecords; ++i) {
    const v1::Record r = MakeRecord(i);
    ++read;  // the source advanced past the record before the gateway adds it
    Publisher::Appender a(p->get());
    ASSERT_TRUE(a.Add(r, absl::StrCat("ent", i % 3)).ok());
  }
  ASSERT_TRUE((*p)->SealAll().ok());
  (*p)->Stop(absl::ZeroDuration());
  const std::vector<RecordingStore::Checkpoint> cps = store.checkpoints();
  ASSERT_GT(cps.size(), 10u) << "the byte bound should have sealed many groups";
  for (const RecordingStore::Checkpoint& c : cps) {
    EXPECT_EQ(c.position, absl::StrCat("test:source\n", c.records_buffered));
  }
  EXPECT_EQ(cps.back().records_buffered, static_cast<uint64_t>(kRecords));
  EXPECT_LE(store.max_value(), o.batch_max_bytes + 64) << "batches stay near the byte bound";
  EXPECT_EQ((*p)->stats().buffer_records, static_cast<uint64_t>(kRecords));
}

// The hand-rolled encoding (the gateway's hot path) writes exactly the bytes protobuf would:
// RecordBatch field 3 (tag 0x1A, length) around SerializeToString of the record with its
// sequence. Labels are serialised from the same map object, so both walk it in the same order.
TEST(PublisherTest, HandEncodedRecordIsByteIdenticalToProtobuf) {
  std::vector<std::pair<v1::Record, uint64_t>> cases;
  cases.emplace_back(MakeRecord(1), 1);
  cases.emplace_back(v1::Record(), 0);  // every field at its default: an empty message
  {
    v1::Record r = MakeRecord(2);
    r.set_value(-0.0);        // bits != 0: encoded (proto3 skips only +0.0)
    r.set_event_time_ms(-1);  // negative int64: a 10-byte varint
    cases.emplace_back(r, UINT64_MAX);
  }
  {
    v1::Record r = MakeRecord(3);
    r.set_value(0.0);
    r.set_event_time_ms(0);
    r.set_node(std::string(300, 'n'));  // a two-byte length varint
    r.set_indicator("");
    cases.emplace_back(r, 127);
  }
  {
    v1::Record r = MakeRecord(4);
    (*r.mutable_labels())["shift"] = "night";
    (*r.mutable_labels())["operator"] = "";
    (*r.mutable_labels())["ü"] = std::string(200, 'v');
    (*r.mutable_labels())[""] = "empty key";  // rejected by validation, still encodable
    cases.emplace_back(r, 128);
  }
  {
    v1::Record r = MakeRecord(5);
    r.set_value(1e-310);  // subnormal
    cases.emplace_back(r, 1ull << 35);
  }
  for (auto& [record, seq] : cases) {
    record.set_sequence(seq);
    const std::string inner = record.SerializeAsString();
    record.clear_sequence();
    std::string want = "\x1a";
    for (uint64_t n = inner.size();; n >>= 7) {
      want.push_back(static_cast<char>(n >= 0x80 ? (n & 0x7f) | 0x80 : n));
      if (n < 0x80) break;
    }
    want += inner;
    EXPECT_EQ(EncodeRecordForTest(record, seq), want)
        << record.ShortDebugString() << " seq " << seq;
    // The same bytes from a source's pre-encoded node and indicator (the simulator's path).
    v1::Record node_indicator;
    node_indicator.set_node(record.node());
    node_indicator.set_indicator(record.indicator());
    const std::string pre = node_indicator.SerializeAsString();
    RecordRef ref = RecordRef::Of(record);
    ref.node_indicator_pb = pre;
    EXPECT_EQ(EncodeRecordForTest(ref, seq), want)
        << "pre-encoded: " << record.ShortDebugString() << " seq " << seq;
    v1::RecordBatch batch;
    ASSERT_TRUE(batch.ParseFromString(want));
    ASSERT_EQ(batch.records_size(), 1);
    EXPECT_EQ(batch.records(0).sequence(), seq);
  }
}

// The encoder reuses the varints of the sequence number (incremented in place) and of the last
// event time (re-encoded only when it changes): every buffered record must still decode to what
// was added, with consecutive sequence numbers across the carries at 128 and 16,384, repeated,
// changing, zero and negative times, and after SkipSequences.
TEST(PublisherTest, BufferedBatchesDecodeToTheRecordsAddedWithTheirSequences) {
  MemoryKvStore store;
  PublisherOptions o;
  o.gateway_id = "gw";
  o.topic = "t.records";
  o.batch_max_records = 50;
  o.linger = absl::Hours(1);
  auto p = Publisher::Create(o, &store);
  ASSERT_TRUE(p.ok()) << p.status();
  std::map<uint64_t, v1::Record> want;  // by sequence
  uint64_t seq = 1;
  const auto add = [&](int n) {
    for (int i = 0; i < n; ++i, ++seq) {
      v1::Record r = MakeRecord(static_cast<int>(seq));
      // Runs of one time (as a simulator tick), then a new one; some 0 (left out), some negative.
      const int64_t run = static_cast<int64_t>(seq / 7);
      r.set_event_time_ms(run % 11 == 3 ? 0 : (run % 13 == 5 ? -run : 1'714'521'600'000 + run));
      want[seq] = r;
      ASSERT_TRUE((*p)->Add(r, r.node().substr(0, 4)).ok());
    }
  };
  add(300);  // 1..300: past 128
  ASSERT_TRUE((*p)->SealAll().ok());
  // SkipSequences waits for nothing: let the writer thread store the sealed groups first.
  for (int i = 0; i < 500 && (*p)->stats().open_records > 0; ++i) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  ASSERT_TRUE((*p)->SkipSequences(16'384 - 40 - seq).ok());
  seq = 16'384 - 40;
  add(100);  // past 16,384
  ASSERT_TRUE((*p)->SealAll().ok());
  (*p)->Stop(absl::ZeroDuration());

  std::map<uint64_t, v1::Record> got;
  ASSERT_TRUE(store
                  .Scan("b/",
                        [&](absl::string_view, absl::string_view value) {
                          // "<enterprise>\n<10-digit count>\n<RecordBatch>"
                          std::vector<absl::string_view> parts =
                              absl::StrSplit(value, absl::MaxSplits('\n', 2));
                          v1::RecordBatch b;
                          EXPECT_TRUE(
                              b.ParseFromArray(parts[2].data(), static_cast<int>(parts[2].size())));
                          for (const v1::Record& r : b.records()) got[r.sequence()] = r;
                          return true;
                        })
                  .ok());
  ASSERT_EQ(got.size(), want.size());
  for (auto& [sq, r] : want) {
    ASSERT_TRUE(got.contains(sq)) << sq;
    r.set_sequence(sq);
    EXPECT_EQ(got[sq].SerializeAsString(), r.SerializeAsString()) << sq;
  }
}

// librdkafka's mock cluster with one broker and one topic of one partition.
class MockCluster {
 public:
  explicit MockCluster(const std::string& topic) : topic_(topic) {
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    char err[512];
    rd_kafka_conf_set(conf, "log_level", "3", err, sizeof err);
    rk_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    cluster_ = rd_kafka_mock_cluster_new(rk_, 1);
    rd_kafka_mock_topic_create(cluster_, topic.c_str(), 1, 1);
  }
  ~MockCluster() {
    rd_kafka_mock_cluster_destroy(cluster_);
    rd_kafka_destroy(rk_);
  }
  std::string bootstrap() const { return rd_kafka_mock_cluster_bootstraps(cluster_); }
  // Leader -1: the broker answers metadata requests but takes no produce (nothing confirmed).
  void SetLeader(int32_t broker) {
    rd_kafka_mock_partition_set_leader(cluster_, topic_.c_str(), 0, broker);
  }
  void SetDown() { rd_kafka_mock_broker_set_down(cluster_, 1); }
  void SetUp() { rd_kafka_mock_broker_set_up(cluster_, 1); }

 private:
  std::string topic_;
  rd_kafka_t* rk_ = nullptr;
  rd_kafka_mock_cluster_t* cluster_ = nullptr;
};

constexpr uint64_t kSoftBound = 64 << 10;
constexpr int kSoftRecords = 5000;  // ~300 KB encoded, several times the soft bound

PublisherOptions SoftBoundOptions(const std::string& bootstrap) {
  PublisherOptions o;
  o.gateway_id = "gw";
  o.topic = "t.records";
  o.client.bootstrap = bootstrap;
  o.batch_max_records = 100;
  o.linger = absl::Hours(1);
  o.soft_max_buffer_bytes = kSoftBound;
  o.soft_stall = absl::Hours(1);  // only the connection state lifts the bound here
  return o;
}

// Adds kSoftRecords records and seals them, on its own thread.
class Feeder {
 public:
  explicit Feeder(Publisher* p)
      : thread_([this, p] {
          for (int i = 0; i < kSoftRecords; ++i) {
            if (!p->Add(MakeRecord(i), absl::StrCat("ent", i % 3)).ok()) break;
          }
          (void)p->SealAll();
          done_.store(true);
        }) {}
  ~Feeder() { thread_.join(); }
  bool done() const { return done_.load(); }
  bool WaitDone(absl::Duration timeout) const {
    const absl::Time end = absl::Now() + timeout;
    while (!done() && absl::Now() < end) absl::SleepFor(absl::Milliseconds(10));
    return done();
  }

 private:
  std::atomic<bool> done_{false};
  std::thread thread_;
};

template <typename F>
bool WaitFor(F f, absl::Duration timeout) {
  const absl::Time end = absl::Now() + timeout;
  while (!f() && absl::Now() < end) absl::SleepFor(absl::Milliseconds(10));
  return f();
}

// Starts a publisher on `cluster` with the partition leaderless, and feeds it until the source
// is blocked on the soft bound with the unconfirmed bytes within it.
void ExpectBlockedOnSoftBound(Publisher* p, const Feeder& feeder) {
  ASSERT_TRUE(WaitFor([p] { return p->stats().soft_bound_waits > 0; }, absl::Seconds(20)))
      << "the source never waited on the soft bound";
  absl::SleepFor(absl::Milliseconds(300));
  const PublisherStats s = p->stats();
  EXPECT_FALSE(feeder.done()) << "Add should block while unconfirmed bytes exceed the soft bound";
  EXPECT_LT(s.records_added, static_cast<uint64_t>(kSoftRecords));
  EXPECT_GT(s.buffer_bytes, 0u);
  EXPECT_LE(s.buffer_bytes, kSoftBound);
  EXPECT_EQ(s.records_confirmed, 0u);
}

// While the broker is connected, Add blocks once the unconfirmed bytes would exceed the soft
// bound, and resumes when confirmations free room.
TEST(PublisherTest, SoftBoundBlocksWhileConnectedAndResumesOnConfirmations) {
  MockCluster cluster("t.records");
  MemoryKvStore store;
  auto p = Publisher::Create(SoftBoundOptions(cluster.bootstrap()), &store);
  ASSERT_TRUE(p.ok()) << p.status();
  ASSERT_TRUE((*p)->Start().ok());
  ASSERT_TRUE(WaitFor([&] { return (*p)->connected(); }, absl::Seconds(10)));
  cluster.SetLeader(-1);
  {
    Feeder feeder(p->get());
    ExpectBlockedOnSoftBound(p->get(), feeder);
    cluster.SetLeader(1);
    EXPECT_TRUE(feeder.WaitDone(absl::Seconds(30))) << "confirmations should unblock the source";
  }
  EXPECT_TRUE((*p)->WaitConfirmed(absl::Seconds(30)).ok());
  EXPECT_EQ((*p)->stats().records_confirmed, static_cast<uint64_t>(kSoftRecords));
  (*p)->Stop();
}

// A source blocked on the soft bound gets through when the broker goes away: store-and-forward
// then buffers up to buffer_max_bytes as before.
TEST(PublisherTest, SoftBoundLiftsWhenTheBrokerGoesAway) {
  MockCluster cluster("t.records");
  MemoryKvStore store;
  auto p = Publisher::Create(SoftBoundOptions(cluster.bootstrap()), &store);
  ASSERT_TRUE(p.ok()) << p.status();
  ASSERT_TRUE((*p)->Start().ok());
  ASSERT_TRUE(WaitFor([&] { return (*p)->connected(); }, absl::Seconds(10)));
  cluster.SetLeader(-1);
  {
    Feeder feeder(p->get());
    ExpectBlockedOnSoftBound(p->get(), feeder);
    cluster.SetDown();
    EXPECT_TRUE(feeder.WaitDone(absl::Seconds(15))) << "the outage should lift the soft bound";
  }
  // The last sealed groups may still be on their way to the buffer (the writer thread).
  EXPECT_TRUE(WaitFor([&] { return (*p)->stats().open_records == 0; }, absl::Seconds(10)));
  const PublisherStats s = (*p)->stats();
  EXPECT_FALSE((*p)->connected());
  EXPECT_EQ(s.records_added, static_cast<uint64_t>(kSoftRecords));
  EXPECT_EQ(s.buffer_records, static_cast<uint64_t>(kSoftRecords));
  EXPECT_GT(s.buffer_bytes, kSoftBound);
  (*p)->Stop(absl::ZeroDuration());
}

// Stop releases a source blocked on the soft bound (no deadlock on open_mu_).
TEST(PublisherTest, StopReleasesASourceBlockedOnTheSoftBound) {
  MockCluster cluster("t.records");
  MemoryKvStore store;
  auto p = Publisher::Create(SoftBoundOptions(cluster.bootstrap()), &store);
  ASSERT_TRUE(p.ok()) << p.status();
  ASSERT_TRUE((*p)->Start().ok());
  ASSERT_TRUE(WaitFor([&] { return (*p)->connected(); }, absl::Seconds(10)));
  cluster.SetLeader(-1);
  Feeder feeder(p->get());
  ExpectBlockedOnSoftBound(p->get(), feeder);
  (*p)->Stop(absl::ZeroDuration());
  EXPECT_TRUE(feeder.WaitDone(absl::Seconds(10))) << "Stop should release the blocked source";
}

// Without a connection to the broker the soft bound does not apply: the source fills the buffer.
TEST(PublisherTest, SoftBoundDoesNotApplyWithoutAConnection) {
  MemoryKvStore store;
  auto p = Publisher::Create(SoftBoundOptions("127.0.0.1:1"), &store);  // nothing listens
  ASSERT_TRUE(p.ok()) << p.status();
  ASSERT_TRUE((*p)->Start().ok());
  {
    Feeder feeder(p->get());
    EXPECT_TRUE(feeder.WaitDone(absl::Seconds(20)));
  }
  ASSERT_TRUE((*p)->Persist(absl::Now() + absl::Seconds(10)).ok());
  const PublisherStats s = (*p)->stats();
  EXPECT_FALSE((*p)->connected());
  EXPECT_EQ(s.soft_bound_waits, 0u);
  EXPECT_EQ(s.buffer_records, static_cast<uint64_t>(kSoftRecords));
  EXPECT_GT(s.buffer_bytes, kSoftBound);
  (*p)->Stop(absl::ZeroDuration());
}

// Issue 22: batches buffered under a larger message limit meet a smaller one (the producer's
// message.max.bytes here; in production also the topic's max.message.bytes): they are re-packed
// into batches that fit, and a record that fits none is handed to set_aside, not retried forever.
TEST(PublisherTest, BatchesOverALowerLimitAreRepackedAndWhatFitsNoneIsSetAside) {
  RecordingStore store;
  PublisherOptions o;
  o.gateway_id = "gw";
  o.topic = "t.records";
  o.batch_max_records = 1000;
  o.linger = absl::Hours(1);
  constexpr int kRecords = 3000;
  const std::set<int> big = {10, 1500};  // 30 kB labels
  {
    auto p = Publisher::Create(o, &store);  // never started: everything stays in the buffer
    ASSERT_TRUE(p.ok()) << p.status();
    for (int i = 0; i < kRecords; ++i) {
      v1::Record r = MakeRecord(i);
      (*r.mutable_labels())["pad"] = std::string(big.contains(i) ? 30'000 : 100, 'x');
      ASSERT_TRUE((*p)->Add(r, absl::StrCat("ent", i % 3)).ok());
    }
    ASSERT_TRUE((*p)->Persist(absl::Now() + absl::Seconds(10)).ok());
    EXPECT_GT(store.max_value(), 100'000u) << "batches of ~130 kB were stored";
    (*p)->Stop(absl::ZeroDuration());
  }
  store.ResetMaxValue();
  MockCluster cluster("t.records");
  o.client.bootstrap = cluster.bootstrap();
  // The operator's kafka.producer settings: the limit is taken from them, and batch.size capped.
  o.client.producer = {{"message.max.bytes", "20000"}, {"batch.size", "900000"}};
  std::vector<SetAside> aside;
  absl::Mutex aside_mu;
  o.set_aside = [&](const SetAside& a) {
    absl::MutexLock l(&aside_mu);
    aside.push_back(a);
    return absl::OkStatus();
  };
  uint64_t limit_seen = 0;
  o.on_message_limit = [&](uint64_t limit) { limit_seen = limit; };
  auto p = Publisher::Create(o, &store);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(limit_seen, 20000u);
  ASSERT_TRUE((*p)->Start().ok());
  ASSERT_TRUE((*p)->WaitConfirmed(absl::Seconds(30)).ok()) << "wedged";
  const PublisherStats s = (*p)->stats();
  EXPECT_EQ(s.records_confirmed, static_cast<uint64_t>(kRecords) - big.size());
  EXPECT_EQ(s.records_set_aside, big.size());
  EXPECT_GT(s.batches_repacked, 0u);
  EXPECT_EQ(s.producer_batch_size, 20000u);
  EXPECT_EQ(s.buffer_batches, 0u);
  // Every batch written to the buffer by the re-pack fits the limit.
  EXPECT_LE(store.max_value(), MaxBatchValueBytes(20000, 4) + 10);
  (*p)->Stop();
  absl::MutexLock l(&aside_mu);
  std::set<int> set_aside;
  for (const SetAside& a : aside) {
    for (const SetAside::Item& i : a.items) {
      EXPECT_EQ(i.reason, "record of 30.1 kB exceeds the 20 kB message limit");
      set_aside.insert(static_cast<int>(i.record.value()) - 20);
      EXPECT_EQ(i.record.labels().at("pad").size(), 30'000u);
    }
  }
  EXPECT_EQ(set_aside, big);
}

// Holding in memory (a buffer without a write-ahead log): the batches the broker confirms never
// reach the store; the store holds a checkpoint (source position, next sequence number) that never
// passes a record that is neither confirmed nor stored, and a crash copy of the store resumes
// from it, dropping the batches stored past it (the re-read sends them again).
class HoldingInMemory : public ::testing::Test {
 protected:
  static uint64_t StoredBatches(KvStore& store) {
    uint64_t n = 0;
    EXPECT_TRUE(store.Scan("b/", [&n](absl::string_view, absl::string_view) { return ++n; }).ok());
    return n;
  }
  static std::string Get(KvStore& store, absl::string_view key) {
    absl::StatusOr<std::string> v = store.Get(key);
    return v.ok() ? *v : std::string("<") + std::string(v.status().message()) + ">";
  }
  // A copy of the store as it is now: what a crash would leave if the store flushed just now.
  static std::unique_ptr<MemoryKvStore> Copy(KvStore& store) {
    auto copy = std::make_unique<MemoryKvStore>();
    WriteBatch all;
    EXPECT_TRUE(store
                    .Scan("",
                          [&all](absl::string_view k, absl::string_view v) {
                            all.Put(k, v);
                            return true;
                          })
                    .ok());
    EXPECT_TRUE(copy->Write(all).ok());
    return copy;
  }
  PublisherOptions Options(const std::string& bootstrap) {
    PublisherOptions o = SoftBoundOptions(bootstrap);
    o.soft_max_buffer_bytes = 0;  // the phases below add without blocking
    o.hold_unconfirmed_in_memory = true;
    o.flush_store = [this] { flushes_.fetch_add(1); };
    o.flush_every_bytes = 1;  // after every confirmation round that completes a group
    return o;
  }
  void Open(const std::string& bootstrap) {
    auto p = Publisher::Create(Options(bootstrap), &store_);
    ASSERT_TRUE(p.ok()) << p.status();
    p_ = *std::move(p);
    p_->SetPositionProvider("test:source", [this] { return absl::StrCat(read_); });
    ASSERT_TRUE(p_->Start().ok());
    ASSERT_TRUE(WaitFor([&] { return p_->connected(); }, absl::Seconds(10)));
  }
  // Adds records [read_, to) as a source at position read_ would, then seals.
  void AddUpTo(int to) {
    for (int i = static_cast<int>(read_); i < to; ++i) {
      ++read_;  // the source is past the record when the gateway adds it
      Publisher::Appender a(p_.get());
      ASSERT_TRUE(a.Add(MakeRecord(i), absl::StrCat("ent", i % 3)).ok());
    }
    ASSERT_TRUE(p_->SealAll().ok());
  }

  MemoryKvStore store_;
  std::unique_ptr<Publisher> p_;
  uint64_t read_ = 0;
  std::atomic<int> flushes_{0};
};

TEST_F(HoldingInMemory, ConfirmedBatchesNeverReachTheStoreAndACrashCopyResumesAtTheCheckpoint) {
  MockCluster cluster("t.records");
  Open(cluster.bootstrap());
  // 1. The broker confirms: nothing but the checkpoint is stored, and it follows the groups.
  AddUpTo(300);
  ASSERT_TRUE(p_->WaitConfirmed(absl::Seconds(30)).ok());
  PublisherStats s = p_->stats();
  EXPECT_GT(s.groups_held, 0u);
  EXPECT_EQ(s.groups_stored, 0u);
  EXPECT_EQ(StoredBatches(store_), 0u);
  EXPECT_EQ(Get(store_, "m/source"), "test:source\n300");
  EXPECT_EQ(Get(store_, "m/next_seq"), "301");
  EXPECT_GT(flushes_.load(), 0) << "confirmed held bytes should ask the store to flush";

  // 2. The broker stops confirming (leaderless, still connected): the new groups are held, the
  // checkpoint stays at their start.
  cluster.SetLeader(-1);
  AddUpTo(600);
  ASSERT_TRUE(WaitFor([&] { return p_->stats().held_batches > 0 && p_->stats().open_records == 0; },
                      absl::Seconds(10)));
  s = p_->stats();
  EXPECT_EQ(s.buffer_records, 300u);
  EXPECT_GT(s.held_bytes, 0u);
  EXPECT_EQ(s.held_bytes, s.buffer_bytes) << "all of it held in memory";
  EXPECT_EQ(StoredBatches(store_), 0u);
  EXPECT_EQ(Get(store_, "m/source"), "test:source\n300");

  // 3. The broker goes away: new groups are written to the store, and the stored checkpoint still
  // does not pass the held ones.
  cluster.SetDown();
  ASSERT_TRUE(WaitFor([&] { return !p_->connected(); }, absl::Seconds(10)));
  AddUpTo(900);
  ASSERT_TRUE(
      WaitFor([&] { return p_->stats().groups_stored > 0 && p_->stats().open_records == 0; },
              absl::Seconds(10)));
  const uint64_t stored = StoredBatches(store_);
  EXPECT_GT(stored, 0u);
  EXPECT_EQ(Get(store_, "m/source"), "test:source\n300");
  EXPECT_EQ(Get(store_, "m/next_seq"), "301");

  // A crash now: the next run resumes at record 300 with sequence 301 and re-reads everything
  // after it, so the batches stored past the checkpoint are dropped rather than sent twice over.
  {
    std::unique_ptr<MemoryKvStore> crashed = Copy(store_);
    auto next = Publisher::Create(Options(cluster.bootstrap()), crashed.get());
    ASSERT_TRUE(next.ok()) << next.status();
    const auto position = (*next)->StoredPosition();
    ASSERT_TRUE(position.has_value());
    EXPECT_EQ(position->second, "300");
    const PublisherStats n = (*next)->stats();
    EXPECT_EQ(n.next_sequence, 301u);
    EXPECT_EQ(n.redundant_dropped, stored);
    EXPECT_EQ(n.buffer_batches, 0u);
    EXPECT_EQ(StoredBatches(*crashed), 0u);
    (*next)->Stop(absl::ZeroDuration());
  }

  // 4. The broker returns: everything is confirmed, the store is empty but for the checkpoint
  // after the last record.
  cluster.SetUp();
  cluster.SetLeader(1);
  ASSERT_TRUE(p_->WaitConfirmed(absl::Seconds(60)).ok());
  EXPECT_EQ(p_->stats().records_confirmed, 900u);
  EXPECT_EQ(p_->stats().held_bytes, 0u);
  p_->Stop();
  EXPECT_EQ(StoredBatches(store_), 0u);
  EXPECT_EQ(Get(store_, "m/source"), "test:source\n900");
  EXPECT_EQ(Get(store_, "m/next_seq"), "901");
}

// A spill's checkpoint write can land after the delivery thread's newer one and leave an older
// checkpoint stored. Stop writes the final one even with nothing held, or the next run (of another
// input, after this clean stop) would number its records from the older one.
TEST_F(HoldingInMemory, StopWritesTheFinalCheckpointEvenWithNothingHeld) {
  MockCluster cluster("t.records");
  Open(cluster.bootstrap());
  AddUpTo(300);
  ASSERT_TRUE(p_->WaitConfirmed(absl::Seconds(30)).ok());
  ASSERT_EQ(p_->stats().held_batches, 0u);
  WriteBatch stale;  // as a late spill write would leave it
  stale.Put("m/next_seq", "101");
  stale.Put("m/source", "test:source\n100");
  ASSERT_TRUE(store_.Write(stale).ok());
  p_->Stop();
  EXPECT_EQ(Get(store_, "m/source"), "test:source\n300");
  EXPECT_EQ(Get(store_, "m/next_seq"), "301");
}

// Stop writes the batches still held to the store with the checkpoint after the last group: the
// next run (of any input) finds them all and numbers on from there.
TEST_F(HoldingInMemory, StopStoresTheUnconfirmedHeldBatches) {
  MockCluster cluster("t.records");
  Open(cluster.bootstrap());
  cluster.SetLeader(-1);
  AddUpTo(300);
  ASSERT_TRUE(WaitFor([&] { return p_->stats().held_batches > 0 && p_->stats().open_records == 0; },
                      absl::Seconds(10)));
  const uint64_t held = p_->stats().held_batches;
  EXPECT_EQ(StoredBatches(store_), 0u);
  p_->Stop(absl::ZeroDuration());
  EXPECT_EQ(StoredBatches(store_), held);
  EXPECT_EQ(Get(store_, "m/source"), "test:source\n300");
  EXPECT_EQ(Get(store_, "m/next_seq"), "301");
  auto next = Publisher::Create(Options(cluster.bootstrap()), &store_);
  ASSERT_TRUE(next.ok()) << next.status();
  const PublisherStats n = (*next)->stats();
  EXPECT_EQ(n.buffer_records, 300u);
  EXPECT_EQ(n.redundant_dropped, 0u);
  EXPECT_EQ(n.next_sequence, 301u);
  (*next)->Stop(absl::ZeroDuration());
}

}  // namespace
}  // namespace cybersyn::ingest
