// The Kafka layer against a real Apache Kafka 4.x broker (KRaft) started by the CTest fixture.
#include <iostream>

#include "absl/time/clock.h"
#include "common/kafka_admin.h"
#include "common/kafka_consumer.h"
#include "common/kafka_producer.h"
#include "common/kafka_selftest.h"
#include "cybersyn/v1/record.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/real_kafka.h"

namespace cybersyn {
namespace {

class RealKafkaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto k = testing::GetRealKafka();
    ASSERT_TRUE(k.ok()) << k.status();
    kafka_ = *k;
    std::cout << "real broker: Apache Kafka " << kafka_.version << " at " << kafka_.bootstrap
              << std::endl;
  }
  KafkaClientOptions client() const { return {kafka_.bootstrap, {}}; }
  testing::RealKafka kafka_;
};

TEST_F(RealKafkaTest, BrokerIsKafka4) {
  EXPECT_THAT(kafka_.version, ::testing::StartsWith("4."));
  auto info = DescribeCluster(client());
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->brokers, 1);
}

TEST_F(RealKafkaTest, DeleteTopicsRemovesThemAndIgnoresMissingOnes) {
  const std::string a = testing::UniqueName("delete-a");
  const std::string b = testing::UniqueName("delete-b");
  ASSERT_TRUE(EnsureTopics(client(), {{a, 1, 1, {}}, {b, 1, 1, {}}}).ok());
  ASSERT_TRUE(DeleteTopics(client(), {a, testing::UniqueName("never-created")}).ok());
  // Metadata catches up with the controller shortly after the answer.
  bool gone = false;
  for (int i = 0; i < 100 && !gone; ++i) {
    auto info = DescribeCluster(client());
    ASSERT_TRUE(info.ok()) << info.status();
    gone = info->topics.count(a) == 0;
    EXPECT_EQ(info->topics.count(b), 1u);
    if (!gone) absl::SleepFor(absl::Milliseconds(100));
  }
  EXPECT_TRUE(gone) << a << " still listed 10 s after DeleteTopics";
}

// The gateway reads a topic's max.message.bytes this way to size its batches (issue 22).
TEST_F(RealKafkaTest, DescribeTopicConfigReadsTheTopicsMessageLimit) {
  const std::string small = testing::UniqueName("describe-small");
  const std::string plain = testing::UniqueName("describe-plain");
  ASSERT_TRUE(
      EnsureTopics(client(), {{small, 1, 1, {{"max.message.bytes", "65536"}}}, {plain, 1, 1, {}}})
          .ok());
  auto c = DescribeTopicConfig(client(), small);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->at("max.message.bytes"), "65536");
  EXPECT_EQ(c->at("cleanup.policy"), "delete");  // defaults are reported too
  c = DescribeTopicConfig(client(), plain);
  ASSERT_TRUE(c.ok()) << c.status();
  // The broker's message.max.bytes (deploy/local/kafka.sh raises Kafka's 1048588 for the tests).
  EXPECT_EQ(c->at("max.message.bytes"), "16777216");
  const std::string missing = testing::UniqueName("describe-missing");
  c = DescribeTopicConfig(client(), missing);
  EXPECT_EQ(c.status().code(), absl::StatusCode::kNotFound) << c.status();
  EXPECT_EQ(c.status().message(),
            "describe the configuration of topic " + missing + ": no such topic");
  ASSERT_TRUE(DeleteTopics(client(), {small, plain}).ok());
}

TEST_F(RealKafkaTest, RecordBatchesRoundTripIntactExactlyOnce) {
  RoundTripOptions opts;
  opts.topic = testing::UniqueName("roundtrip");
  opts.batches = 50;
  opts.records_per_batch = 200;
  auto result = RunKafkaRoundTrip(client(), opts);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->batches_read, 50);
  EXPECT_EQ(result->records_read, 10000);
}

