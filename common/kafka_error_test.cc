#include "common/kafka_error.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace cybersyn {
namespace {

using ::testing::HasSubstr;

TEST(KafkaErrorTest, MapsCodesToStatusCodes) {
  EXPECT_TRUE(KafkaStatus(RdKafka::ERR_NO_ERROR, "x").ok());
  EXPECT_EQ(KafkaStatus(RdKafka::ERR__TIMED_OUT, "x").code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(KafkaStatus(RdKafka::ERR__QUEUE_FULL, "x").code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(KafkaStatus(RdKafka::ERR__ALL_BROKERS_DOWN, "x").code(),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(KafkaStatus(RdKafka::ERR_MSG_SIZE_TOO_LARGE, "x").code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(KafkaStatus(RdKafka::ERR__FENCED, "x").code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(KafkaStatus(RdKafka::ERR_TOPIC_AUTHORIZATION_FAILED, "x").code(),
            absl::StatusCode::kPermissionDenied);
}

TEST(KafkaErrorTest, MessageNamesOperationAndLibrdkafkaText) {
  absl::Status s = KafkaStatus(RdKafka::ERR__QUEUE_FULL, "produce to cybersyn.records");
  EXPECT_THAT(std::string(s.message()),
              HasSubstr("produce to cybersyn.records: Local: Queue full (-184)"));
}

TEST(KafkaErrorTest, BuildConfNamesRefusedProperty) {
  std::unique_ptr<RdKafka::Conf> conf(RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL));
  KafkaClientOptions opts{"127.0.0.1:1", {{"no.such.property", "1"}}};
  absl::Status s = BuildKafkaConf(opts, KafkaClientKind::kProducer, {}, conf.get());
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("kafka property no.such.property=1"));
}

TEST(KafkaErrorTest, BuildConfLayersConfigOverCodeDefaultsAndPinnedKeysOverConfig) {
  std::unique_ptr<RdKafka::Conf> conf(RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL));
  KafkaClientOptions opts{"127.0.0.1:1", {{"client.id", "shared"}, {"linger.ms", "7"}}};
  opts.producer = {{"queue.buffering.max.ms", "9"}};  // alias of linger.ms
  opts.consumer = {{"linger.ms", "99"}};              // another kind's: not used
  ASSERT_TRUE(BuildKafkaConf(opts, KafkaClientKind::kProducer,
                             {{"linger.ms", "20"}, {"enable.idempotence", "true"}, {"acks", "all"}},
                             conf.get())
                  .ok());
  std::string v;
  conf->get("client.id", v);
  EXPECT_EQ(v, "shared");
  conf->get("linger.ms", v);
  EXPECT_EQ(v, "9");
  conf->get("enable.idempotence", v);
  EXPECT_EQ(v, "true");
  conf->get("bootstrap.servers", v);
  EXPECT_EQ(v, "127.0.0.1:1");
}

}  // namespace
}  // namespace cybersyn
