// The aggregator's loop on the broker-free TopologyTestDriver: what it publishes at every level,
// dead letters, and exactly-once through failed commits, crashes (with and without the local
// store), revokes and an upgrade of the store. The real-broker versions are in tests/.
#include "aggregator/topology.h"

#include <map>
#include <memory>

#include "aggregator/internal/test_config.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "stream/task_store.h"
#include "stream/test_driver.h"
#include "tests/aggregator_testing.h"

namespace cybersyn::aggregator {
namespace {

using stream::TopologyTestDriver;
using testing::AggKey;
using ::testing::ElementsAre;
using ::testing::UnorderedElementsAreArray;

constexpr int64_t kStart = 1'700'000'000'000;

class AggregatorTopologyTest : public ::testing::Test {
 protected:
  AggregatorTopologyTest()
      : config_(testing::TestConfig()),
        model_(config_),
        names_("agg"),
        driver_([this](Clock* clock) {
          return AggregatorTopology({&model_, "agg", &metrics_, clock});
        }) {}

  void Pipe(const testing::Input& in) {
    for (const v1::RecordBatch& b : in.batches) {
      driver_.Pipe(names_.records, b.enterprise(), b.SerializeAsString());
    }
  }
  // Closes every window: once the input is processed and idle for idle_advance, the watermark
  // follows the clock.
  void CloseAll() {
    ASSERT_TRUE(driver_.Process().ok());
    ASSERT_TRUE(driver_.Advance(absl::Hours(2)).ok());
  }

  std::map<AggKey, v1::WindowAggregate> Aggregates() {
    std::map<AggKey, v1::WindowAggregate> out;
    for (const auto& r : driver_.ReadAll(names_.aggregates)) {
      v1::WindowAggregate a;
      EXPECT_TRUE(a.ParseFromString(r.value.value_or("")));
      out[testing::KeyOf(a)] = a;
    }
    return out;
  }
  std::vector<std::string> DeadLetterReasons() {
    std::vector<std::string> out;
    for (const auto& r : driver_.ReadAll(names_.deadletter)) {
      for (const auto& [k, v] : r.headers) {
        if (k == "reason") out.push_back(v);
      }
    }
    return out;
  }

  void ExpectMatches(const std::map<AggKey, Stats>& expected,
                     const std::map<AggKey, v1::WindowAggregate>& got) {
    int levels_seen[4] = {0, 0, 0, 0};
    for (const auto& [k, s] : expected) {
      auto it = got.find(k);
      ASSERT_NE(it, got.end()) << std::get<0>(k) << " " << std::get<1>(k) << " " << std::get<2>(k)
                               << " " << std::get<3>(k);
      const v1::WindowAggregate& a = it->second;
      EXPECT_EQ(a.count(), s.count) << a.ShortDebugString();
      EXPECT_NEAR(a.sum(), s.sum, 1e-9 * std::max(1.0, std::abs(s.sum)));
      EXPECT_DOUBLE_EQ(a.min(), s.min);
      EXPECT_DOUBLE_EQ(a.max(), s.max);
      EXPECT_DOUBLE_EQ(a.last_value(), s.last_value);
      const int node = model_.NodeIndex(std::get<0>(k));
      if (model_.node(node).children > 0) {
        EXPECT_EQ(a.children_reported(), a.children_expected()) << a.ShortDebugString();
      }
      ++levels_seen[model_.node(node).depth];
    }
    for (int d = 0; d < 4; ++d) EXPECT_GT(levels_seen[d], 0) << "level " << d;
  }

  // 8 units x 3 indicators x 900 s of event time, two hours before the driver's clock.
  testing::Input Input(int batch_records = 200, uint64_t seed = 1) {
    return testing::MakeInput(model_, {"output", "temp", "capacity"}, kStart - 2 * 3'600'000, 1000,
                              900, batch_records, "gw-1", seed);
  }

