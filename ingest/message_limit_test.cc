#include "ingest/message_limit.h"

#include "gtest/gtest.h"

namespace cybersyn::ingest {
namespace {

TEST(MessageLimitTest, BatchValuesLeaveRoomForFramingAndKey) {
  EXPECT_EQ(MaxBatchValueBytes(1'000'000, 0), 996'000u);  // what the publisher always used
  EXPECT_EQ(MaxBatchValueBytes(1'000'000, 17), 995'983u);
  EXPECT_EQ(MaxBatchValueBytes(65'536, 10), 61'526u);
  EXPECT_EQ(MaxBatchValueBytes(16'384, 0), 14'336u);  // an eighth below 32 kB
  EXPECT_EQ(MaxBatchValueBytes(100, 200), 0u);
}

TEST(MessageLimitTest, SingleRecordBatchBytesIsAnUpperBoundOfTheEncoding) {
  v1::Record r;
  r.set_node("cl/textiles/yarur/spinning");
  r.set_indicator("output");
  r.set_value(1.5);
  r.set_event_time_ms(1'714'564'800'000);
  (*r.mutable_labels())["note"] = std::string(1'200'000, 'x');
  v1::RecordBatch b;
  b.set_enterprise("cl/textiles/yarur");
  b.set_gateway_id("gw-1");
  b.set_produced_at_ms(1'714'564'800'000);
  *b.add_records() = r;
  b.mutable_records(0)->set_sequence(~uint64_t{0});  // the widest sequence number
  // Exact but for produced_at_ms, counted at its widest (10 bytes; a time now takes 6).
  EXPECT_EQ(SingleRecordBatchBytes(r, "cl/textiles/yarur", "gw-1"), b.ByteSizeLong() + 4);
}

TEST(MessageLimitTest, FormatsAsKafkaLimitsAreQuoted) {
  EXPECT_EQ(FormatMessageBytes(900), "900 bytes");
  EXPECT_EQ(FormatMessageBytes(65'536), "65.5 kB");
  EXPECT_EQ(FormatMessageBytes(1'000'000), "1 MB");
  EXPECT_EQ(FormatMessageBytes(1'048'588), "1 MB");
  EXPECT_EQ(FormatMessageBytes(1'200'123), "1.2 MB");
}

}  // namespace
}  // namespace cybersyn::ingest
