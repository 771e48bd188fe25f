// Exactly-once under kill -9: the real `cybersyn aggregator` process is killed at random moments
// while ~1,000,000 records flow and restarted each time; the final aggregates (last value per
// series and window, read_committed) must equal those of an uninterrupted run exactly. And
// scale-out: two instances share the topic, one dies, the survivor takes over and later restores
// everything from the changelog with its local store deleted.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>

#include "aggregator/aggregator.h"
#include "common/config.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/aggregator_testing.h"
#include "tests/testing/real_kafka.h"

namespace cybersyn::aggregator {
namespace {

using testing::AggKey;

constexpr int kPartitions = 4;

std::string ConfigYaml(const std::string& prefix, const std::string& bootstrap) {
  return testing::FourLevelConfigYaml(prefix, bootstrap, kPartitions, R"(  windows: [1m, 10m]
  # A 1000-record batch of one enterprise spans 125 s of event time here, and enterprises
  # sharing a partition interleave their batches: lateness must cover that span.
  allowed_lateness: 5m
  grace: 10s
  idle_advance: 3s
  memory_limit: 32MiB
)");
}

std::string Binary() {
  if (const char* b = std::getenv("CYBERSYN_AGGREGATOR_BIN"); b != nullptr && *b) return b;
  return CYBERSYN_BINARY_DIR "/cli/cybersyn";
}

class Child {
 public:
  Child(const std::string& config, const std::string& state_dir, const std::string& id,
        const std::string& log) {
    pid_ = fork();
    if (pid_ == 0) {
      const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      if (fd >= 0) {
        dup2(fd, 1);
        dup2(fd, 2);
      }
      const std::string bin = Binary();
      execl(bin.c_str(), bin.c_str(), "aggregator", "--config", config.c_str(), "--state-dir",
            state_dir.c_str(), "--metrics", "off", "--instance-id", id.c_str(), "--log-level",
            "info", static_cast<char*>(nullptr));
      _exit(127);
    }
  }
  ~Child() { Kill(); }
  void Kill() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
  }
  bool Alive() {
    if (pid_ <= 0) return false;
    int status = 0;
    return waitpid(pid_, &status, WNOHANG) == 0;
  }

 private:
  pid_t pid_ = -1;
};

// The last few KiB of a child's log, for failure messages (TearDown deletes the file).
std::string LogTail(const std::string& path) {
  std::ifstream in(path);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return text.size() > 4000 ? text.substr(text.size() - 4000) : text;
}

int CountInFile(const std::string& path, const std::string& needle) {
  std::ifstream in(path);
  std::string line;
  int n = 0;
  while (std::getline(in, line)) n += line.find(needle) != std::string::npos;
  return n;
}

class AggregatorCrashTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(std::filesystem::exists(Binary())) << Binary() << " is not built";
    auto k = cybersyn::testing::GetRealKafka();
    ASSERT_TRUE(k.ok()) << k.status();
    client_ = {k->bootstrap, {}};
    dir_ = std::filesystem::temp_directory_path() / cybersyn::testing::UniqueName("agg-crash");
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // Writes the config of a fresh deployment (own topics) and returns its path.
  std::string NewDeployment(const std::string& name, std::shared_ptr<Config>* config) {
    const std::string prefix = cybersyn::testing::UniqueName(name);
    const std::string yaml = ConfigYaml(prefix, client_.bootstrap);
    const std::string path = (dir_ / (name + ".yaml")).string();
    std::ofstream(path) << yaml;
    auto c = LoadConfigString(yaml, path);
    EXPECT_TRUE(c.ok()) << c.status();
    *config = std::make_shared<Config>(std::move(*c));
    EXPECT_TRUE(EnsureTopics(client_, {{TopicNames(prefix).records, kPartitions, 1, {}}}).ok());
    return path;
  }

