#include "alerter/alertmanager_bridge.h"

#include <thread>
#include <utility>

#include "absl/synchronization/mutex.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "httplib.h"
#include "nlohmann/json.hpp"
#include "prometheus/text_serializer.h"

namespace cybersyn::alerter {
namespace {

using ::testing::HasSubstr;
using ::testing::SizeIs;

// An in-process stand-in for Alertmanager's POST /api/v2/alerts that records each body.
class FakeAlertmanager {
 public:
  FakeAlertmanager() {
    // Also under a route prefix, as behind a reverse proxy.
    server_.Post(R"((/prefix)?/api/v2/alerts)",
                 [this](const httplib::Request& req, httplib::Response& res) {
                   absl::MutexLock l(&mu_);
                   if (fail_) {
                     res.status = 500;
                     res.set_content("boom", "text/plain");
                     return;
                   }
                   bodies_.push_back(nlohmann::json::parse(req.body));
                   res.status = 200;
                 });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
  }
  ~FakeAlertmanager() {
    // stop() before listen_after_bind started would be lost: wait for it to run.
    while (!server_.is_running()) absl::SleepFor(absl::Milliseconds(1));
    server_.stop();
    thread_.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  void set_fail(bool f) {
    absl::MutexLock l(&mu_);
    fail_ = f;
  }
  std::vector<nlohmann::json> bodies() {
    absl::MutexLock l(&mu_);
    return bodies_;
  }

 private:
  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
  absl::Mutex mu_;
  bool fail_ = false;
  std::vector<nlohmann::json> bodies_;
};

v1::Signal MakeSignal(const std::string& id, v1::SignalState state, uint64_t revision) {
  v1::Signal s;
  s.set_id(id);
  s.mutable_series()->set_node("cl/textiles/yarur/spinning");
  s.mutable_series()->set_indicator("output");
  s.mutable_series()->set_window_ms(10000);
  s.set_kind(v1::SIGNAL_KIND_STEP);
  s.set_severity(v1::SEVERITY_ALERT);
  s.set_observed(12.5);
  s.set_forecast(40);
  s.set_forecast_lower(35);
  s.set_forecast_upper(45);
  s.set_origin_node("cl/textiles/yarur/spinning");
  s.set_current_node("cl/textiles/yarur/spinning");
  s.set_current_level_name("unit");
  s.set_state(state);
  s.set_raised_at_ms(1'700'000'000'000);
  s.set_revision(revision);
  auto* t = s.add_history();
  t->set_reason("step down");
  return s;
}

v1::SignalEvent Event(v1::Signal s) {
  v1::SignalEvent e;
  *e.mutable_signal() = std::move(s);
  return e;
}

class AlertmanagerBridgeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    AlertmanagerBridgeOptions o;
    o.config.url = am_.url();
    o.config.resend_interval = absl::Minutes(1);
    o.config.timeout = absl::Seconds(2);
    o.clock = &clock_;
    o.registry = registry_;
    auto b = AlertmanagerBridge::Create(std::move(o));
    ASSERT_TRUE(b.ok()) << b.status();
    bridge_ = std::move(*b);
  }
  std::string Metrics() { return prometheus::TextSerializer().Serialize(registry_->Collect()); }

