#include "common/kafka_stats.h"

#include "absl/time/clock.h"
#include "common/embedded_broker.h"
#include "common/kafka_consumer.h"
#include "common/kafka_producer.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "prometheus/text_serializer.h"

namespace cybersyn {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::string Scrape(prometheus::Registry& r) {
  return prometheus::TextSerializer().Serialize(r.Collect());
}

// The fields KafkaStats reads, as librdkafka 2.0 emits them (STATISTICS.md).
constexpr char kStats[] = R"({
  "name": "rdkafka#consumer-2", "type": "consumer", "replyq": 3, "msg_cnt": 0, "msg_size": 0,
  "brokers": {
    "127.0.0.1:9092/bootstrap": {"nodeid": -1, "state": "UP"},
    "127.0.0.1:9093/2": {"nodeid": 2, "state": "UP", "outbuf_cnt": 1, "waitresp_cnt": 4,
                         "rtt": {"cnt": 10, "p50": 1500, "p99": 250000}},
    "127.0.0.1:9094/3": {"nodeid": 3, "state": "DOWN", "outbuf_cnt": 0, "waitresp_cnt": 0,
                         "rtt": {"cnt": 0, "p50": 0, "p99": 0}}
  },
  "topics": {"cybersyn.records": {"partitions": {
    "0": {"partition": 0, "fetch_state": "active", "app_offset": 90, "ls_offset": 100,
          "hi_offset": 105, "fetchq_cnt": 7, "consumer_lag": 55},
    "1": {"partition": 1, "fetch_state": "none", "app_offset": -1001, "ls_offset": 50},
    "-1": {"partition": -1}
  }}}
})";

