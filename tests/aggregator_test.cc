// The aggregator against the real Kafka broker, in process: correctness at every level of the
// hierarchy against an independent computation, late and duplicate records, poison input.
#include "aggregator/aggregator.h"

#include <filesystem>
#include <memory>
#include <set>

#include "aggregator/internal/test_config.h"
#include "common/kafka_admin.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/aggregator_testing.h"
#include "tests/testing/real_kafka.h"

namespace cybersyn::aggregator {
namespace {

using testing::AggKey;

constexpr int kPartitions = 4;

class AggregatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto k = cybersyn::testing::GetRealKafka();
    ASSERT_TRUE(k.ok()) << k.status();
    client_ = {k->bootstrap, {}};
    config_ = testing::TestConfig();
    config_->kafka.topic_prefix = cybersyn::testing::UniqueName("agg");
    config_->kafka.partitions = kPartitions;
    config_->kafka.bootstrap = k->bootstrap;
    model_ = std::make_unique<Model>(config_);
    names_ = std::make_unique<TopicNames>(config_->kafka.topic_prefix);
    state_dir_ =
        std::filesystem::temp_directory_path() / cybersyn::testing::UniqueName("agg-state");
    // Records and dead-letter accept 16 MB messages so the poison test can send 10 MB.
    const std::map<std::string, std::string> big = {{"max.message.bytes", "16777216"}};
    ASSERT_TRUE(EnsureTopics(client_, {{names_->records, kPartitions, 1, big},
                                       {names_->deadletter, kPartitions, 1, big}})
                    .ok());
    // Event times: a 10-minute boundary three hours ago.
    t0_ = WindowStart(absl::ToUnixMillis(absl::Now()) - 3 * 3'600'000, 600'000);
  }
  void TearDown() override {
    if (agg_) {
      EXPECT_TRUE(agg_->Stop().ok());
    }
    std::filesystem::remove_all(state_dir_);
  }

  void StartAggregator() {
    AggregatorOptions o;
    o.config = config_;
    o.client = client_;
    o.instance_id = "in-process";
    o.state_dir = state_dir_.string();
    o.commit_hook_for_test = commit_hook_;
    if (max_batch_messages_ > 0) o.max_batch_messages = max_batch_messages_;
    auto a = Aggregator::Create(o);
    ASSERT_TRUE(a.ok()) << a.status();
    agg_ = std::move(*a);
    ASSERT_TRUE(agg_->Start().ok());
  }

  // Reads aggregates until every expected key is there with its full count.
  std::map<AggKey, v1::WindowAggregate> ReadUntil(const std::map<AggKey, Stats>& expected) {
    return testing::ReadAggregates(
        client_, names_->aggregates, kPartitions,
        [&](const std::map<AggKey, v1::WindowAggregate>& got) {
          for (const auto& [k, s] : expected) {
            auto it = got.find(k);
            if (it == got.end() || it->second.count() != s.count) return false;
          }
          return true;
        },
        absl::Seconds(120));
  }

  void ExpectMatches(const std::map<AggKey, Stats>& expected,
                     const std::map<AggKey, v1::WindowAggregate>& got) {
    int levels_seen[4] = {0, 0, 0, 0};
    for (const auto& [k, s] : expected) {
      auto it = got.find(k);
      ASSERT_NE(it, got.end()) << std::get<0>(k) << " " << std::get<1>(k) << " " << std::get<2>(k)
                               << " " << std::get<3>(k);
      const v1::WindowAggregate& a = it->second;
      SCOPED_TRACE(a.ShortDebugString());
      EXPECT_EQ(a.count(), s.count);
      EXPECT_DOUBLE_EQ(a.min(), s.min);
      EXPECT_DOUBLE_EQ(a.max(), s.max);
      EXPECT_NEAR(a.sum(), s.sum, 1e-9 * std::max(1.0, std::abs(s.sum)));
      EXPECT_NEAR(a.mean(), s.mean, 1e-9 * std::max(1.0, std::abs(s.mean)));
      EXPECT_NEAR(a.variance(), s.Variance(), 1e-7 * std::max(1.0, s.Variance()));
      EXPECT_EQ(a.last_event_time_ms(), s.last_event_time_ms);
      const int node = model_->NodeIndex(std::get<0>(k));
      // "Last" among equal event times is the largest value (Stats::Add), so it is defined by
      // the records alone and checked at every level, also where children tie.
      EXPECT_DOUBLE_EQ(a.last_value(), s.last_value);
      const IndicatorConfig& ind = model_->indicator(model_->IndicatorIndex(std::get<1>(k)));
      if (ind.rollup == Rollup::kLast) {
        EXPECT_DOUBLE_EQ(a.value(), a.last_value());
      } else {
        EXPECT_NEAR(a.value(), RollupValue(ind.rollup, s),
                    1e-9 * std::max(1.0, std::abs(RollupValue(ind.rollup, s))));
      }
      EXPECT_EQ(a.level(), static_cast<uint32_t>(model_->node(node).depth));
      if (model_->node(node).children > 0) {
        EXPECT_EQ(a.children_reported(), a.children_expected());
      }
      ++levels_seen[model_->node(node).depth];
    }
    for (int d = 0; d < 4; ++d) EXPECT_GT(levels_seen[d], 0) << "level " << d;
  }

