#include "stream/task_store.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace cybersyn::stream {
namespace {

TEST(TaskStoreTest, LayoutKeepsTasksApart) {
  EXPECT_EQ(TaskPrefix("rec", 1), "t/rec/1/");
  EXPECT_EQ(StatePrefix(TaskPrefix("rec", 1)), "t/rec/1/s/");
  EXPECT_EQ(CheckpointKey(TaskPrefix("rec", 1)), "t/rec/1/m");
  MemoryKvStore store;
  ASSERT_TRUE(store.Put("t/rec/1/s/a", "1").ok());
  ASSERT_TRUE(store.Put("t/rec/1/m", "5@0").ok());
  ASSERT_TRUE(store.Put("t/rec/10/s/a", "1").ok());  // partition 10 is not partition 1
  ASSERT_TRUE(WipeTask(store, TaskPrefix("rec", 1)).ok());
  EXPECT_FALSE(store.Get("t/rec/1/s/a").ok());
  EXPECT_FALSE(store.Get("t/rec/1/m").ok());
  EXPECT_TRUE(store.Get("t/rec/10/s/a").ok());
}

TEST(TaskStoreTest, CheckpointsRoundTripAndOlderOnesStillRead) {
  auto c = DecodeCheckpoint(EncodeCheckpoint({42, 1'700'000'000'000}));
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->next_offset, 42);
  EXPECT_EQ(c->written_at_ms, 1'700'000'000'000);
  auto old = DecodeCheckpoint("17");  // what the aggregator wrote before the runtime
  ASSERT_TRUE(old.has_value());
  EXPECT_EQ(old->next_offset, 17);
  EXPECT_EQ(old->written_at_ms, 0);
  EXPECT_FALSE(DecodeCheckpoint("").has_value());
  EXPECT_FALSE(DecodeCheckpoint("-3").has_value());
  EXPECT_FALSE(DecodeCheckpoint("12@soon").has_value());
}

}  // namespace
}  // namespace cybersyn::stream