TEST(KafkaStatsTest, ExportsRttQueuesAndLagFromStatistics) {
  prometheus::Registry registry;
  KafkaStats stats(registry);
  std::string name;
  ASSERT_TRUE(stats.Update(kStats, &name).ok());
  EXPECT_EQ(name, "rdkafka#consumer-2");
  const std::string text = Scrape(registry);
  EXPECT_THAT(
      text,
      HasSubstr(
          R"(cybersyn_kafka_broker_rtt_seconds{broker="2",client="rdkafka#consumer-2",quantile="0.99"} 0.25)"));
  EXPECT_THAT(
      text,
      HasSubstr(
          R"(cybersyn_kafka_broker_rtt_seconds{broker="2",client="rdkafka#consumer-2",quantile="0.5"} 0.0015)"));
  EXPECT_THAT(text,
              HasSubstr(R"(cybersyn_kafka_broker_up{broker="3",client="rdkafka#consumer-2"} 0)"));
  EXPECT_THAT(
      text,
      HasSubstr(
          R"(cybersyn_kafka_broker_waitresp_requests{broker="2",client="rdkafka#consumer-2"} 4)"));
  EXPECT_THAT(text,
              HasSubstr(R"(cybersyn_kafka_client_replyq_events{client="rdkafka#consumer-2"} 3)"));
  // From the consumed position (90) to the last stable offset (100), not librdkafka's 55.
  EXPECT_THAT(
      text,
      HasSubstr(
          R"(cybersyn_kafka_consumer_lag_messages{client="rdkafka#consumer-2",partition="0",topic="cybersyn.records"} 10)"));
  EXPECT_THAT(
      text,
      HasSubstr(
          R"(cybersyn_kafka_consumer_fetchq_messages{client="rdkafka#consumer-2",partition="0",topic="cybersyn.records"} 7)"));
  EXPECT_THAT(text, Not(HasSubstr(R"(partition="1")")));  // not assigned
  EXPECT_THAT(text, Not(HasSubstr(R"(broker="-1")")));    // bootstrap pseudo-broker
}

TEST(KafkaStatsTest, SeriesThatLeaveTheStatisticsAreRemoved) {
  prometheus::Registry registry;
  KafkaStats stats(registry);
  std::string name;
  ASSERT_TRUE(stats.Update(kStats, &name).ok());
  // Partition 0 revoked, broker 3 gone.
  ASSERT_TRUE(stats
                  .Update(R"({"name": "rdkafka#consumer-2", "replyq": 0, "brokers": {
      "127.0.0.1:9093/2": {"nodeid": 2, "state": "UP"}}, "topics": {}})",
                          &name)
                  .ok());
  std::string text = Scrape(registry);
  EXPECT_THAT(text, Not(HasSubstr("cybersyn_kafka_consumer_lag_messages{")));
  EXPECT_THAT(text, Not(HasSubstr(R"(broker="3")")));
  EXPECT_THAT(text,
              HasSubstr(R"(cybersyn_kafka_broker_up{broker="2",client="rdkafka#consumer-2"} 1)"));
  stats.Forget(name);
  EXPECT_THAT(Scrape(registry), Not(HasSubstr("rdkafka#consumer-2")));
}

TEST(KafkaStatsTest, NotStatisticsIsInvalidArgument) {
  prometheus::Registry registry;
  KafkaStats stats(registry);
  std::string name;
  EXPECT_EQ(stats.Update("{not json", &name).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(stats.Update(R"({"type": "producer"})", &name).code(),
            absl::StatusCode::kInvalidArgument);
}

// A real client over TCP (the embedded broker): a producer and a consumer with statistics export
// their broker round trips and the consumer's lag, and drop their series when destroyed.
TEST(KafkaStatsTest, RealClientsExportAndForget) {
  auto broker = EmbeddedBroker::Start();
  ASSERT_TRUE(broker.ok()) << broker.status();
  ASSERT_TRUE((*broker)->CreateTopic("stats", 1).ok());
  auto registry = std::make_shared<prometheus::Registry>();
  KafkaClientOptions client{(*broker)->bootstrap(), {{"statistics.interval.ms", "100"}}};
  client.stats = std::make_shared<KafkaStats>(*registry);
  {
    ProducerOptions po;
    po.client = client;
    auto producer = KafkaProducer::Create(po);
    ASSERT_TRUE(producer.ok()) << producer.status();
    for (int i = 0; i < 50; ++i) ASSERT_TRUE((*producer)->Produce("stats", 0, "k", "v").ok());
    ASSERT_TRUE((*producer)->Flush(absl::Seconds(10)).ok());
    ConsumerOptions co;
    co.client = client;
    co.group_id = "stats-test";
    auto consumer = KafkaConsumer::Create(co);
    ASSERT_TRUE(consumer.ok()) << consumer.status();
    ASSERT_TRUE((*consumer)->Subscribe({"stats"}).ok());
    int read = 0;
    std::string text;
    const absl::Time deadline = absl::Now() + absl::Seconds(30);
    bool paused = false;
    while (absl::Now() < deadline) {
      // Read 20 of the 50, then pause the partition and only poll: the lag stays at 30.
      auto got = (*consumer)->ConsumeBatch(paused ? 10 : 20 - read, absl::Milliseconds(100));
      ASSERT_TRUE(got.ok()) << got.status();
      read += static_cast<int>(got->size());
      if (read >= 20 && !paused) {
        std::vector<RdKafka::TopicPartition*> parts;
        ASSERT_EQ((*consumer)->raw()->assignment(parts), RdKafka::ERR_NO_ERROR);
        ASSERT_EQ((*consumer)->raw()->pause(parts), RdKafka::ERR_NO_ERROR);
        RdKafka::TopicPartition::destroy(parts);
        paused = true;
      }
      (*producer)->Poll(absl::ZeroDuration());
      text = Scrape(*registry);
      if (read >= 20 && text.find("cybersyn_kafka_consumer_lag_messages{") != std::string::npos &&
          text.find("cybersyn_kafka_broker_rtt_seconds{") != std::string::npos &&
          text.find(",topic=\"stats\"} 30") != std::string::npos) {
        break;
      }
    }
    EXPECT_EQ(read, 20);
    EXPECT_THAT(text, HasSubstr("partition=\"0\",topic=\"stats\"} 30")) << text;
    EXPECT_THAT(
        text,
        HasSubstr("cybersyn_kafka_broker_rtt_seconds{broker=\"1\",client=\"rdkafka#producer-"));
    EXPECT_THAT(text,
                HasSubstr("cybersyn_kafka_broker_up{broker=\"1\",client=\"rdkafka#consumer-"));
    ASSERT_TRUE((*consumer)->Close().ok());
  }
  EXPECT_THAT(Scrape(*registry), Not(HasSubstr("client=\"rdkafka#")));
}

}  // namespace
}  // namespace cybersyn