  FakeAlertmanager am_;
  ManualClock clock_{absl::FromUnixMillis(1'700'000'060'000)};
  std::shared_ptr<prometheus::Registry> registry_ = std::make_shared<prometheus::Registry>();
  std::unique_ptr<AlertmanagerBridge> bridge_;
};

TEST_F(AlertmanagerBridgeTest, RaisedSignalIsPostedWithLabelsAndAnnotationsThenResent) {
  bridge_->OnCommitted({Event(MakeSignal("sig-1", v1::SIGNAL_STATE_FIRING, 1))});
  ASSERT_TRUE(bridge_->Flush().ok());
  ASSERT_THAT(am_.bodies(), SizeIs(1));
  const nlohmann::json body = am_.bodies()[0];
  ASSERT_THAT(body, SizeIs(1));
  const nlohmann::json& a = body[0];
  EXPECT_EQ(a["labels"]["alertname"], "CybersynSignal");
  EXPECT_EQ(a["labels"]["signal_id"], "sig-1");
  EXPECT_EQ(a["labels"]["node"], "cl/textiles/yarur/spinning");
  EXPECT_EQ(a["labels"]["level"], "unit");
  EXPECT_EQ(a["labels"]["kind"], "step");
  EXPECT_EQ(a["labels"]["severity"], "warning");
  EXPECT_EQ(a["labels"]["indicator"], "output");
  EXPECT_EQ(a["annotations"]["observed"], "12.5");
  EXPECT_EQ(a["annotations"]["forecast"], "40");
  EXPECT_EQ(a["annotations"]["description"], "step down");
  EXPECT_THAT(a["annotations"]["summary"].get<std::string>(),
              HasSubstr("observed 12.5 vs forecast 40"));
  EXPECT_EQ(a["startsAt"], "2023-11-14T22:13:20.000Z");
  // endsAt = now + 4 resend intervals: an alerter that dies stops paging by itself.
  EXPECT_EQ(a["endsAt"], "2023-11-14T22:18:20.000Z");

  // Nothing new: nothing posted until the resend interval passed.
  ASSERT_TRUE(bridge_->Flush().ok());
  EXPECT_THAT(am_.bodies(), SizeIs(1));
  clock_.Advance(absl::Seconds(59));
  ASSERT_TRUE(bridge_->Flush().ok());
  EXPECT_THAT(am_.bodies(), SizeIs(1));
  clock_.Advance(absl::Seconds(1));
  ASSERT_TRUE(bridge_->Flush().ok());
  ASSERT_THAT(am_.bodies(), SizeIs(2));
  EXPECT_EQ(am_.bodies()[1][0]["labels"]["signal_id"], "sig-1");
  EXPECT_EQ(am_.bodies()[1][0]["endsAt"], "2023-11-14T22:19:20.000Z");
  EXPECT_THAT(Metrics(), HasSubstr("cybersyn_alerter_alertmanager_posts_total{result=\"ok\"} 2"));
}

TEST_F(AlertmanagerBridgeTest, ResolvedSignalIsEndedNowAndForgotten) {
  bridge_->OnCommitted({Event(MakeSignal("sig-1", v1::SIGNAL_STATE_FIRING, 1))});
  ASSERT_TRUE(bridge_->Flush().ok());
  clock_.Advance(absl::Seconds(5));
  bridge_->OnCommitted({Event(MakeSignal("sig-1", v1::SIGNAL_STATE_RESOLVED, 2))});
  EXPECT_EQ(bridge_->tracked(), 0u);
  ASSERT_TRUE(bridge_->Flush().ok());
  ASSERT_THAT(am_.bodies(), SizeIs(2));
  const nlohmann::json a = am_.bodies()[1][0];
  EXPECT_EQ(a["labels"]["signal_id"], "sig-1");
  EXPECT_EQ(a["endsAt"], "2023-11-14T22:14:25.000Z");  // now
  clock_.Advance(absl::Minutes(5));
  ASSERT_TRUE(bridge_->Flush().ok());
  EXPECT_THAT(am_.bodies(), SizeIs(2));  // never re-posted
}

TEST_F(AlertmanagerBridgeTest, EscalationEndsTheOldLabelSetAndPostsTheNewLevel) {
  bridge_->OnCommitted({Event(MakeSignal("sig-1", v1::SIGNAL_STATE_FIRING, 1))});
  ASSERT_TRUE(bridge_->Flush().ok());
  v1::Signal up = MakeSignal("sig-1", v1::SIGNAL_STATE_ESCALATED, 2);
  up.set_current_node("cl/textiles/yarur");
  up.set_current_level_name("enterprise");
  bridge_->OnCommitted({Event(up)});
  ASSERT_TRUE(bridge_->Flush().ok());
  ASSERT_THAT(am_.bodies(), SizeIs(2));
  const nlohmann::json body = am_.bodies()[1];
  ASSERT_THAT(body, SizeIs(2));
  EXPECT_EQ(body[0]["labels"]["level"], "unit");  // ended now
  EXPECT_EQ(body[0]["endsAt"], "2023-11-14T22:14:20.000Z");
  EXPECT_EQ(body[1]["labels"]["level"], "enterprise");
  EXPECT_EQ(body[1]["labels"]["node"], "cl/textiles/yarur");
  EXPECT_EQ(body[1]["annotations"]["state"], "escalated");
  EXPECT_EQ(body[1]["labels"]["origin"], "cl/textiles/yarur/spinning");
}

TEST_F(AlertmanagerBridgeTest, AlsoVisibleUpdatesTheAffectedNodesOfTheOneAlert) {
  bridge_->OnCommitted({Event(MakeSignal("sig-1", v1::SIGNAL_STATE_FIRING, 1))});
  ASSERT_TRUE(bridge_->Flush().ok());
  ASSERT_THAT(am_.bodies(), SizeIs(1));
  EXPECT_EQ(am_.bodies()[0][0]["annotations"]["affected_nodes"], "cl/textiles/yarur/spinning");
  EXPECT_FALSE(am_.bodies()[0][0]["annotations"].contains("also_visible_at"));

  // The fault is also visible at the enterprise and at the unit's productivity: the same label
  // set is posted again at once with the nodes, and nothing is ended.
  v1::Signal seen = MakeSignal("sig-1", v1::SIGNAL_STATE_FIRING, 2);
  for (const auto& [node, indicator] : {std::pair{"cl/textiles/yarur", "output"},
                                        {"cl/textiles/yarur/spinning", "productivity"},
                                        {"cl/textiles/yarur", "productivity"}}) {
    v1::AlsoVisible* a = seen.add_also_visible_at();
    a->mutable_series()->set_node(node);
    a->mutable_series()->set_indicator(indicator);
    a->mutable_series()->set_window_ms(10000);
  }
  v1::SignalEvent e = Event(seen);
  e.mutable_transition()->set_kind(v1::TRANSITION_KIND_ALSO_VISIBLE);
  bridge_->OnCommitted({e});
  ASSERT_TRUE(bridge_->Flush().ok());
  ASSERT_THAT(am_.bodies(), SizeIs(2));
  const nlohmann::json body = am_.bodies()[1];
  ASSERT_THAT(body, SizeIs(1));  // one alert, not ended and re-raised
  EXPECT_EQ(body[0]["labels"], am_.bodies()[0][0]["labels"]);
  EXPECT_EQ(body[0]["annotations"]["affected_nodes"],
            "cl/textiles/yarur/spinning, cl/textiles/yarur");
  EXPECT_EQ(body[0]["annotations"]["also_visible_at"],
            "cl/textiles/yarur output (10 s), cl/textiles/yarur/spinning productivity (10 s), "
            "cl/textiles/yarur productivity (10 s)");
  EXPECT_EQ(body[0]["endsAt"], "2023-11-14T22:18:20.000Z");
  EXPECT_EQ(bridge_->tracked(), 1u);
}

TEST_F(AlertmanagerBridgeTest, RewardsAndSilencedSignalsAreNotPaged) {
  v1::Signal reward = MakeSignal("sig-r", v1::SIGNAL_STATE_FIRING, 1);
  reward.set_kind(v1::SIGNAL_KIND_REWARD);
  reward.set_severity(v1::SEVERITY_REWARD);
  v1::Signal silenced = MakeSignal("sig-s", v1::SIGNAL_STATE_FIRING, 1);
  silenced.set_silenced_until_ms(clock_.NowMillis() + 60'000);
  bridge_->OnCommitted({Event(reward), Event(silenced)});
  EXPECT_EQ(bridge_->tracked(), 0u);
  ASSERT_TRUE(bridge_->Flush().ok());
  EXPECT_THAT(am_.bodies(), SizeIs(0));
  // The silence lifts: the alerter publishes UNSILENCED and the alert fires.
  silenced.set_silenced_until_ms(0);
  silenced.set_revision(2);
  bridge_->OnCommitted({Event(silenced)});
  ASSERT_TRUE(bridge_->Flush().ok());
  ASSERT_THAT(am_.bodies(), SizeIs(1));
  EXPECT_EQ(am_.bodies()[0][0]["labels"]["signal_id"], "sig-s");
}

TEST_F(AlertmanagerBridgeTest, FailedPostIsCountedAndRetried) {
  am_.set_fail(true);
  bridge_->OnCommitted({Event(MakeSignal("sig-1", v1::SIGNAL_STATE_FIRING, 1))});
  absl::Status s = bridge_->Flush();
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(s.message(), HasSubstr("/api/v2/alerts answered 500"));
  EXPECT_THAT(Metrics(),
              HasSubstr("cybersyn_alerter_alertmanager_posts_total{result=\"failed\"} 1"));
  am_.set_fail(false);
  ASSERT_TRUE(bridge_->Flush().ok());
  ASSERT_THAT(am_.bodies(), SizeIs(1));
  EXPECT_EQ(am_.bodies()[0][0]["labels"]["signal_id"], "sig-1");
}

TEST_F(AlertmanagerBridgeTest, UnreachableAlertmanagerNamesTheAddress) {
  AlertPoster post = HttpAlertPoster("http://127.0.0.1:1/", absl::Seconds(1));
  absl::Status s = post("[]");
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(s.message(), HasSubstr("http://127.0.0.1:1/api/v2/alerts unreachable"));
}

TEST_F(AlertmanagerBridgeTest, UrlPathIsARoutePrefix) {
  AlertPoster post = HttpAlertPoster(am_.url() + "/prefix/", absl::Seconds(2));
  ASSERT_TRUE(post(R"([{"labels":{"alertname":"x"}}])").ok());
  ASSERT_THAT(am_.bodies(), SizeIs(1));
  EXPECT_EQ(am_.bodies()[0][0]["labels"]["alertname"], "x");
  EXPECT_EQ(HttpAlertPoster(am_.url() + "/elsewhere", absl::Seconds(2))("[]").code(),
            absl::StatusCode::kUnavailable);  // 404 from the wrong path
}

TEST_F(AlertmanagerBridgeTest, RestoredSignalsArePostedAndRevokedOnesForgotten) {
  bridge_->OnRestored({MakeSignal("sig-1", v1::SIGNAL_STATE_ACKNOWLEDGED, 3),
                       MakeSignal("sig-2", v1::SIGNAL_STATE_FIRING, 1)});
  EXPECT_EQ(bridge_->tracked(), 2u);
  bridge_->OnRevoked({"sig-2"});
  ASSERT_TRUE(bridge_->Flush().ok());
  ASSERT_THAT(am_.bodies(), SizeIs(1));
  ASSERT_THAT(am_.bodies()[0], SizeIs(1));
  EXPECT_EQ(am_.bodies()[0][0]["labels"]["signal_id"], "sig-1");
  EXPECT_EQ(am_.bodies()[0][0]["annotations"]["state"], "acknowledged");
}

TEST_F(AlertmanagerBridgeTest, BackgroundThreadPostsWithoutAnExplicitFlush) {
  bridge_->Start();
  bridge_->OnCommitted({Event(MakeSignal("sig-1", v1::SIGNAL_STATE_FIRING, 1))});
  for (int i = 0; i < 100 && am_.bodies().empty(); ++i) absl::SleepFor(absl::Milliseconds(20));
  bridge_->Stop();
  ASSERT_THAT(am_.bodies(), SizeIs(1));
}

TEST(AlertmanagerConfigTest, SectionIsParsedAndUrlChecked) {
  const std::string base = std::string(MinimalExampleConfig());
  auto c = LoadConfigString(base + R"(
alerter:
  alertmanager: {url: "http://am:9093", resend_interval: 30s, timeout: 2s}
)",
                            "t.yaml");
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_TRUE(c->alerter.alertmanager.has_value());
  EXPECT_EQ(c->alerter.alertmanager->url, "http://am:9093");
  EXPECT_EQ(c->alerter.alertmanager->resend_interval, absl::Seconds(30));
  EXPECT_EQ(c->alerter.alertmanager->timeout, absl::Seconds(2));
  auto bad = LoadConfigString(base + "alerter:\n  alertmanager: {url: \"am:9093\"}\n", "t.yaml");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(),
              HasSubstr("alerter.alertmanager.url: expected an http:// or https:// URL"));
  auto none = LoadConfigString(base, "t.yaml");
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->alerter.alertmanager.has_value());
}

}  // namespace
}  // namespace cybersyn::alerter