  std::map<AggKey, v1::WindowAggregate> ReadFinal(const Config& config,
                                                  const std::map<AggKey, Stats>& expected,
                                                  absl::Duration timeout) {
    return testing::ReadAggregates(
        client_, TopicNames(config.kafka.topic_prefix).aggregates, kPartitions,
        [&](const std::map<AggKey, v1::WindowAggregate>& got) {
          for (const auto& [k, s] : expected) {
            auto it = got.find(k);
            if (it == got.end() || it->second.count() != s.count) return false;
          }
          return true;
        },
        timeout, absl::Seconds(3));
  }

  static void ExpectSameAggregates(const std::map<AggKey, v1::WindowAggregate>& want,
                                   const std::map<AggKey, v1::WindowAggregate>& got) {
    EXPECT_EQ(got.size(), want.size());
    int diffs = 0;
    for (const auto& [k, a] : want) {
      auto it = got.find(k);
      if (it == got.end() || testing::Canonical(it->second) != testing::Canonical(a)) {
        if (++diffs <= 5) {
          ADD_FAILURE() << "differs: " << a.ShortDebugString() << "\n vs "
                        << (it == got.end() ? "missing" : it->second.ShortDebugString());
        }
      }
    }
    EXPECT_EQ(diffs, 0);
  }

  KafkaClientOptions client_;
  std::filesystem::path dir_;
};

const std::vector<std::string> kIndicators = {"output", "capacity", "potential", "temp"};

