// QueryStore against the embedded broker: what is produced to <prefix>.aggregates and
// <prefix>.signals becomes queryable history, status, open signals and live events.
#include "query/query_store.h"

#include "common/embedded_broker.h"
#include "common/kafka_producer.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace cybersyn::query {
namespace {

constexpr char kConfig[] = R"(
kafka: {bootstrap: embedded, topic_prefix: qt, partitions: 2}
levels:
  - {name: nation, ack_within: 1m, resolve_within: 5m}
  - {name: sector, ack_within: 1m, resolve_within: 5m}
  - {name: enterprise, ack_within: 1m, resolve_within: 5m}
  - {name: unit, ack_within: 1m, resolve_within: 5m}
hierarchy:
  cl:
    children:
      tex:
        children:
          yarur:
            children:
              spinning: {}
indicators:
  - {name: output, unit: t, rollup: sum}
operators:
  - {name: ana, subtree: cl/tex, token: t1}
aggregator: {windows: [10s, 1m]}
)";

class QueryStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto config = LoadConfigString(kConfig, "test.yaml");
    ASSERT_TRUE(config.ok()) << config.status();
    config_ = std::make_shared<const Config>(std::move(*config));
    auto broker = EmbeddedBroker::Start();
    ASSERT_TRUE(broker.ok());
    broker_ = std::move(*broker);
    ASSERT_TRUE(broker_->EnsureTopics(DeploymentTopics(TopicNames("qt"), 2, 1)).ok());
    auto producer = KafkaProducer::Create({{broker_->bootstrap(), {}}});
    ASSERT_TRUE(producer.ok());
    producer_ = std::move(*producer);
  }
  void ProduceAggregate(int64_t start, double value) {
    v1::WindowAggregate a;
    a.mutable_series()->set_node("cl/tex/yarur/spinning");
    a.mutable_series()->set_indicator("output");
    a.mutable_series()->set_window_ms(10000);
    a.set_window_start_ms(start);
    a.set_window_end_ms(start + 10000);
    a.set_value(value);
    a.set_count(1);
    ASSERT_TRUE(
        producer_->Produce("qt.aggregates", -1, a.series().node(), a.SerializeAsString()).ok());
  }
  void ProduceSignal(const std::string& id, v1::SignalState state, const std::string& at,
                     int64_t at_ms = 0) {
    v1::SignalEvent e;
    v1::Signal* s = e.mutable_signal();
    s->set_id(id);
    s->set_origin_node("cl/tex/yarur/spinning");
    s->set_current_node(at);
    s->set_state(state);
    s->set_severity(v1::SEVERITY_CRISIS);
    s->mutable_series()->set_node("cl/tex/yarur/spinning");
    s->mutable_series()->set_indicator("output");
    s->set_window_start_ms(1'700'000'090'000);
    e.mutable_transition()->set_kind(state == v1::SIGNAL_STATE_RESOLVED
                                         ? v1::TRANSITION_KIND_RESOLVED
                                         : v1::TRANSITION_KIND_RAISED);
    e.mutable_transition()->set_at_ms(at_ms);
    ASSERT_TRUE(producer_->Produce("qt.signals", -1, s->origin_node(), e.SerializeAsString()).ok());
  }
  std::shared_ptr<const Config> config_;
  std::unique_ptr<EmbeddedBroker> broker_;
  std::unique_ptr<KafkaProducer> producer_;
};