  std::shared_ptr<Config> config_;
  Model model_;
  TopicNames names_;
  prometheus::Registry registry_;
  AggregatorMetrics metrics_{registry_};
  TopologyTestDriver driver_;
};

TEST_F(AggregatorTopologyTest, PublishesEveryLevelExactlyFromRecords) {
  const testing::Input in = Input();
  const auto expected = testing::ExpectedStats(model_, in);
  ASSERT_TRUE(driver_.Start().ok());
  Pipe(in);
  ASSERT_TRUE(driver_.Process().ok());
  CloseAll();
  ExpectMatches(expected, Aggregates());
  EXPECT_EQ(driver_.counter("records"), in.records);
  EXPECT_EQ(driver_.counter("applied"), in.records);
  EXPECT_EQ(driver_.runtime()->stats().deadlettered, 0u);
  // Every roll-up went through the roll-up topic and stage 2's own state.
  EXPECT_FALSE(driver_.ReadAll(RollupTopic("agg")).empty());
  EXPECT_FALSE(driver_.ReadAll(RollupChangelog("agg")).empty());
}

TEST_F(AggregatorTopologyTest, DuplicatesDoNotCountAndLateOrBadRecordsAreDeadLettered) {
  const testing::Input in = Input();
  const auto expected = testing::ExpectedStats(model_, in);
  ASSERT_TRUE(driver_.Start().ok());
  Pipe(in);
  Pipe(in);  // a gateway replaying its buffer
  v1::RecordBatch late;
  late.set_enterprise("cl/tex/yarur");
  late.set_gateway_id("gw-1");
  v1::Record* r = late.add_records();
  r->set_node("cl/tex/yarur/spin");
  r->set_indicator("output");
  r->set_value(1e6);
  r->set_event_time_ms(kStart - 2 * 3'600'000);
  r->set_sequence(1'000'000);
  v1::RecordBatch unknown = late;
  unknown.mutable_records(0)->set_node("cl/tex/yarur/nowhere");
  unknown.mutable_records(0)->set_sequence(1'000'001);
  unknown.mutable_records(0)->set_event_time_ms(kStart - 3'600'000);
  ASSERT_TRUE(driver_.Process().ok());
  driver_.Pipe(names_.records, "cl/tex/yarur", late.SerializeAsString());
  driver_.Pipe(names_.records, "cl/tex/yarur", unknown.SerializeAsString());
  driver_.Pipe(names_.records, "cl/tex/yarur", "\xff not a batch");
  CloseAll();
  ExpectMatches(expected, Aggregates());
  EXPECT_THAT(DeadLetterReasons(), ElementsAre("late", "unknown_node", "malformed"));
  EXPECT_EQ(driver_.counter("duplicates"), in.records);
  EXPECT_EQ(driver_.counter("late"), 1u);
}

// A batch with one record that does not decode: that record is dead-lettered (with its index),
// the others count.
TEST_F(AggregatorTopologyTest, PartlyBadBatchDeadLettersOnlyItsBadRecord) {
  testing::Input in = Input();
  const auto expected = testing::ExpectedStats(model_, in);
  ASSERT_TRUE(driver_.Start().ok());
  for (size_t i = 0; i < in.batches.size(); ++i) {
    std::string wire = in.batches[i].SerializeAsString();
    // A fourth record (field 3) whose bytes are no Record.
    if (i == 5) wire += std::string("\x1a\x03\xff\xff\xff", 5);
    driver_.Pipe(names_.records, in.batches[i].enterprise(), wire);
  }
  CloseAll();
  ExpectMatches(expected, Aggregates());
  const auto dead = driver_.ReadAll(names_.deadletter);
  ASSERT_EQ(dead.size(), 1u);
  std::map<std::string, std::string> h(dead[0].headers.begin(), dead[0].headers.end());
  EXPECT_EQ(h["reason"], "malformed_record");
  EXPECT_EQ(h["record_index"], absl::StrCat(in.batches[5].records_size()));
  EXPECT_EQ(h["gateway_id"], "gw-1");
  EXPECT_EQ(driver_.counter("records"), in.records);
}

// Commits fail (after their outputs and changelog were produced); each is aborted, rewound and
// retried: the published aggregates are exactly those of a run without failures.
TEST_F(AggregatorTopologyTest, FailedCommitsAreRewoundToExactlyTheSameAggregates) {
  const testing::Input in = Input(/*batch_records=*/50);
  const auto expected = testing::ExpectedStats(model_, in);
  std::map<uint64_t, int> fail_at = {{1, 1}, {2, 2}, {4, 1}};
  int failures = 0;
  driver_.SetCommitHook([&](uint64_t n) -> absl::Status {
    auto it = fail_at.find(n);
    if (it == fail_at.end() || it->second == 0) return absl::OkStatus();
    --it->second;
    ++failures;
    return absl::UnavailableError("injected");
  });
  ASSERT_TRUE(driver_.Start().ok());
  // Small batches: many transactions.
  for (size_t i = 0; i < in.batches.size(); ++i) {
    driver_.Pipe(names_.records, in.batches[i].enterprise(), in.batches[i].SerializeAsString());
    if (i % 10 == 9) {
      ASSERT_TRUE(driver_.Process().ok());
    }
  }
  CloseAll();
  EXPECT_EQ(failures, 4);
  EXPECT_EQ(driver_.runtime()->stats().rewinds, 4u);
  ExpectMatches(expected, Aggregates());
  EXPECT_EQ(driver_.counter("records"), in.records) << "retried input counts once";
}

// kill -9 in the middle, with or without the local store: the result is the uninterrupted one.
TEST_F(AggregatorTopologyTest, CrashesWithAndWithoutTheStoreChangeNothing) {
  const testing::Input in = Input();
  ASSERT_TRUE(driver_.Start().ok());
  Pipe(in);
  ASSERT_TRUE(driver_.Process().ok());
  CloseAll();
  std::map<AggKey, std::string> reference;
  for (auto& [k, a] : Aggregates()) reference[k] = testing::Canonical(a);

  for (bool wipe : {false, true}) {
    SCOPED_TRACE(wipe ? "store lost" : "store kept");
    TopologyTestDriver d([this](Clock* clock) {
      return AggregatorTopology({&model_, "agg", &metrics_, clock});
    });
    ASSERT_TRUE(d.Start().ok());
    const size_t half = in.batches.size() / 2;
    for (size_t i = 0; i < in.batches.size(); ++i) {
      if (i == half) {
        ASSERT_TRUE(d.Process().ok());
        d.Crash(wipe);
        ASSERT_TRUE(d.Start().ok());
      }
      d.Pipe(names_.records, in.batches[i].enterprise(), in.batches[i].SerializeAsString());
    }
    ASSERT_TRUE(d.Process().ok());
    ASSERT_TRUE(d.Advance(absl::Hours(2)).ok());
    std::map<AggKey, std::string> got;
    for (const auto& r : d.ReadAll(names_.aggregates)) {
      v1::WindowAggregate a;
      ASSERT_TRUE(a.ParseFromString(r.value.value_or("")));
      got[testing::KeyOf(a)] = testing::Canonical(a);
    }
    EXPECT_EQ(got, reference);
    if (wipe) {
      EXPECT_GT(d.runtime()->stats().restored_entries, 0u);
    }
  }
}

TEST_F(AggregatorTopologyTest, RevokedAndReassignedPartitionsContinueExactly) {
  const testing::Input in = Input();
  const auto expected = testing::ExpectedStats(model_, in);
  ASSERT_TRUE(driver_.Start().ok());
  const size_t third = in.batches.size() / 3;
  for (size_t i = 0; i < in.batches.size(); ++i) {
    if (i == third) {
      ASSERT_TRUE(driver_.Process().ok());
      driver_.KeepPartitions({0, 1}, /*mid_batch=*/true);
    }
    if (i == 2 * third) {
      ASSERT_TRUE(driver_.Process().ok());
      driver_.AssignAll();
    }
    driver_.Pipe(names_.records, in.batches[i].enterprise(), in.batches[i].SerializeAsString());
  }
  ASSERT_TRUE(driver_.Process().ok());
  CloseAll();
  ExpectMatches(expected, Aggregates());
  EXPECT_EQ(driver_.counter("duplicates"), 0u);
}

// The store layout did not change with the runtime: an aggregator's store from before it
// (checkpoints without a time) is trusted, not replayed.
TEST_F(AggregatorTopologyTest, StoreOfTheVersionBeforeTheRuntimeIsKept) {
  const testing::Input in = Input();
  ASSERT_TRUE(driver_.Start().ok());
  Pipe(in);
  ASSERT_TRUE(driver_.Process().ok());
  driver_.Crash();
  for (int p = 0; p < 4; ++p) {
    for (const char* sub : {"rec", "rol"}) {
      const std::string key = stream::CheckpointKey(stream::TaskPrefix(sub, p));
      auto c = driver_.store().Get(key);
      if (!c.ok()) continue;
      auto ckpt = stream::DecodeCheckpoint(*c);
      ASSERT_TRUE(ckpt.has_value());
      ASSERT_TRUE(driver_.store().Put(key, absl::StrCat(ckpt->next_offset)).ok());
    }
  }
  driver_.clock().Advance(absl::Hours(24));  // (an unknown age is not "stale")
  ASSERT_TRUE(driver_.Start().ok());
  ASSERT_TRUE(driver_.Process().ok());
  EXPECT_EQ(driver_.runtime()->stats().restored_entries, 0u);
  CloseAll();
  ExpectMatches(testing::ExpectedStats(model_, in), Aggregates());
}

}  // namespace
}  // namespace cybersyn::aggregator
