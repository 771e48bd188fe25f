#include "ingest/varint.h"

#include <string>

#include "gtest/gtest.h"

namespace cybersyn::ingest {
namespace {

std::string Bytes(const EncodedVarint& v) { return std::string(v.bytes, v.size); }

std::string Fresh(uint64_t value) {
  EncodedVarint v;
  v.Set(value);
  return Bytes(v);
}

TEST(EncodedVarintTest, SetMatchesTheProtobufEncoding) {
  EXPECT_EQ(Fresh(0), std::string(1, '\0'));
  EXPECT_EQ(Fresh(1), "\x01");
  EXPECT_EQ(Fresh(127), "\x7F");
  EXPECT_EQ(Fresh(128), "\x80\x01");
  EXPECT_EQ(Fresh(300), "\xAC\x02");
  EXPECT_EQ(Fresh(~uint64_t{0}), std::string(9, '\xFF') + "\x01");
}

TEST(EncodedVarintTest, IncrementEqualsSetAcrossEveryCarry) {
  // Every carry boundary (2^7k - 1 -> 2^7k) and a stretch around it, plus plain counting.
  for (int k = 0; k <= 9; ++k) {
    const uint64_t edge = k == 0 ? 0 : (uint64_t{1} << (7 * k));
    const uint64_t from = edge >= 300 ? edge - 300 : 0;
    EncodedVarint v;
    v.Set(from);
    for (uint64_t x = from; x < edge + 300; ++x) {
      ASSERT_EQ(Bytes(v), Fresh(x)) << x;
      v.Increment();
    }
  }
  EncodedVarint v;
  v.Set(5);
  for (uint64_t x = 5; x < 70'000; ++x) {
    ASSERT_EQ(v.value, x);
    ASSERT_EQ(Bytes(v), Fresh(x)) << x;
    v.Increment();
  }
}

TEST(EncodedVarintTest, IncrementWrapsToZero) {
  EncodedVarint v;
  v.Set(~uint64_t{0});
  v.Increment();
  EXPECT_EQ(v.value, 0u);
  EXPECT_EQ(Bytes(v), Fresh(0));
}

TEST(EncodedVarintTest, CopyToWritesTheEncodingAndReturnsItsEnd) {
  EncodedVarint v;
  v.Set(1'795'923'449'277);  // a time in ms: 6 bytes
  char buf[16];
  std::memset(buf, 'x', sizeof buf);
  char* end = v.CopyTo(buf);
  EXPECT_EQ(end - buf, 6);
  EXPECT_EQ(std::string(buf, end), Fresh(1'795'923'449'277));
}

}  // namespace
}  // namespace cybersyn::ingest
