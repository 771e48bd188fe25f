// The in-memory broker keeps what exactly-once depends on the way Kafka does.
#include "stream/memory_broker.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace cybersyn::stream {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

std::vector<std::string> Values(const std::vector<MemoryBroker::Record>& rs) {
  std::vector<std::string> out;
  for (const auto& r : rs) out.push_back(r.value.value_or("<null>"));
  return out;
}

class Listener : public RebalanceListener {
 public:
  void OnAssigned(std::vector<TopicPartitionOffset>& p) override {
    for (const auto& tp : p) assigned.push_back(tp.partition);
  }
  void OnRevoked(const std::vector<TopicPartitionOffset>& p, bool) override {
    for (const auto& tp : p) revoked.push_back(tp.partition);
  }
  std::vector<int32_t> assigned, revoked;
};

TEST(MemoryBrokerTest, TransactionsAreInvisibleUntilCommittedAndLeaveMarkers) {
  MemoryBroker b(1);
  auto io = b.NewIo();
  auto p = io->CreateProducer({.transactional_id = "t"});
  ASSERT_TRUE(p.ok());
  ASSERT_TRUE((*p)->InitTransactions(absl::Seconds(1)).ok());
  ASSERT_TRUE((*p)->BeginTransaction().ok());
  ASSERT_TRUE((*p)->Produce("x", 0, "k", "1", {}, absl::ZeroDuration()).ok());
  EXPECT_THAT(b.ReadCommitted("x", 0), IsEmpty());
  EXPECT_EQ(b.LastStableOffset("x", 0), 0);
  b.Append("x", 0, "plain", "p");  // after the open transaction: not readable yet either
  EXPECT_THAT(b.ReadCommitted("x", 0), IsEmpty());
  ASSERT_TRUE((*p)->CommitTransaction(absl::Seconds(1)).ok());
  EXPECT_THAT(Values(b.ReadCommitted("x", 0)), ElementsAre("1", "p"));
  EXPECT_EQ(b.Watermarks("x", 0).second, 3);  // 1, p, marker
  ASSERT_TRUE((*p)->BeginTransaction().ok());
  ASSERT_TRUE((*p)->Produce("x", 0, "k", "2", {}, absl::ZeroDuration()).ok());
  ASSERT_TRUE((*p)->AbortTransaction(absl::Seconds(1)).ok());
  EXPECT_THAT(Values(b.ReadCommitted("x", 0)), ElementsAre("1", "p"));
  EXPECT_EQ(b.Watermarks("x", 0).second, 5);
}

