// Publisher unit tests on an in-memory store (no broker: Start is never called, so sealed groups
// are written to the buffer and wait there).
#include "ingest/publisher.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"

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
    v1::RecordBatch batch;
    ASSERT_TRUE(batch.ParseFromString(want));
    ASSERT_EQ(batch.records_size(), 1);
    EXPECT_EQ(batch.records(0).sequence(), seq);
  }
}

}  // namespace
}  // namespace cybersyn::ingest