  KafkaClientOptions client_;
  std::shared_ptr<Config> config_;
  std::unique_ptr<Model> model_;
  std::unique_ptr<TopicNames> names_;
  std::filesystem::path state_dir_;
  int64_t t0_ = 0;
  std::unique_ptr<Aggregator> agg_;
  std::function<absl::Status(uint64_t)> commit_hook_;
  size_t max_batch_messages_ = 0;
};

const std::vector<std::string> kAllIndicators = {"output", "capacity", "potential", "temp",
                                                 "peak",   "low",      "level",     "note"};

TEST_F(AggregatorTest, CorrectAtEveryLevelOfTheHierarchy) {
  // 8 units x 8 indicators x 1200 s = 76,800 records over 20 minutes of event time.
  testing::Input in = testing::MakeInput(*model_, kAllIndicators, t0_, 1000, 1200, 500, "gw-1");
  const auto expected = testing::ExpectedStats(*model_, in);
  ASSERT_TRUE(testing::ProduceInput(client_, names_->records, in).ok());
  const absl::Time start = absl::Now();
  StartAggregator();
  const auto got = ReadUntil(expected);
  std::cout << "aggregated " << in.records << " records into " << got.size() << " aggregates in "
            << absl::ToDoubleSeconds(absl::Now() - start) << " s" << std::endl;
  ExpectMatches(expected, got);
  // Beer's indices at every level, from the role indicators' sums.
  for (const char* node : {"cl/tex/yarur/spin", "cl/tex/yarur", "cl/tex", "cl"}) {
    const AggKey a{node, "output", 60'000, t0_}, c{node, "capacity", 60'000, t0_},
        p{node, "potential", 60'000, t0_};
    auto prod = got.find({node, "productivity", 60'000, t0_});
    auto perf = got.find({node, "performance", 60'000, t0_});
    auto lat = got.find({node, "latency", 60'000, t0_});
    ASSERT_NE(prod, got.end()) << node;
    ASSERT_NE(perf, got.end()) << node;
    ASSERT_NE(lat, got.end()) << node;
    EXPECT_TRUE(prod->second.derived());
    EXPECT_NEAR(prod->second.value(), expected.at(a).sum / expected.at(c).sum, 1e-9);
    EXPECT_NEAR(lat->second.value(), expected.at(c).sum / expected.at(p).sum, 1e-9);
    EXPECT_NEAR(perf->second.value(), expected.at(a).sum / expected.at(p).sum, 1e-9);
  }
  // "note" does not roll up: only unit-level series.
  EXPECT_EQ(got.count({"cl/tex/yarur", "note", 60'000, t0_}), 0u);
  const AggregatorCounters c = agg_->counters();
  EXPECT_EQ(c.records, in.records);
  EXPECT_EQ(c.applied, in.records);
  EXPECT_EQ(c.deadlettered, 0u);
}

TEST_F(AggregatorTest, FailedTransactionsAreAbortedRewoundAndRetriedInPlace) {
  // 8 units x 2 indicators x 900 s, in batches of 100 records: many small transactions.
  testing::Input in = testing::MakeInput(*model_, {"output", "temp"}, t0_, 1000, 900, 100, "gw-1");
  const auto expected = testing::ExpectedStats(*model_, in);
  ASSERT_TRUE(testing::ProduceInput(client_, names_->records, in).ok());
  // The 2nd, the 3rd (twice in a row) and the 6th commit fail after their outputs and
  // changelog entries were produced; small transactions make sure there are that many.
  max_batch_messages_ = 10;
  std::map<uint64_t, int> fail_at = {{1, 1}, {2, 2}, {5, 1}};
  std::atomic<int> failures{0};
  commit_hook_ = [&](uint64_t committed) -> absl::Status {
    auto it = fail_at.find(committed);
    if (it == fail_at.end() || it->second == 0) return absl::OkStatus();
    --it->second;
    ++failures;
    return absl::UnavailableError("injected transaction failure");
  };
  StartAggregator();
  const auto got = ReadUntil(expected);
  ExpectMatches(expected, got);
  const AggregatorCounters c = agg_->counters();
  EXPECT_EQ(failures.load(), 4);
  EXPECT_EQ(c.rewinds, 4u);
  EXPECT_GE(c.records, in.records);  // rewound batches are offered again
  EXPECT_EQ(c.deadlettered, 0u);
  EXPECT_TRUE(agg_->Stop().ok()) << "Run must not have ended on the failures";
  agg_.reset();
}

// Regression (chaos soak): after a transaction failed, the in-memory state holds changes the
// aborted transaction carried. When Run then ends (retries used up), closing the consumer revokes
// the partitions, and committing there would commit the input offsets WITHOUT that state: the
// next incarnation resumed after records whose state it never had (windows short of records).
TEST_F(AggregatorTest, RunEndingOnFailedTransactionsCommitsNothingOnTheWayOut) {
  testing::Input in = testing::MakeInput(*model_, {"output", "temp"}, t0_, 1000, 900, 100, "gw-1");
  const auto expected = testing::ExpectedStats(*model_, in);
  ASSERT_TRUE(testing::ProduceInput(client_, names_->records, in).ok());
  max_batch_messages_ = 10;
  // The 4th commit fails four times in a row: three rewinds, then Run gives up. Any later commit
  // attempt (the revocation on the way out) would succeed.
  std::atomic<int> failures{0}, commits_after_giving_up{0};
  commit_hook_ = [&](uint64_t committed) -> absl::Status {
    if (committed != 3) return absl::OkStatus();
    if (failures.load() >= 4) {
      ++commits_after_giving_up;
      return absl::OkStatus();
    }
    ++failures;
    return absl::UnavailableError("injected transaction failure");
  };
  StartAggregator();
  const absl::Time deadline = absl::Now() + absl::Seconds(120);
  while (failures.load() < 4 && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(20));
  ASSERT_EQ(failures.load(), 4);
  EXPECT_FALSE(agg_->Stop().ok()) << "Run must end after three failed retries";
  EXPECT_EQ(agg_->counters().rewinds, 3u);
  EXPECT_EQ(commits_after_giving_up.load(), 0) << "committed offsets of an aborted state";
  agg_.reset();
  // The next incarnation (what the CLI starts) resumes from the last good commit.
  commit_hook_ = nullptr;
  StartAggregator();
  const auto got = ReadUntil(expected);
  ExpectMatches(expected, got);
}

TEST_F(AggregatorTest, DuplicatesDoNotCountAndLateRecordsAreDeadLettered) {
  testing::Input in = testing::MakeInput(*model_, {"output", "temp"}, t0_, 1000, 600, 200, "gw-1");
  const auto expected = testing::ExpectedStats(*model_, in);
  ASSERT_TRUE(testing::ProduceInput(client_, names_->records, in).ok());
  // A gateway replaying its buffer: the same batches again.
  ASSERT_TRUE(testing::ProduceInput(client_, names_->records, in).ok());
  // Then records far behind every watermark, with fresh sequence numbers.
  testing::Input late;
  for (const char* ent : {"cl/tex/yarur", "cl/min/chuqui"}) {
    v1::RecordBatch b;
    b.set_enterprise(ent);
    b.set_gateway_id("gw-1");
    v1::Record* r = b.add_records();
    r->set_node(absl::StrCat(ent, "/", std::string(ent) == "cl/tex/yarur" ? "spin" : "ext"));
    r->set_indicator("output");
    r->set_value(1e6);
    r->set_event_time_ms(t0_ + 1000);
    r->set_sequence(1'000'000 + late.records);
    ++late.records;
    late.batches.push_back(b);
  }
  ASSERT_TRUE(testing::ProduceInput(client_, names_->records, late).ok());
  StartAggregator();
  ExpectMatches(expected, ReadUntil(expected));

  // Both late records are in the dead-letter topic with reason "late".
  auto c = KafkaConsumer::Create({client_});
  ASSERT_TRUE(c.ok());
  std::vector<TopicPartitionOffset> tps;
  for (int p = 0; p < kPartitions; ++p) tps.push_back({names_->deadletter, p, -2});
  ASSERT_TRUE((*c)->Assign(tps).ok());
  std::vector<std::string> reasons;
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (reasons.size() < 2 && absl::Now() < deadline) {
    auto msgs = (*c)->ConsumeBatch(100, absl::Milliseconds(500));
    ASSERT_TRUE(msgs.ok());
    for (const auto& m : *msgs) reasons.push_back(m.header("reason"));
  }
  EXPECT_THAT(reasons, ::testing::ElementsAre("late", "late"));
  const AggregatorCounters counters = agg_->counters();
  EXPECT_EQ(counters.duplicates, in.records);
  EXPECT_EQ(counters.late, 2u);
}

TEST_F(AggregatorTest, PoisonInputIsDeadLetteredWhileGoodRecordsFlow) {
  testing::Input good =
      testing::MakeInput(*model_, {"output", "peak"}, t0_, 1000, 600, 100, "gw-good");
  const auto expected = testing::ExpectedStats(*model_, good);
  ProducerOptions po;
  po.client = client_;
  po.overrides = {{"message.max.bytes", "16777216"}};
  auto p = KafkaProducer::Create(po);
  ASSERT_TRUE(p.ok());
  std::string value;
  std::mt19937_64 rng(3);
  auto record_batch = [&](const std::string& node, double v, int64_t t, uint64_t seq) {
    v1::RecordBatch b;
    b.set_enterprise("cl/tex/yarur");
    b.set_gateway_id("gw-bad");
    v1::Record* r = b.add_records();
    r->set_node(node);
    r->set_indicator("output");
    r->set_value(v);
    r->set_event_time_ms(t);
    r->set_sequence(seq);
    return b.SerializeAsString();
  };
  std::multiset<std::string> want;
  size_t next_good = 0;
  auto produce_good = [&](size_t n) {
    for (size_t i = 0; i < n && next_good < good.batches.size(); ++i, ++next_good) {
      good.batches[next_good].SerializeToString(&value);
      ASSERT_TRUE(
          (*p)->Produce(names_->records, -1, good.batches[next_good].enterprise(), value).ok());
    }
  };
  // Poison interleaved with good batches.
  produce_good(20);
  std::string random(512, '\0');
  for (char& ch : random) ch = static_cast<char>(rng());
  random[0] = '\xff';  // an invalid tag byte: certain not to parse
  ASSERT_TRUE((*p)->Produce(names_->records, -1, "cl/tex/yarur", random).ok());
  want.insert("malformed");
  produce_good(20);
  std::string full = record_batch("cl/tex/yarur/spin", 1, t0_, 1);
  ASSERT_TRUE(
      (*p)->Produce(names_->records, -1, "cl/tex/yarur", full.substr(0, full.size() - 7)).ok());
  want.insert("malformed");
  ASSERT_TRUE((*p)->Produce(names_->records, -1, "cl/tex/yarur",
                            record_batch("cl/tex/yarur/spin",
                                         std::numeric_limits<double>::quiet_NaN(), t0_, 2))
                  .ok());
  want.insert("not_finite");
  produce_good(20);
  ASSERT_TRUE((*p)->Produce(names_->records, -1, "cl/tex/yarur",
                            record_batch("cl/tex/yarur/nowhere", 1, t0_, 3))
                  .ok());
  want.insert("unknown_node");
  ASSERT_TRUE((*p)->Produce(names_->records, -1, "cl/tex/yarur",
                            record_batch("cl/tex/yarur/spin", 1, 4'102'444'800'000, 4))
                  .ok());
  want.insert("bad_timestamp");  // year 2100
  ASSERT_TRUE((*p)->Produce(names_->records, -1, "cl/tex/yarur",
                            record_batch("cl/tex/yarur/spin", 1, 1000, 5))
                  .ok());
  want.insert("bad_timestamp");  // 1970
  ASSERT_TRUE((*p)->Produce(names_->records, -1, "cl/tex/yarur", std::string(10 << 20, 'x')).ok());
  want.insert("too_large");
  produce_good(good.batches.size());
  ASSERT_TRUE((*p)->Flush(absl::Seconds(60)).ok());

  StartAggregator();
  ExpectMatches(expected, ReadUntil(expected));

  auto c = KafkaConsumer::Create({client_});
  ASSERT_TRUE(c.ok());
  std::vector<TopicPartitionOffset> tps;
  for (int i = 0; i < kPartitions; ++i) tps.push_back({names_->deadletter, i, -2});
  ASSERT_TRUE((*c)->Assign(tps).ok());
  std::multiset<std::string> reasons;
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (reasons.size() < want.size() && absl::Now() < deadline) {
    auto msgs = (*c)->ConsumeBatch(100, absl::Milliseconds(500));
    ASSERT_TRUE(msgs.ok());
    for (const auto& m : *msgs) {
      reasons.insert(m.header("reason"));
      EXPECT_EQ(m.header("source_topic"), names_->records);
      EXPECT_FALSE(m.header("source_partition").empty());
      EXPECT_FALSE(m.header("source_offset").empty());
      if (m.header("reason") == "too_large") {
        EXPECT_EQ(m.header("size"), "10485760");
      }
    }
  }
  EXPECT_EQ(reasons, want);
}

}  // namespace
}  // namespace cybersyn::aggregator