TEST_F(AggregatorCrashTest, KillNineTenTimesWhileAMillionRecordsFlowChangesNothing) {
  const int64_t t0 = WindowStart(absl::ToUnixMillis(absl::Now()) - 12 * 3'600'000, 600'000);
  // 8 units x 4 indicators x 31,250 s = 1,000,000 records, 1000 per batch.
  std::shared_ptr<Config> ref_config, crash_config;
  const std::string ref_path = NewDeployment("ref", &ref_config);
  const std::string crash_path = NewDeployment("crash", &crash_config);
  Model model(crash_config);
  int steps = 31'250;
  if (const char* s = std::getenv("CYBERSYN_CRASH_TEST_STEPS")) steps = std::atoi(s);
  const testing::Input in = testing::MakeInput(model, kIndicators, t0, 1000, steps, 1000, "gw");
  if (steps == 31'250) {
    ASSERT_EQ(in.records, 1'000'000u);
  }
  const auto expected = testing::ExpectedStats(model, in);

  // The uninterrupted run, in process.
  ASSERT_TRUE(
      testing::ProduceInput(client_, TopicNames(ref_config->kafka.topic_prefix).records, in).ok());
  absl::Time start = absl::Now();
  std::map<AggKey, v1::WindowAggregate> reference;
  {
    AggregatorOptions o;
    o.config = ref_config;
    o.client = client_;
    o.instance_id = "ref";
    o.state_dir = (dir_ / "ref-state").string();
    auto agg = Aggregator::Create(o);
    ASSERT_TRUE(agg.ok());
    ASSERT_TRUE((*agg)->Start().ok());
    reference = ReadFinal(*ref_config, expected, absl::Seconds(180));
    ASSERT_TRUE((*agg)->Stop().ok());
  }
  const double ref_secs = absl::ToDoubleSeconds(absl::Now() - start);
  std::cout << "uninterrupted: " << reference.size() << " aggregates in " << ref_secs << " s"
            << std::endl;
  int missing = 0;
  for (const auto& [k, st] : expected) {
    auto it = reference.find(k);
    if (it == reference.end() || it->second.count() != st.count) {
      if (++missing <= 5) {
        ADD_FAILURE() << "reference run lacks " << std::get<0>(k) << " " << std::get<1>(k) << " "
                      << std::get<2>(k) << " " << std::get<3>(k) << " count " << st.count << " got "
                      << (it == reference.end() ? std::string("none")
                                                : it->second.ShortDebugString());
      }
    }
  }
  ASSERT_EQ(missing, 0);

  // The crash run: the real binary, kill -9 at random moments.
  ASSERT_TRUE(
      testing::ProduceInput(client_, TopicNames(crash_config->kafka.topic_prefix).records, in)
          .ok());
  const std::string state = (dir_ / "crash-state").string();
  const std::string log = (dir_ / "crash.log").string();
  std::mt19937 rng(42);
  // Killed at a random moment 0.15..1 s after it restored and got its partitions, so the kills
  // land while the million records are being processed.
  std::uniform_int_distribution<int> pause_ms(150, 1000);
  start = absl::Now();
  int kills = 0;
  for (; kills < 10; ++kills) {
    Child child(crash_path, state, "crash", log);
    const absl::Time limit = absl::Now() + absl::Seconds(30);
    while (CountInFile(log, "] assigned ") <= kills && absl::Now() < limit) {
      absl::SleepFor(absl::Milliseconds(20));
    }
    absl::SleepFor(absl::Milliseconds(pause_ms(rng)));
    ASSERT_TRUE(child.Alive()) << "aggregator exited early; the end of its log:\n" << LogTail(log);
    child.Kill();
  }
  Child last(crash_path, state, "crash", log);
  const auto got = ReadFinal(*crash_config, expected, absl::Seconds(180));
  std::cout << "with " << kills << " kill -9: " << got.size() << " aggregates in "
            << absl::ToDoubleSeconds(absl::Now() - start) << " s" << std::endl;
  ExpectSameAggregates(reference, got);
  // Evidence that the kills hit a working process: restores replayed state each time.
  std::ifstream logf(log);
  std::string line;
  while (std::getline(logf, line)) {
    if (line.find("restored") != std::string::npos || line.find("resume at") != std::string::npos) {
      std::cout << line << std::endl;
    }
  }
}

TEST_F(AggregatorCrashTest, SurvivorTakesOverAndRestoresFromChangelogWithoutLocalState) {
  const int64_t t0 = WindowStart(absl::ToUnixMillis(absl::Now()) - 6 * 3'600'000, 600'000);
  std::shared_ptr<Config> config;
  const std::string path = NewDeployment("scale", &config);
  Model model(config);
  // 8 units x 4 indicators x 6,000 s = 192,000 records.
  const testing::Input in = testing::MakeInput(model, kIndicators, t0, 1000, 6'000, 1000, "gw");
  const auto expected = testing::ExpectedStats(model, in);
  ASSERT_TRUE(
      testing::ProduceInput(client_, TopicNames(config->kafka.topic_prefix).records, in).ok());
  const std::string log = (dir_ / "scale.log").string();
  const std::string state_a = (dir_ / "a").string(), state_b = (dir_ / "b").string();
  {
    Child a(path, state_a, "a", log);
    Child b(path, state_b, "b", log);
    absl::SleepFor(absl::Seconds(4));
    ASSERT_TRUE(a.Alive() && b.Alive()) << log;
    a.Kill();  // b takes a's partitions after the session timeout and restores them
    absl::SleepFor(absl::Seconds(9));
    ASSERT_TRUE(b.Alive()) << log;
    b.Kill();
  }
  // The survivor comes back with its local store deleted: everything from the changelog.
  std::filesystem::remove_all(state_b);
  Child b(path, state_b, "b", log);
  const auto got = ReadFinal(*config, expected, absl::Seconds(120));
  for (const auto& [k, s] : expected) {
    auto it = got.find(k);
    ASSERT_NE(it, got.end());
    EXPECT_EQ(it->second.count(), s.count);
    EXPECT_NEAR(it->second.sum(), s.sum, 1e-9 * std::max(1.0, std::abs(s.sum)));
    EXPECT_DOUBLE_EQ(it->second.min(), s.min);
    EXPECT_DOUBLE_EQ(it->second.max(), s.max);
  }
  std::ifstream logf(log);
  const std::string text((std::istreambuf_iterator<char>(logf)), std::istreambuf_iterator<char>());
  EXPECT_THAT(text, ::testing::HasSubstr("from changelog offset beginning"));
}

}  // namespace
}  // namespace cybersyn::aggregator
