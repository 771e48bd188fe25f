// Attribution across two alerter instances on the real broker (docs/attribution.md): a unit's
// series and its enterprise's and sector's are on different partitions, owned by different
// instances; the unit's step raises one signal, at the unit, listing the roll-ups that moved.
#include <filesystem>
#include <map>
#include <random>

#include "absl/strings/str_cat.h"
#include "alerter/alerter.h"
#include "common/config.h"
#include "common/kafka_consumer.h"
#include "common/kafka_producer.h"
#include "cybersyn/v1/aggregate.pb.h"
#include "cybersyn/v1/signal.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/alerter_testing.h"
#include "tests/testing/real_kafka.h"

namespace cybersyn {
namespace {

using ::testing::ElementsAre;
using ::testing::UnorderedElementsAre;

constexpr char kSpinning[] = "textiles/yarur/spinning";
constexpr char kWeaving[] = "textiles/yarur/weaving";
constexpr char kSumar[] = "textiles/sumar/spinning";
constexpr char kYarur[] = "textiles/yarur";
constexpr char kSumarEnt[] = "textiles/sumar";
constexpr char kRoot[] = "textiles";

// Every committed SignalEvent of `topic` so far (stops after 2 s without a message).
std::vector<v1::SignalEvent> ReadEvents(const KafkaClientOptions& client,
                                        const std::string& topic) {
  std::vector<v1::SignalEvent> out;
  ConsumerOptions co;
  co.client = client;
  co.read_committed = true;
  auto consumer = KafkaConsumer::Create(co);
  EXPECT_TRUE(consumer.ok()) << consumer.status();
  if (!consumer.ok()) return out;
  EXPECT_TRUE((*consumer)->Assign({{topic, 0, 0}, {topic, 1, 0}}).ok());
  for (int quiet = 0; quiet < 4;) {
    auto batch = (*consumer)->ConsumeBatch(1000, absl::Milliseconds(500));
    if (!batch.ok()) break;
    quiet = batch->empty() ? quiet + 1 : 0;
    for (const ConsumedMessage& m : *batch) {
      v1::SignalEvent e;
      EXPECT_TRUE(e.ParseFromArray(m.value().data(), static_cast<int>(m.value().size())));
      out.push_back(e);
    }
  }
  (void)(*consumer)->Close();
  return out;
}

TEST(AttributionE2eTest, UnitAndRollUpsOnDifferentInstancesRaiseOneSignal) {
  auto k = testing::GetRealKafka();
  ASSERT_TRUE(k.ok()) << k.status();
  const KafkaClientOptions client{k->bootstrap, {}};
  const std::string prefix = testing::UniqueName("attr");
  const std::filesystem::path dir = std::filesystem::temp_directory_path() / prefix;
  auto loaded =
      LoadConfigString(testing::TextilesConfigYaml(k->bootstrap, prefix,
                                                   "alerter: {warmup: 5, auto_resolve_after: 3}\n"),
                       "test.yaml");
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  auto config = std::make_shared<const Config>(std::move(*loaded));
  std::vector<std::unique_ptr<alerter::Alerter>> instances;
  for (const char* id : {"a", "b"}) {
    alerter::AlerterOptions o;
    o.config = config;
    o.client = client;
    o.instance_id = id;
    o.state_dir = (dir / id).string();
    auto a = alerter::Alerter::Create(o);
    ASSERT_TRUE(a.ok()) << a.status();
    ASSERT_TRUE((*a)->Start().ok());
    instances.push_back(std::move(*a));
  }
  for (int i = 0; i < 300 && !(instances[0]->ready() && instances[1]->ready()); ++i) {
    absl::SleepFor(absl::Milliseconds(100));
  }
  ASSERT_TRUE(instances[0]->ready() && instances[1]->ready());

  // The units on partition 0, the roll-ups on partition 1 (as the aggregator would send them:
  // sums of the units), 46 one-minute windows, spinning steps down by 40 from window 40.
  auto producer = KafkaProducer::Create({client});
  ASSERT_TRUE(producer.ok()) << producer.status();
  const TopicNames names(prefix);
  const int64_t t0 = absl::ToUnixMillis(absl::Now()) - 3 * 3'600'000;
  std::mt19937 rng(11);
  std::normal_distribution<double> noise(0, 1);
  for (int i = 0; i < 46; ++i) {
    std::map<std::string, double> v;
    for (const char* u : {kSpinning, kWeaving, kSumar}) {
      v[u] = 100 + noise(rng) + (i >= 40 && u == kSpinning ? -40 : 0);
    }
    v[kYarur] = v[kSpinning] + v[kWeaving];
    v[kSumarEnt] = v[kSumar];
    v[kRoot] = v[kYarur] + v[kSumarEnt];
    for (const auto& [node, value] : v) {
      v1::WindowAggregate a;
      a.mutable_series()->set_node(node);
      a.mutable_series()->set_indicator("output");
      a.mutable_series()->set_window_ms(60000);
      a.set_window_start_ms(t0 + i * 60000);
      a.set_window_end_ms(t0 + (i + 1) * 60000);
      a.set_value(value);
      a.set_count(1);
      const int32_t partition = node == std::string(kYarur) || node == std::string(kSumarEnt) ||
                                        node == std::string(kRoot)
                                    ? 1
                                    : 0;
      ASSERT_TRUE(
          (*producer)->Produce(names.aggregates, partition, node, a.SerializeAsString()).ok());
    }
  }
  ASSERT_TRUE((*producer)->Flush(absl::Seconds(30)).ok());

  std::vector<std::string> raised, also;
  for (int attempt = 0; attempt < 30 && also.size() < 2; ++attempt) {
    absl::SleepFor(absl::Seconds(1));
    raised.clear();
    also.clear();
    for (const v1::SignalEvent& e : ReadEvents(client, names.signals)) {
      if (e.transition().kind() == v1::TRANSITION_KIND_RAISED) {
        raised.push_back(e.signal().origin_node());
      }
      if (e.transition().kind() == v1::TRANSITION_KIND_ALSO_VISIBLE) {
        also.push_back(e.signal().also_visible_at().rbegin()->series().node());
      }
    }
  }
  EXPECT_THAT(raised, ElementsAre(kSpinning));
  EXPECT_THAT(also, UnorderedElementsAre(kYarur, kRoot));
  // Both instances own series: the unit's and the roll-ups' tasks were on different instances.
  EXPECT_GT(instances[0]->stats().series, 0u);
  EXPECT_GT(instances[1]->stats().series, 0u);
  for (auto& a : instances) a->Stop();
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

}  // namespace
}  // namespace cybersyn
