// A full disk (a small tmpfs mounted for the test; needs root, skipped with the reason otherwise):
// - the RocksDB state store refuses the write that does not fit with RESOURCE_EXHAUSTED naming
//   the device problem and the store, goes on refusing cleanly, and after space is freed reopens
//   with every acknowledged write intact (checksums verified at open);
// - the real `cybersyn gateway` whose brokers are away fills its disk buffer, stops with a clear
//   error (not a crash), and once space is freed and the broker is back, a restart delivers
//   every record of its input exactly once (real broker of the CTest fixture).
#include <sys/mount.h>
#include <sys/wait.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/kafka_admin.h"
#include "common/kafka_consumer.h"
#include "common/rocksdb_store.h"
#include "cybersyn/v1/record.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "prometheus/registry.h"
#include "prometheus/text_serializer.h"
#include "tests/testing/real_kafka.h"

namespace cybersyn {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

class FullDiskTest : public ::testing::Test {
 protected:
  void SetUp() override {
    mnt_ = fs::temp_directory_path() /
           ("cybersyn-fulldisk-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(mnt_);
    if (::mount("tmpfs", mnt_.c_str(), "tmpfs", 0, "size=24m") != 0) {
      const std::string why = std::strerror(errno);
      fs::remove_all(mnt_);
      GTEST_SKIP() << "cannot mount a 24 MiB tmpfs at " << mnt_ << " (" << why
                   << "); the full-disk test needs root (CAP_SYS_ADMIN)";
    }
    mounted_ = true;
  }
  void TearDown() override {
    if (mounted_) ::umount2(mnt_.c_str(), MNT_DETACH);
    fs::remove_all(mnt_);
  }
  // Grows the tmpfs (space freed by an operator).
  void Grow() {
    ASSERT_EQ(::mount("tmpfs", mnt_.c_str(), "tmpfs", MS_REMOUNT, "size=64m"), 0)
        << std::strerror(errno);
  }

  fs::path mnt_;
  bool mounted_ = false;
};

std::string Incompressible(std::mt19937_64& rng, size_t n) {
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng());
  return s;
}

TEST_F(FullDiskTest, StateStoreRefusesClearlyAndKeepsWhatItAcknowledged) {
  const std::string path = (mnt_ / "state").string();
  RocksDbOptions o;
  o.path = path;
  o.memory_limit_bytes = 4 << 20;  // 1 MiB memtables: flushes to SST happen on the tmpfs too
  o.sync_writes = true;            // acknowledged = in the WAL on the device
  auto registry = std::make_shared<prometheus::Registry>();
  o.registry = registry.get();
  o.metrics_store = "test_state";
  std::mt19937_64 rng(1);
  std::vector<std::string> acknowledged;
  absl::Status failure;
  {
    auto store = RocksDbStore::Open(o);
    ASSERT_TRUE(store.ok()) << store.status();
    for (int i = 0; i < 10'000; ++i) {
      WriteBatch b;
      const std::string key = "k" + std::to_string(i);
      b.Put(key, Incompressible(rng, 16 << 10));
      absl::Status s = (*store)->Write(b);
      if (!s.ok()) {
        failure = s;
        break;
      }
      acknowledged.push_back(key);
    }
    ASSERT_FALSE(failure.ok()) << "10,000 x 16 KiB fit on a 24 MiB tmpfs?";
    EXPECT_EQ(failure.code(), absl::StatusCode::kResourceExhausted) << failure;
    EXPECT_THAT(std::string(failure.message()), HasSubstr("No space left on device"));
    EXPECT_THAT(std::string(failure.message()), HasSubstr(path));
    // A further write that cannot fit fails with a status too, never a crash or a silent drop.
    // (The check is by size: a small write may still fit, and a flush may free a little.)
    WriteBatch b;
    b.Put("after", Incompressible(rng, 8 << 20));
    absl::Status again = (*store)->Write(b);
    EXPECT_FALSE(again.ok());
    // Both refusals are counted for dashboards and alerts.
    const std::string metrics = prometheus::TextSerializer().Serialize(registry->Collect());
    EXPECT_THAT(metrics, HasSubstr("cybersyn_store_write_refusals_total{reason=\"no_space\","
                                   "store=\"test_state\"} 2"));
    EXPECT_EQ((*store)->no_space_refusals(), 2u);
    std::cout << "acknowledged " << acknowledged.size() << " writes of 16 KiB; then: " << failure
              << "; next write: " << again << std::endl;
  }
  ASSERT_GT(acknowledged.size(), 10u);
  Grow();
  auto store = RocksDbStore::Open(o);  // verifies every block's checksum
  ASSERT_TRUE(store.ok()) << store.status();
  std::mt19937_64 replay(1);
  for (const std::string& key : acknowledged) {
    auto v = (*store)->Get(key);
    ASSERT_TRUE(v.ok()) << key << ": " << v.status();
    ASSERT_EQ(*v, Incompressible(replay, 16 << 10)) << key;
  }
  // And it takes writes again.
  WriteBatch b;
  b.Put("after", "x");
  EXPECT_TRUE((*store)->Write(b).ok());
}

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

int RunShell(const std::string& cmd) {
  const int rc = std::system(cmd.c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : 128 + WTERMSIG(rc);
}

TEST_F(FullDiskTest, GatewayBufferFullStopsClearlyAndDeliversEverythingAfterwards) {
  auto k = testing::GetRealKafka();
  ASSERT_TRUE(k.ok()) << k.status();
  const std::string prefix = testing::UniqueName("fulldisk");
  const fs::path work = fs::temp_directory_path() / prefix;
  fs::create_directories(work);
  // The config names a broker that is not there: everything goes to the disk buffer.
  const std::string config = (work / "gw.yaml").string();
  std::ofstream(config) << "kafka: {bootstrap: \"127.0.0.1:1\", topic_prefix: " << prefix
                        << ", partitions: 2}\n"
                        << R"(levels:
  - {name: nation, ack_within: 60m, resolve_within: 5h}
  - {name: enterprise, ack_within: 20m, resolve_within: 3h}
  - {name: unit, ack_within: 10m, resolve_within: 2h}
hierarchy:
  cl: {children: {e1: {children: {a: {}, b: {}}}, e2: {children: {c: {}}}}}
indicators:
  - {name: output, unit: t, rollup: sum}
  - {name: energy, unit: MWh, rollup: sum}
gateway: {id: fd-gw}
)";
  constexpr int kRecords = 1'500'000;
  const std::string bin = CYBERSYN_BINARY_DIR "/cli/cybersyn";
  const std::string args = absl::StrCat(
      " gateway --config ", config, " --input sim:bench --seed 3 --start 1700000000000",
      " --count ", kRecords, " --buffer-dir ", (mnt_ / "buffer").string());
  const std::string log1 = (work / "full.log").string();
  const int rc1 = RunShell(absl::StrCat(bin, args, " --drain-timeout 1s > ", log1, " 2>&1"));
  const std::string out1 = Slurp(log1);
  EXPECT_EQ(rc1, 1) << out1.substr(out1.size() > 3000 ? out1.size() - 3000 : 0);
  EXPECT_THAT(out1, HasSubstr("writing the gateway buffer"));
  EXPECT_THAT(out1, HasSubstr("No space left on device"));
  EXPECT_THAT(out1, ::testing::Not(HasSubstr("Assertion")));

  // Space freed, broker back: the restart resumes from the buffer and delivers everything.
  Grow();
  ASSERT_TRUE(EnsureTopics({k->bootstrap, {}}, {{TopicNames(prefix).records, 2, 1, {}}}).ok());
  const std::string log2 = (work / "resume.log").string();
  const int rc2 =
      RunShell(absl::StrCat(bin, args, " --brokers ", k->bootstrap, " > ", log2, " 2>&1"));
  const std::string out2 = Slurp(log2);
  ASSERT_EQ(rc2, 0) << out2;
  EXPECT_THAT(out2, HasSubstr("resumed after a restart"));

  ConsumerOptions co;
  co.client = {k->bootstrap, {}};
  auto c = KafkaConsumer::Create(co);
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE(
      (*c)->Assign({{TopicNames(prefix).records, 0, -2}, {TopicNames(prefix).records, 1, -2}})
          .ok());
  std::set<uint64_t> seqs;
  size_t total = 0;
  const absl::Time deadline = absl::Now() + absl::Seconds(120);
  while (seqs.size() < static_cast<size_t>(kRecords) && absl::Now() < deadline) {
    auto msgs = (*c)->ConsumeBatch(10000, absl::Milliseconds(500));
    ASSERT_TRUE(msgs.ok());
    for (const ConsumedMessage& m : *msgs) {
      v1::RecordBatch b;
      ASSERT_TRUE(b.ParseFromArray(m.value().data(), static_cast<int>(m.value().size())));
      for (const v1::Record& r : b.records()) {
        seqs.insert(r.sequence());
        ++total;
      }
    }
  }
  EXPECT_EQ(seqs.size(), static_cast<size_t>(kRecords));  // nothing lost
  EXPECT_EQ(total, static_cast<size_t>(kRecords));        // nothing doubled
  fs::remove_all(work);
}

}  // namespace
}  // namespace cybersyn