TEST_F(RealKafkaTest, AbortedTransactionIsInvisibleToReadCommitted) {
  const std::string topic = testing::UniqueName("aborted");
  ASSERT_TRUE(EnsureTopics(client(), {{topic, 1, 1, {}}}).ok());
  ProducerOptions p;
  p.client = client();
  p.transactional_id = testing::UniqueName("txn");
  auto producer = KafkaProducer::Create(p);
  ASSERT_TRUE(producer.ok()) << producer.status();
  ASSERT_TRUE((*producer)->InitTransactions(absl::Seconds(30)).ok());
  ASSERT_TRUE((*producer)->BeginTransaction().ok());
  ASSERT_TRUE((*producer)->Produce(topic, 0, "k", "aborted").ok());
  ASSERT_TRUE((*producer)->AbortTransaction(absl::Seconds(30)).ok());
  ASSERT_TRUE((*producer)->BeginTransaction().ok());
  ASSERT_TRUE((*producer)->Produce(topic, 0, "k", "committed").ok());
  ASSERT_TRUE((*producer)->CommitTransaction(absl::Seconds(30)).ok());

  auto consumer = KafkaConsumer::Create({client()});
  ASSERT_TRUE(consumer.ok()) << consumer.status();
  ASSERT_TRUE((*consumer)->Assign({{topic, 0, 0}}).ok());
  std::vector<std::string> values;
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (values.empty() && absl::Now() < deadline) {
    auto msgs = (*consumer)->ConsumeBatch(10, absl::Milliseconds(500));
    ASSERT_TRUE(msgs.ok()) << msgs.status();
    for (const auto& m : *msgs) values.emplace_back(m.value());
  }
  // A short grace to let anything else (wrongly) visible arrive.
  auto more = (*consumer)->ConsumeBatch(10, absl::Seconds(1));
  ASSERT_TRUE(more.ok());
  for (const auto& m : *more) values.emplace_back(m.value());
  EXPECT_THAT(values, ::testing::ElementsAre("committed"));
}

TEST_F(RealKafkaTest, ConsumerGroupCommitsAndResumes) {
  const std::string topic = testing::UniqueName("group");
  const std::string group = testing::UniqueName("g");
  ASSERT_TRUE(EnsureTopics(client(), {{topic, 2, 1, {}}}).ok());
  {
    auto producer = KafkaProducer::Create({client()});
    ASSERT_TRUE(producer.ok());
    for (int i = 0; i < 10; ++i) {
      ASSERT_TRUE((*producer)->Produce(topic, i % 2, "k", std::to_string(i)).ok());
    }
    ASSERT_TRUE((*producer)->Flush(absl::Seconds(30)).ok());
  }
  auto read_all = [&](int want) {
    ConsumerOptions c;
    c.client = client();
    c.group_id = group;
    auto consumer = KafkaConsumer::Create(c);
    EXPECT_TRUE(consumer.ok());
    EXPECT_TRUE((*consumer)->Subscribe({topic}).ok());
    int got = 0;
    std::vector<TopicPartitionOffset> next;
    const absl::Time deadline = absl::Now() + absl::Seconds(30);
    while (got < want && absl::Now() < deadline) {
      auto msgs = (*consumer)->ConsumeBatch(100, absl::Milliseconds(500));
      EXPECT_TRUE(msgs.ok());
      for (const auto& m : *msgs) {
        ++got;
        next.push_back({std::string(m.topic()), m.partition(), m.offset() + 1});
      }
    }
    if (!next.empty()) {
      EXPECT_TRUE((*consumer)->Commit(next).ok());
    }
    EXPECT_TRUE((*consumer)->Close().ok());
    return got;
  };
  EXPECT_EQ(read_all(10), 10);
  // Everything committed: a new member of the same group reads nothing more.
  ConsumerOptions c;
  c.client = client();
  c.group_id = group;
  auto consumer = KafkaConsumer::Create(c);
  ASSERT_TRUE(consumer.ok());
  ASSERT_TRUE((*consumer)->Subscribe({topic}).ok());
  auto msgs = (*consumer)->ConsumeBatch(100, absl::Seconds(5));
  ASSERT_TRUE(msgs.ok());
  EXPECT_EQ(msgs->size(), 0u);
}

}  // namespace
}  // namespace cybersyn
