#include "common/batch_decode.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace cybersyn {
namespace {

// Serialises `r` as RecordBatch field 3 by hand, so that its strings may be invalid UTF-8
// (protobuf refuses to serialise those).
void PutVarint(std::string* s, uint64_t v) {
  while (v >= 0x80) {
    s->push_back(static_cast<char>(v | 0x80));
    v >>= 7;
  }
  s->push_back(static_cast<char>(v));
}
void PutString(std::string* s, int field, const std::string& v) {
  s->push_back(static_cast<char>(field << 3 | 2));
  PutVarint(s, v.size());
  s->append(v);
}
std::string RecordWire(const std::string& node, uint64_t seq, const std::string& label_value = "") {
  std::string r;
  PutString(&r, 1, node);
  PutString(&r, 2, "output");
  r.push_back(static_cast<char>(6 << 3));
  PutVarint(&r, seq);
  if (!label_value.empty()) {
    std::string entry;
    PutString(&entry, 1, "k");
    PutString(&entry, 2, label_value);
    PutString(&r, 7, entry);
  }
  return r;
}
std::string BatchWire(const std::vector<std::string>& records) {
  std::string b;
  PutString(&b, 1, "cl/e");
  PutString(&b, 2, "gw-1");
  for (const std::string& r : records) PutString(&b, 3, r);
  b.push_back(static_cast<char>(4 << 3));
  PutVarint(&b, 1714564800000);
  return b;
}

TEST(BatchDecodeTest, AGoodBatchTakesTheFastPath) {
  const std::string wire = BatchWire({RecordWire("cl/e/u1", 1), RecordWire("cl/e/u2", 2, "x")});
  v1::RecordBatch batch;
  std::vector<BadRecord> bad;
  ASSERT_TRUE(DecodeRecordBatch(wire, &batch, &bad).ok());
  EXPECT_TRUE(bad.empty());
  ASSERT_EQ(batch.records_size(), 2);
  EXPECT_EQ(batch.enterprise(), "cl/e");
  EXPECT_EQ(batch.gateway_id(), "gw-1");
  EXPECT_EQ(batch.produced_at_ms(), 1714564800000);
  EXPECT_EQ(batch.records(1).labels().at("k"), "x");
}

// Issue 22: one label that is not UTF-8 cost the 14 good records of its batch.
TEST(BatchDecodeTest, OneInvalidUtf8RecordCostsOnlyItself) {
  std::vector<std::string> records;
  for (int i = 0; i < 15; ++i) {
    records.push_back(i == 7 ? RecordWire("cl/e/u1", i + 1, "caf\xe9")
                             : RecordWire("cl/e/u1", i + 1));
  }
  records.push_back(RecordWire("cl/e/\xff", 16));
  const std::string wire = BatchWire(records);
  v1::RecordBatch probe;
  ASSERT_FALSE(probe.ParseFromString(wire)) << "protobuf alone rejects the whole batch";

  v1::RecordBatch batch;
  batch.add_records()->set_node("left over from an earlier batch");
  std::vector<BadRecord> bad;
  ASSERT_TRUE(DecodeRecordBatch(wire, &batch, &bad).ok());
  ASSERT_EQ(batch.records_size(), 14);
  EXPECT_EQ(batch.enterprise(), "cl/e");
  EXPECT_EQ(batch.gateway_id(), "gw-1");
  EXPECT_EQ(batch.produced_at_ms(), 1714564800000);
  std::vector<uint64_t> seqs;
  for (const v1::Record& r : batch.records()) seqs.push_back(r.sequence());
  EXPECT_EQ(seqs, (std::vector<uint64_t>{1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15}));
  ASSERT_EQ(bad.size(), 2u);
  EXPECT_EQ(bad[0].index, 7);
  EXPECT_EQ(bad[0].reason, "invalid UTF-8 in a label value");
  EXPECT_EQ(bad[0].wire, records[7]);
  EXPECT_EQ(bad[1].index, 15);
  EXPECT_EQ(bad[1].reason, "invalid UTF-8 in node");
  EXPECT_EQ(RecordProblem(records[7]), "invalid UTF-8 in a label value");
  EXPECT_EQ(RecordProblem(records[0]), "");
}

TEST(BatchDecodeTest, BrokenFramingKeepsTheRecordsBeforeIt) {
  std::string wire = BatchWire({RecordWire("cl/e/u1", 1), RecordWire("cl/e/u1", 2)});
  const std::string good = wire;
  wire.resize(wire.size() - 14);  // cuts into the second record
  v1::RecordBatch batch;
  std::vector<BadRecord> bad;
  ASSERT_TRUE(DecodeRecordBatch(wire, &batch, &bad).ok());
  ASSERT_EQ(batch.records_size(), 1);
  EXPECT_EQ(batch.records(0).sequence(), 1u);
  ASSERT_EQ(bad.size(), 1u);
  EXPECT_EQ(bad[0].index, 1);
  EXPECT_EQ(bad[0].reason.rfind("record cut short or framing broken at byte ", 0), 0u)
      << bad[0].reason;

  // Cut inside its first record: nothing of it is a record, the batch is malformed as a whole.
  wire = good.substr(0, 20);
  absl::Status s = DecodeRecordBatch(wire, &batch, &bad);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "RecordBatch: record cut short or framing broken at byte 12");
  EXPECT_TRUE(bad.empty());
  EXPECT_EQ(batch.records_size(), 0);

  // A record whose own bytes are broken (a string longer than the record).
  std::string broken = RecordWire("cl/e/u1", 3);
  broken[1] = 0x7f;
  wire = BatchWire({RecordWire("cl/e/u1", 1), broken, RecordWire("cl/e/u1", 4)});
  ASSERT_TRUE(DecodeRecordBatch(wire, &batch, &bad).ok());
  ASSERT_EQ(batch.records_size(), 2);
  EXPECT_EQ(batch.records(1).sequence(), 4u);
  ASSERT_EQ(bad.size(), 1u);
  EXPECT_EQ(bad[0].index, 1);
  EXPECT_EQ(bad[0].reason, "malformed record");
}

TEST(BatchDecodeTest, AnUnreadableBatchHeaderRejectsTheBatch) {
  std::string wire;
  PutString(&wire, 1, "cl/\xff");
  PutString(&wire, 3, RecordWire("cl/e/u1", 1));
  v1::RecordBatch batch;
  std::vector<BadRecord> bad;
  absl::Status s = DecodeRecordBatch(wire, &batch, &bad);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(std::string(s.message()), "RecordBatch: invalid UTF-8 in enterprise at byte 0");
  EXPECT_EQ(batch.records_size(), 0);
}

}  // namespace
}  // namespace cybersyn
