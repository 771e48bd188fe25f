// A corrupted aggregator state store is detected at start and rebuilt from the changelog: the
// aggregator (real RocksDB, real broker) processes part of the input and stops; its store's
// files (SST blocks, manifest, write-ahead log) are scribbled over; more input arrives together
// with replays of already-counted batches; the restarted aggregator must report the damage,
// rebuild its state from the changelog (including the dedup state) and end with totals exactly
// equal to an independent computation from the input.
#include <filesystem>
#include <fstream>
#include <iostream>
#include <set>

#include "aggregator/aggregator.h"
#include "common/config.h"
#include "common/kafka_admin.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/aggregator_testing.h"
#include "tests/testing/real_kafka.h"

namespace cybersyn::aggregator {
namespace {

namespace fs = std::filesystem;
using testing::AggKey;

constexpr int kPartitions = 4;

// No idle advance within the test (1h): windows close by the records' watermark only, so
// whether a record is late never depends on how long the test paused between the phases.
std::string ConfigYaml(const std::string& prefix, const std::string& bootstrap) {
  return testing::FourLevelConfigYaml(prefix, bootstrap, kPartitions, R"(  windows: [1m, 10m]
  allowed_lateness: 3m
  grace: 5s
  idle_advance: 1h
  memory_limit: 16MiB
)");
}

// Overwrites a run of bytes in the middle of `p` (and at its start for small files).
void Scribble(const fs::path& p) {
  const auto size = fs::file_size(p);
  std::fstream f(p, std::ios::in | std::ios::out | std::ios::binary);
  const size_t n = std::min<size_t>(size, 256);
  f.seekp(static_cast<std::streamoff>(size > 1024 ? size / 2 : 0));
  f << std::string(n, '\x5a');
}

TEST(StoreCorruptionTest, ScribbledStoreIsRebuiltFromTheChangelogWithExactTotals) {
  auto k = cybersyn::testing::GetRealKafka();
  ASSERT_TRUE(k.ok()) << k.status();
  const KafkaClientOptions client{k->bootstrap, {}};
  const std::string prefix = cybersyn::testing::UniqueName("corrupt");
  const fs::path dir = fs::temp_directory_path() / prefix;
  fs::create_directories(dir);
  auto cfg = LoadConfigString(ConfigYaml(prefix, k->bootstrap), "corrupt.yaml");
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  auto config = std::make_shared<Config>(std::move(*cfg));
  const TopicNames names(prefix);
  ASSERT_TRUE(EnsureTopics(client, {{names.records, kPartitions, 1, {}}}).ok());
  Model model(config);

  // 8 units x 4 indicators x 2,400 s = 76,800 records in batches of 400, historical.
  const int64_t t0 = WindowStart(absl::ToUnixMillis(absl::Now()) - 6 * 3'600'000, 600'000);
  const testing::Input in = testing::MakeInput(model, {"output", "capacity", "potential", "temp"},
                                               t0, 1000, 2'400, 400, "gw");
  const auto expected = testing::ExpectedStats(model, in);
  const size_t split = in.batches.size() * 6 / 10;
  testing::Input first, second;
  for (size_t i = 0; i < in.batches.size(); ++i) {
    (i < split ? first : second).batches.push_back(in.batches[i]);
    (i < split ? first : second).records += in.batches[i].records_size();
  }
  // Replays of already-counted batches (same gateway and sequence numbers): the rebuilt dedup
  // state must drop them.
  size_t replayed = 0;
  for (size_t i = 0; i < 20; ++i) {
    second.batches.push_back(in.batches[i]);
    replayed += in.batches[i].records_size();
  }
  // One record per enterprise two hours after the input closes every input window (watermark).
  uint64_t seq = 1'000'000;
  std::set<std::string> done;
  for (const Hierarchy::Node* leaf : model.config().hierarchy->leaves()) {
    if (!done.insert(leaf->enterprise->path).second) continue;
    v1::RecordBatch b;
    b.set_enterprise(leaf->enterprise->path);
    b.set_gateway_id("gw");
    v1::Record* r = b.add_records();
    r->set_node(leaf->path);
    r->set_indicator("temp");
    r->set_value(1);
    r->set_event_time_ms(t0 + 2'400'000 + 2 * 3'600'000);
    r->set_sequence(++seq);
    second.batches.push_back(b);
  }

  AggregatorOptions o;
  o.config = config;
  o.client = client;
  o.instance_id = "corrupt";
  o.state_dir = (dir / "state").string();
  ASSERT_TRUE(testing::ProduceInput(client, names.records, first).ok());
  {
    auto agg = Aggregator::Create(o);
    ASSERT_TRUE(agg.ok()) << agg.status();
    ASSERT_TRUE((*agg)->Start().ok());
    const absl::Time limit = absl::Now() + absl::Seconds(120);
    while ((*agg)->counters().records < first.records && absl::Now() < limit) {
      absl::SleepFor(absl::Milliseconds(100));
    }
    ASSERT_EQ((*agg)->counters().records, first.records);
    ASSERT_TRUE((*agg)->Stop().ok());
  }

  // Damage every file RocksDB keeps data or metadata in.
  int damaged = 0;
  std::string kinds;
  for (const auto& e : fs::directory_iterator(o.state_dir)) {
    const std::string name = e.path().filename().string();
    if (name.ends_with(".sst") || name.ends_with(".log") || name.starts_with("MANIFEST-")) {
      if (name == "LOG" || fs::file_size(e.path()) == 0) continue;
      Scribble(e.path());
      ++damaged;
      absl::StrAppend(&kinds, " ", name);
    }
  }
  std::cout << "scribbled over" << kinds << std::endl;
  ASSERT_GT(damaged, 0);
  ASSERT_TRUE(testing::ProduceInput(client, names.records, second).ok());

  auto agg = Aggregator::Create(o);
  ASSERT_TRUE(agg.ok()) << agg.status();  // detected and rebuilt, not a failed start
  ASSERT_TRUE((*agg)->Start().ok());
  const auto got = testing::ReadAggregates(
      client, names.aggregates, kPartitions,
      [&](const std::map<AggKey, v1::WindowAggregate>& got) {
        for (const auto& [key, s] : expected) {
          auto it = got.find(key);
          if (it == got.end() || it->second.count() != s.count) return false;
        }
        return true;
      },
      absl::Seconds(180), absl::Seconds(3));
  const AggregatorCounters c = (*agg)->counters();
  ASSERT_TRUE((*agg)->Stop().ok());
  std::cout << "restored " << c.restored_entries << " changelog entries; " << c.duplicates
            << " duplicates dropped; " << got.size() << " aggregates" << std::endl;
  EXPECT_GT(c.restored_entries, 0u);  // state came back from the changelog
  EXPECT_EQ(c.duplicates, replayed);  // the rebuilt dedup state knew the replayed batches
  int diffs = 0;
  for (const auto& [key, s] : expected) {
    auto it = got.find(key);
    const bool same = it != got.end() && it->second.count() == s.count &&
                      std::abs(it->second.sum() - s.sum) <= 1e-9 * std::max(1.0, std::abs(s.sum)) &&
                      it->second.min() == s.min && it->second.max() == s.max;
    if (!same && ++diffs <= 5) {
      ADD_FAILURE() << std::get<0>(key) << " " << std::get<1>(key) << " " << std::get<2>(key) << " "
                    << std::get<3>(key) << ": want count " << s.count << " sum " << s.sum
                    << ", got "
                    << (it == got.end() ? std::string("none") : it->second.ShortDebugString());
    }
  }
  EXPECT_EQ(diffs, 0) << "of " << expected.size();
  fs::remove_all(dir);
}

}  // namespace
}  // namespace cybersyn::aggregator
