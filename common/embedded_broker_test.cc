#include "common/embedded_broker.h"

#include "common/kafka_admin.h"
#include "common/kafka_selftest.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace cybersyn {
namespace {

TEST(EmbeddedBrokerTest, ListensOnLoopbackAndAnswersMetadata) {
  auto broker = EmbeddedBroker::Start(3);
  ASSERT_TRUE(broker.ok()) << broker.status();
  EXPECT_THAT((*broker)->bootstrap(), ::testing::StartsWith("127.0.0.1:"));
  ASSERT_TRUE((*broker)->CreateTopic("t", 4).ok());
  auto info = DescribeCluster({(*broker)->bootstrap(), {}});
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->brokers, 3);
  EXPECT_EQ(info->topics.at("t"), 4);
}

TEST(EmbeddedBrokerTest, TransactionalRoundTripReadsEveryBatchOnce) {
  auto broker = EmbeddedBroker::Start();
  ASSERT_TRUE(broker.ok()) << broker.status();
  RoundTripOptions opts;
  opts.batches = 20;
  opts.records_per_batch = 50;
  opts.ensure_topics = (*broker)->ensurer();
  auto result = RunKafkaRoundTrip({(*broker)->bootstrap(), {}}, opts);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->batches_read, 20);
  EXPECT_EQ(result->records_read, 1000);
}

TEST(EmbeddedBrokerTest, UnreachableClusterIsUnavailableOrTimeout) {
  // A port nothing listens on: the error must say which address was tried.
  auto info = DescribeCluster({"127.0.0.1:1", {}}, absl::Seconds(1));
  ASSERT_FALSE(info.ok());
  EXPECT_THAT(std::string(info.status().message()), ::testing::HasSubstr("127.0.0.1:1"));
}

}  // namespace
}  // namespace cybersyn
