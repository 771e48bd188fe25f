#include "common/kafka_properties.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace cybersyn {
namespace {

using ::testing::ElementsAre;
using ::testing::Pair;

TEST(KafkaPropertiesTest, AliasesResolveToTheDocumentedName) {
  EXPECT_EQ(CanonicalKafkaKey("queue.buffering.max.ms"), "linger.ms");
  EXPECT_EQ(CanonicalKafkaKey("request.required.acks"), "acks");
  EXPECT_EQ(CanonicalKafkaKey("metadata.broker.list"), "bootstrap.servers");
  EXPECT_EQ(CanonicalKafkaKey("linger.ms"), "linger.ms");
}

TEST(KafkaPropertiesTest, CorrectnessKeysArePinnedTuningKeysAreNot) {
  for (const char* key :
       {"enable.idempotence", "transactional.id", "isolation.level", "enable.gapless.guarantee",
        "acks", "request.required.acks", "enable.auto.commit", "group.id", "bootstrap.servers"}) {
    EXPECT_NE(PinnedKeyReason(key), nullptr) << key;
  }
  for (const char* key : {"linger.ms", "compression.type", "session.timeout.ms",
                          "security.protocol", "statistics.interval.ms"}) {
    EXPECT_EQ(PinnedKeyReason(key), nullptr) << key;
  }
}

TEST(KafkaPropertiesTest, ConfigOverridesCodeDefaultsKindOverridesShared) {
  KafkaClientOptions o;
  o.bootstrap = "b:1";
  o.properties = {{"linger.ms", "5"}, {"security.protocol", "SSL"}};
  o.producer = {{"compression.codec", "zstd"}, {"linger.ms", "10"}};
  o.consumer = {{"fetch.min.bytes", "1"}};
  KafkaSettings s =
      EffectiveKafkaSettings(o, KafkaClientKind::kProducer,
                             {{"linger.ms", "20"}, {"compression.type", "lz4"}, {"acks", "all"}});
  EXPECT_THAT(s.values, ElementsAre(Pair("acks", "all"), Pair("bootstrap.servers", "b:1"),
                                    Pair("compression.type", "zstd"), Pair("linger.ms", "10"),
                                    Pair("security.protocol", "SSL")));
  EXPECT_THAT(s.replaced_defaults,
              ElementsAre("compression.type=zstd (kafka.producer) instead of the built-in lz4",
                          "linger.ms=10 (kafka.producer) instead of the built-in 20"));
}

TEST(KafkaPropertiesTest, PinnedCodeValuesWinOverProgrammaticOptions) {
  KafkaClientOptions o;
  o.consumer = {{"isolation.level", "read_uncommitted"}, {"group.id", "mine"}};
  KafkaSettings s = EffectiveKafkaSettings(o, KafkaClientKind::kConsumer,
                                           {{"isolation.level", "read_committed"}});
  EXPECT_EQ(s.values.at("isolation.level"), "read_committed");
  EXPECT_EQ(s.values.at("group.id"), "mine");  // the code did not set it
  EXPECT_TRUE(s.replaced_defaults.empty());
  EXPECT_EQ(s.values.count("bootstrap.servers"), 0u);
}

TEST(KafkaPropertiesTest, AdminGetsSharedAndAdminSections) {
  KafkaClientOptions o;
  o.properties = {{"client.id", "x"}};
  o.admin = {{"socket.timeout.ms", "5000"}};
  o.producer = {{"linger.ms", "1"}};
  EXPECT_THAT(EffectiveKafkaSettings(o, KafkaClientKind::kAdmin, {}).values,
              ElementsAre(Pair("client.id", "x"), Pair("socket.timeout.ms", "5000")));
}

}  // namespace
}  // namespace cybersyn
