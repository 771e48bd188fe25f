#include "ingest/buffer_sizing.h"

#include <filesystem>

#include "gtest/gtest.h"

namespace cybersyn::ingest {
namespace {

constexpr uint64_t kMiB = uint64_t{1} << 20;

TEST(GatewayBufferSizingTest, RoomyDiskAndBufferGetLargeUncompressedMemtables) {
  const BufferSizing s = SizeBuffer(100 * 1024 * kMiB, 1024 * kMiB);
  EXPECT_EQ(s.write_buffer_bytes, 32 * kMiB);
  EXPECT_FALSE(s.compress);
  // Two memtables fit under half the limit (RocksDB's write buffer manager flushes at half).
  EXPECT_GE(s.memory_limit_bytes / 2, 2 * s.write_buffer_bytes);
}

TEST(GatewayBufferSizingTest, SmallDiskOrSmallBufferKeepTheCompactSettings) {
  for (const auto& [disk, buffer] : {std::pair{24 * kMiB, 1024 * kMiB},       // full_disk_test
                                     std::pair{1023 * kMiB, 1024 * kMiB},     // just under 1 GiB
                                     std::pair{100 * 1024 * kMiB, 8 * kMiB},  // --buffer-max-bytes
                                     std::pair{uint64_t{0}, 1024 * kMiB}}) {  // statvfs failed
    const BufferSizing s = SizeBuffer(disk, buffer);
    EXPECT_EQ(s.write_buffer_bytes, 16 * kMiB) << disk << " " << buffer;
    EXPECT_EQ(s.memory_limit_bytes, 64 * kMiB);
    EXPECT_TRUE(s.compress);
  }
}

TEST(GatewayBufferSizingTest, SoftBoundHoldsTwoProduceBatchesPerPartitionInUse) {
  constexpr uint64_t kBatch = 1'000'000;  // librdkafka's batch.size
  // The bench: 4 partitions, 20 enterprises.
  EXPECT_EQ(SoftBoundBytes(4, 20, kBatch, 4 * kMiB, 32 * kMiB), 8'000'000u);
  // Records are keyed by enterprise: 3 enterprises use at most 3 of 64 partitions.
  EXPECT_EQ(SoftBoundBytes(64, 3, kBatch, 4 * kMiB, 32 * kMiB), 6'000'000u);
  // Never below the floor, nor above the ceiling.
  EXPECT_EQ(SoftBoundBytes(1, 20, kBatch, 4 * kMiB, 32 * kMiB), 4 * kMiB);
  EXPECT_EQ(SoftBoundBytes(0, 0, kBatch, 4 * kMiB, 32 * kMiB), 4 * kMiB);
  EXPECT_EQ(SoftBoundBytes(64, 100, kBatch, 4 * kMiB, 32 * kMiB), 32 * kMiB);
  EXPECT_EQ(SoftBoundBytes(64, 100, kBatch, 4 * kMiB, 2 * kMiB), 4 * kMiB);
}

TEST(GatewayBufferSizingTest, FreeDiskBytesOfARealDirectoryAndOfAMissingOne) {
  EXPECT_GT(FreeDiskBytes(std::filesystem::temp_directory_path().string()), 0u);
  EXPECT_EQ(FreeDiskBytes("/nonexistent/cybersyn/buffer"), 0u);
}

}  // namespace
}  // namespace cybersyn::ingest