TEST(MemoryBrokerTest, InitTransactionsFencesThePreviousProducerAndAbortsItsTransaction) {
  MemoryBroker b(1);
  auto io = b.NewIo();
  auto old = io->CreateProducer({.transactional_id = "t"});
  ASSERT_TRUE((*old)->InitTransactions(absl::Seconds(1)).ok());
  ASSERT_TRUE((*old)->BeginTransaction().ok());
  ASSERT_TRUE((*old)->Produce("x", 0, "k", "zombie", {}, absl::ZeroDuration()).ok());
  auto next = io->CreateProducer({.transactional_id = "t"});
  ASSERT_TRUE((*next)->InitTransactions(absl::Seconds(1)).ok());
  EXPECT_EQ((*old)->CommitTransaction(absl::Seconds(1)).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_FALSE((*old)->FatalError().ok());
  EXPECT_THAT(b.ReadCommitted("x", 0), IsEmpty());
  EXPECT_EQ(b.LastStableOffset("x", 0), b.Watermarks("x", 0).second);
}

TEST(MemoryBrokerTest, OffsetsSentWithATransactionAreUnstableUntilItEnds) {
  MemoryBroker b(2);
  auto io = b.NewIo();
  Listener l;
  auto c = io->CreateConsumer({.group_id = "g", .listener = &l});
  ASSERT_TRUE((*c)->Subscribe({"in"}).ok());
  ASSERT_TRUE((*c)->ConsumeBatch(10, absl::ZeroDuration()).ok());  // joins: gets 0 and 1
  EXPECT_THAT(l.assigned, ElementsAre(0, 1));
  auto p = io->CreateProducer({.transactional_id = "t"});
  ASSERT_TRUE((*p)->InitTransactions(absl::Seconds(1)).ok());
  ASSERT_TRUE((*p)->BeginTransaction().ok());
  ASSERT_TRUE((*p)->SendOffsetsToTransaction({{"in", 1, 7}}, **c, absl::Seconds(1)).ok());
  EXPECT_EQ((*c)->Committed({{"in", 1}}, absl::Seconds(1)).status().code(),
            absl::StatusCode::kUnavailable);
  ASSERT_TRUE((*p)->CommitTransaction(absl::Seconds(1)).ok());
  auto committed = (*c)->Committed({{"in", 0}, {"in", 1}}, absl::Seconds(1));
  ASSERT_TRUE(committed.ok());
  EXPECT_EQ((*committed)[0].offset, kOffsetInvalid);
  EXPECT_EQ((*committed)[1].offset, 7);
}

TEST(MemoryBrokerTest, RangeAssignmentKeepsCoPartitionedTopicsTogether) {
  MemoryBroker b(4);
  auto io = b.NewIo();
  Listener l1, l2;
  const std::map<std::string, std::string> range = {{"partition.assignment.strategy", "range"}};
  auto c1 = io->CreateConsumer(
      {.group_id = "g", .group_instance_id = "a", .overrides = range, .listener = &l1});
  auto c2 = io->CreateConsumer(
      {.group_id = "g", .group_instance_id = "b", .overrides = range, .listener = &l2});
  ASSERT_TRUE((*c1)->Subscribe({"x", "y"}).ok());
  ASSERT_TRUE((*c2)->Subscribe({"x", "y"}).ok());
  auto a = b.Assignment("g");
  EXPECT_THAT(a["a"], ElementsAre(TopicPartition{"x", 0}, TopicPartition{"x", 1},
                                  TopicPartition{"y", 0}, TopicPartition{"y", 1}));
  EXPECT_THAT(a["b"], ElementsAre(TopicPartition{"x", 2}, TopicPartition{"x", 3},
                                  TopicPartition{"y", 2}, TopicPartition{"y", 3}));
  c2->reset();  // dies: its partitions move
  EXPECT_EQ(b.Assignment("g")["a"].size(), 8u);
}

// Cooperative: a member that joins takes only its share, the others give up only what moves,
// and the paired topic's partition p moves with the subscribed topic's p.
TEST(MemoryBrokerTest, CooperativeRebalanceMovesOnlyWhatChangesOwnerWithItsPairedPartition) {
  MemoryBroker b(4);
  auto io = b.NewIo();
  Listener l1, l2;
  auto c1 = io->CreateConsumer(
      {.group_id = "g", .group_instance_id = "a", .listener = &l1, .paired_topics = {"y"}});
  auto c2 = io->CreateConsumer(
      {.group_id = "g", .group_instance_id = "b", .listener = &l2, .paired_topics = {"y"}});
  ASSERT_TRUE((*c1)->Subscribe({"x"}).ok());
  ASSERT_TRUE((*c1)->ConsumeBatch(1, absl::ZeroDuration()).ok());
  EXPECT_THAT(l1.assigned, ElementsAre(0, 1, 2, 3, 0, 1, 2, 3));  // x then y
  l1.assigned.clear();
  ASSERT_TRUE((*c2)->Subscribe({"x"}).ok());
  ASSERT_TRUE((*c1)->ConsumeBatch(1, absl::ZeroDuration()).ok());
  ASSERT_TRUE((*c2)->ConsumeBatch(1, absl::ZeroDuration()).ok());
  EXPECT_EQ(l1.revoked.size(), 4u);  // two of x, their two of y
  EXPECT_THAT(l1.assigned, IsEmpty());
  EXPECT_EQ(l2.assigned.size(), 4u);
  auto a = b.Assignment("g");
  ASSERT_EQ(a["a"].size(), 2u);
  ASSERT_EQ(a["b"].size(), 2u);
  for (const TopicPartition& tp : a["b"]) {
    EXPECT_EQ(tp.first, "x");
    EXPECT_EQ(std::count(l1.revoked.begin(), l1.revoked.end(), tp.second), 2);
    EXPECT_EQ(std::count(l2.assigned.begin(), l2.assigned.end(), tp.second), 2);
  }
  l1.revoked.clear();
  c2->reset();  // leaves: a takes back the two, and keeps its own
  ASSERT_TRUE((*c1)->ConsumeBatch(1, absl::ZeroDuration()).ok());
  EXPECT_THAT(l1.revoked, IsEmpty());
  EXPECT_EQ(l1.assigned.size(), 4u);
}

TEST(MemoryBrokerTest, CompactionKeepsTheLastValueAndDropsTombstones) {
  MemoryBroker b(1);
  b.Append("c", 0, "a", "1");
  b.Append("c", 0, "b", "1");
  b.Append("c", 0, "a", "2");
  b.Append("c", 0, "b", std::nullopt);
  b.Compact("c");
  const auto rs = b.ReadCommitted("c", 0);
  ASSERT_EQ(rs.size(), 1u);
  EXPECT_EQ(rs[0].key, "a");
  EXPECT_EQ(rs[0].offset, 2);
  EXPECT_EQ(b.Watermarks("c", 0).second, 4);
}

TEST(MemoryBrokerTest, ChangelogReaderReportsTheEndOnceReached) {
  MemoryBroker b(1);
  b.Append("c", 0, "a", "1");
  b.Append("c", 0, "b", "2");
  auto io = b.NewIo();
  auto r = io->CreateChangelogReader();
  ASSERT_TRUE((*r)->Assign({{"c", 0, kOffsetBeginning}}).ok());
  std::vector<TopicPartitionOffset> ended;
  auto msgs = (*r)->Read(1, absl::ZeroDuration(), &ended);
  ASSERT_TRUE(msgs.ok());
  EXPECT_EQ(msgs->size(), 1u);
  EXPECT_THAT(ended, IsEmpty());
  msgs = (*r)->Read(10, absl::ZeroDuration(), &ended);
  EXPECT_EQ(msgs->size(), 1u);
  ASSERT_EQ(ended.size(), 1u);
  EXPECT_EQ(ended[0].offset, 2);
  ended.clear();
  msgs = (*r)->Read(10, absl::ZeroDuration(), &ended);
  EXPECT_THAT(ended, IsEmpty()) << "once per reaching the end";
}

}  // namespace
}  // namespace cybersyn::stream