TEST_F(QueryStoreTest, MaterialisesHistoryStatusSignalsAndEvents) {
  for (int i = 0; i < 20; ++i) ProduceAggregate(1'700'000'000'000 + i * 10000, 100.0 + (i % 3));
  ProduceSignal("s1", v1::SIGNAL_STATE_ESCALATED, "cl/tex/yarur");
  ProduceSignal("s2", v1::SIGNAL_STATE_FIRING, "cl/tex/yarur/spinning");
  ASSERT_TRUE(producer_->Flush(absl::Seconds(10)).ok());

  auto store = QueryStore::Start({config_, {broker_->bootstrap(), {}}, "qt"});
  ASSERT_TRUE(store.ok()) << store.status();
  ASSERT_TRUE((*store)->WaitCaughtUp(absl::Seconds(30)).ok());
  EXPECT_EQ((*store)->aggregates_seen(), 20u);

  v1::SeriesHistoryRequest req;
  req.set_node("cl/tex/yarur/spinning");
  req.set_indicator("output");
  auto hist = (*store)->SeriesHistory(req);
  ASSERT_TRUE(hist.ok()) << hist.status();
  ASSERT_EQ(hist->points_size(), 20);
  EXPECT_EQ(hist->points(19).aggregate().value(), 100.0 + (19 % 3));
  EXPECT_TRUE(hist->points(19).has_forecast());  // the detector replay forecasts once warm
  EXPECT_GT(hist->points(19).forecast_upper(), hist->points(19).forecast_lower());
  EXPECT_THAT(hist->points(9).signal_ids(), ::testing::ElementsAre("s1", "s2"));
  req.set_limit(5);
  EXPECT_EQ((*store)->SeriesHistory(req)->points_size(), 5);
  req.set_node("cl/nope");
  EXPECT_EQ((*store)->SeriesHistory(req).status().code(), absl::StatusCode::kNotFound);

  auto status = (*store)->Status("", 3);
  ASSERT_TRUE(status.ok());
  const v1::NodeStatus& yarur = status->children(0).children(0);
  EXPECT_EQ(yarur.node(), "cl/tex/yarur");
  EXPECT_EQ(yarur.worst(), v1::SEVERITY_CRISIS);         // s1 escalated to it
  EXPECT_EQ(status->worst(), v1::SEVERITY_UNSPECIFIED);  // nothing reached the nation
  EXPECT_EQ(yarur.children(0).last_values().at("output"), 100.0 + (19 % 3));
  EXPECT_EQ((*store)->OpenSignals("cl/tex").size(), 2u);
  EXPECT_EQ((*store)->OpenSignals("cl/other").size(), 0u);

  // Live events: a new transition reaches a waiting reader; resolving closes the signal.
  auto first = (*store)->EventsAfter("", absl::Milliseconds(10));
  EXPECT_TRUE(first.empty());  // "" = from now
  auto all = (*store)->EventsAfter("stale-cursor", absl::Milliseconds(10));
  ASSERT_EQ(all.size(), 2u);
  ProduceSignal("s2", v1::SIGNAL_STATE_RESOLVED, "cl/tex/yarur/spinning");
  ASSERT_TRUE(producer_->Flush(absl::Seconds(10)).ok());
  auto next = (*store)->EventsAfter(all.back().first, absl::Seconds(10));
  ASSERT_EQ(next.size(), 1u);
  EXPECT_EQ(next[0].second.signal().state(), v1::SIGNAL_STATE_RESOLVED);
  EXPECT_EQ((*store)->OpenSignals("").size(), 1u);
  EXPECT_EQ((*store)->FindSignal("s2")->state(), v1::SIGNAL_STATE_RESOLVED);
}

TEST_F(QueryStoreTest, KeepsHistoryForTheRetentionOnly) {
  constexpr int64_t kT0 = 1'700'000'000'000;
  const std::string unit = "cl/tex/yarur/spinning";
  for (int i = 0; i < 10; ++i) ProduceAggregate(kT0 + i * 10000, i);
  ProduceSignal("old", v1::SIGNAL_STATE_RESOLVED, unit, kT0 + 5000);
  ProduceSignal("open", v1::SIGNAL_STATE_FIRING, unit, kT0 + 5000);
  ASSERT_TRUE(producer_->Flush(absl::Seconds(10)).ok());
  QueryStoreOptions o{config_, {broker_->bootstrap(), {}}, "qt"};
  o.retention = absl::Seconds(100);
  o.sweep_every = absl::ZeroDuration();
  v1::SeriesHistoryRequest req;
  req.set_node(unit);
  req.set_indicator("output");
  {
    auto store = QueryStore::Start(o);
    ASSERT_TRUE(store.ok()) << store.status();
    ASSERT_TRUE((*store)->WaitCaughtUp(absl::Seconds(30)).ok());
    EXPECT_EQ((*store)->SeriesHistory(req)->points_size(), 10);  // all within 100 s of the newest
    EXPECT_TRUE((*store)->FindSignal("old").ok());

    // 100 s on: the windows that started more than 100 s before the newest go, and so does the
    // signal resolved more than 100 s before the newest event; the open one stays.
    for (int i = 10; i < 20; ++i) ProduceAggregate(kT0 + i * 10000, i);
    ProduceSignal("later", v1::SIGNAL_STATE_FIRING, unit, kT0 + 200000);
    ASSERT_TRUE(producer_->Flush(absl::Seconds(10)).ok());
    ASSERT_TRUE((*store)->WaitCaughtUp(absl::Seconds(30)).ok());
    auto hist = (*store)->SeriesHistory(req);
    ASSERT_TRUE(hist.ok()) << hist.status();
    ASSERT_EQ(hist->points_size(), 11);
    EXPECT_EQ(hist->points(0).aggregate().window_start_ms(), kT0 + 90000);
    EXPECT_EQ((*store)->aggregates_expired(), 9u);
    EXPECT_EQ((*store)->FindSignal("old").status().code(), absl::StatusCode::kNotFound);
    EXPECT_EQ((*store)->signals_expired(), 1u);
    EXPECT_TRUE((*store)->FindSignal("open").ok());
  }
  // A new store reading the topics from their start keeps the same window of history.
  auto store = QueryStore::Start(o);
  ASSERT_TRUE(store.ok()) << store.status();
  ASSERT_TRUE((*store)->WaitCaughtUp(absl::Seconds(30)).ok());
  auto hist = (*store)->SeriesHistory(req);
  ASSERT_EQ(hist->points_size(), 11);
  EXPECT_EQ(hist->points(0).aggregate().window_start_ms(), kT0 + 90000);
  EXPECT_EQ((*store)->FindSignal("old").status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE((*store)->FindSignal("open").ok());
}

}  // namespace
}  // namespace cybersyn::query
