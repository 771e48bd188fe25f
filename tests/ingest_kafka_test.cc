// The gateway against the real Apache Kafka broker: round trip, broker outage, kill -9 (of a
// file-fed gateway, and of a gRPC-fed one right after it acknowledged).
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "common/rocksdb_store.h"
#include "cybersyn/v1/services.grpc.pb.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "ingest/gateway.h"
#include "ingest/testdata/bad_corpus.h"
#include "tests/ingest_testing.h"
#include "tests/testing/process.h"
#include "tests/testing/real_kafka.h"

namespace cybersyn::ingest {
namespace {

constexpr int64_t kStart = 1'714'521'600'000;  // 2024-05-01T00:00:00Z

class IngestKafkaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto k = testing::GetRealKafka();
    ASSERT_TRUE(k.ok()) << k.status();
    kafka_ = *k;
    prefix_ = testing::UniqueName("ingest");
    dir_ = ::testing::TempDir() + "/" + prefix_;
    std::filesystem::create_directories(dir_);
  }
  std::string ConfigYaml(const std::string& gateway_id) {
    std::string y = SyntheticConfigYaml(2, 3, 4, kafka_.bootstrap);
    y = absl::StrReplaceAll(
        y,
        {{"  partitions: 8\n", absl::StrCat("  partitions: 4\n  topic_prefix: ", prefix_, "\n")}});
    absl::StrAppend(&y, "gateway:\n  id: ", gateway_id,
                    "\n  batch: {max_records: 500, linger: 20ms}\n");
    return y;
  }
  std::shared_ptr<const Config> MakeConfig(const std::string& gateway_id) {
    auto c = LoadConfigString(ConfigYaml(gateway_id), "test.yaml");
    EXPECT_TRUE(c.ok()) << c.status();
    return std::make_shared<const Config>(*std::move(c));
  }
  std::unique_ptr<RecordSource> Sim(const Gateway& g, uint64_t count) {
    SimulatorOptions o = *SimulatorPreset("bench");
    o.seed = 17;
    o.start_ms = kStart;
    o.max_records = count;
    auto src = SimulatorSource(g.config(), o, "sim:test", &g.validator(), Clock::Real());
    EXPECT_TRUE(src.ok()) << src.status();
    return *std::move(src);
  }
  // Every record of the simulator arrived once (after dedup), in order, with its values.
  void ExpectExactlyTheSimulatorsRecords(const Gateway& g, const testing::ReadBack& back,
                                         uint64_t count) {
    EXPECT_EQ(back.unique.size(), count);
    EXPECT_TRUE(back.keys_match);
    EXPECT_TRUE(back.order_ok) << "sequence order broken within an enterprise";
    auto sim = Sim(g, count);
    v1::Record want;
    const Hierarchy::Node* ent;
    RecordError err;
    uint64_t seq = 1;
    std::map<std::string, int64_t> last_time;  // per unit+indicator: event time increases
    for (const auto& [key, r] : back.unique) {
      ASSERT_EQ(key.second, seq++);
      ASSERT_EQ(sim->Next(&want, &ent, &err), RecordSource::Result::kRecord);
      ASSERT_EQ(r.node(), want.node());
      ASSERT_EQ(r.indicator(), want.indicator());
      ASSERT_EQ(r.value(), want.value());
      ASSERT_EQ(r.event_time_ms(), want.event_time_ms());
    }
  }
  testing::RealKafka kafka_;
  std::string prefix_;
  std::string dir_;
};

TEST_F(IngestKafkaTest, HundredThousandSimulatedRecordsRoundTripExactlyOnceInUnitOrder) {
  GatewayOptions o;
  o.config = MakeConfig("gw-roundtrip");
  o.buffer_dir = dir_ + "/buffer";
  auto g = Gateway::Start(o);
  ASSERT_TRUE(g.ok()) << g.status();
  auto src = Sim(**g, 100'000);
  auto summary = (*g)->Run(*src, {});
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_EQ(summary->accepted, 100'000u);
  ASSERT_TRUE((*g)->Drain(absl::Seconds(60)).ok());
  EXPECT_EQ((*g)->stats().buffer_bytes, 0u);
  auto back =
      testing::ReadRecords({kafka_.bootstrap, {}}, (*g)->topic(), 100'000, absl::Seconds(60));
  EXPECT_EQ(back.duplicates, 0u);
  EXPECT_EQ(back.records, 100'000u);
  ExpectExactlyTheSimulatorsRecords(**g, back, 100'000);
  (*g)->Stop();
}

TEST_F(IngestKafkaTest, BrokerStoppedForThirtySecondsMidStreamLosesNothing) {
  GatewayOptions o;
  o.config = MakeConfig("gw-outage");
  o.buffer_dir = dir_ + "/buffer";
  auto g = Gateway::Start(o);
  ASSERT_TRUE(g.ok()) << g.status();
  const uint64_t count = 150'000;
  auto src = Sim(**g, count);
  RunOptions ro;
  ro.rate = 3000;  // ~50 s of input
  absl::StatusOr<RunSummary> summary;
  std::thread run([&] { summary = (*g)->Run(*src, ro); });
  absl::SleepFor(absl::Seconds(4));
  const uint64_t before = (*g)->stats().confirmed;
  EXPECT_GT(before, 0u);
  ASSERT_TRUE(testing::ControlRealKafka("stop").ok());
  const absl::Time stopped = absl::Now();
  absl::SleepFor(absl::Seconds(30));
  const GatewayStats during = (*g)->stats();
  std::cout << "after 30 s without broker: accepted " << during.accepted << ", buffered "
            << during.buffer_records << ", connected " << during.connected << std::endl;
  EXPECT_GT(during.buffer_records, 50'000u) << "input kept flowing into the disk buffer";
  EXPECT_FALSE(during.connected);
  ASSERT_TRUE(testing::ControlRealKafka("start").ok());
  std::cout << "broker was down for " << absl::FormatDuration(absl::Now() - stopped) << std::endl;
  run.join();
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_EQ(summary->accepted, count);
  ASSERT_TRUE((*g)->Drain(absl::Seconds(60)).ok());
  EXPECT_EQ((*g)->stats().buffer_bytes, 0u);
  EXPECT_EQ((*g)->stats().buffer_records, 0u);
  auto back = testing::ReadRecords({kafka_.bootstrap, {}}, (*g)->topic(), count, absl::Seconds(60));
  std::cout << "read back " << back.records << " records, " << back.duplicates
            << " duplicates dropped" << std::endl;
  ExpectExactlyTheSimulatorsRecords(**g, back, count);
  (*g)->Stop();
}

TEST_F(IngestKafkaTest, BadInputCorpusReportsEveryLineExactlyAndItsGoodLinesAllArrive) {
  // The corpus' times are around 2024-05-01T00:00:00Z; its "future" lines are relative to that.
  ManualClock clock(absl::FromUnixMillis(kStart));
  GatewayOptions o;
  o.config = MakeConfig("gw-bad");
  o.buffer_dir = dir_ + "/buffer";
  o.clock = &clock;
  auto g = Gateway::Start(o);
  ASSERT_TRUE(g.ok()) << g.status();
  const std::string csv = std::string(CYBERSYN_SOURCE_DIR) + "/ingest/testdata/bad.csv";
  const std::string jsonl = std::string(CYBERSYN_SOURCE_DIR) + "/ingest/testdata/bad.jsonl";
  std::vector<std::string> reported;
  RunOptions ro;
  ro.report = [&](const RecordError& e) { reported.push_back(e.ToString()); };
  uint64_t accepted = 0, rejected = 0;
  for (const auto& [format, path] :
       {std::pair{InputFormat::kCsv, csv}, std::pair{InputFormat::kJsonLines, jsonl}}) {
    auto src = OpenFileSource(format, path, &(*g)->validator());
    ASSERT_TRUE(src.ok()) << src.status();
    auto summary = (*g)->Run(**src, ro);
    ASSERT_TRUE(summary.ok()) << summary.status();
    accepted += summary->accepted;
    rejected += summary->rejected;
  }
  // 50 malformed lines of 45 kinds, each with its exact message (ingest/testdata/bad_corpus.h),
  // issue 22's among them.
  const std::string c = csv + ":", j = jsonl + ":";
  std::vector<std::string> want_errors = testdata::BadCsvErrors(c);
  for (std::string& e : testdata::BadJsonlErrors(j)) want_errors.push_back(std::move(e));
  EXPECT_THAT(reported, ::testing::ElementsAreArray(want_errors));
  EXPECT_EQ(rejected, 50u);
  ASSERT_EQ(accepted, 8u);
  ASSERT_TRUE((*g)->Drain(absl::Seconds(60)).ok());
  EXPECT_EQ((*g)->stats().buffer_records, 0u);
  // Every good line arrived in the real broker, once, in file order, with its values and labels.
  auto back = testing::ReadRecords({kafka_.bootstrap, {}}, (*g)->topic(), 8, absl::Seconds(60));
  EXPECT_EQ(back.records, 8u);
  EXPECT_EQ(back.duplicates, 0u);
  EXPECT_TRUE(back.keys_match);
  ASSERT_EQ(back.unique.size(), 8u);
  std::vector<v1::Record> got;
  for (const auto& [key, r] : back.unique) got.push_back(r);  // in sequence (= file) order
  struct Want {
    const char* node;
    const char* indicator;
    double value;
    std::map<std::string, std::string> labels;
  };
  const std::vector<Want> want = {
      {"sim/s0/e0/u0", "output", 1.5, {}},
      {"sim/s0/e0/u1", "output", 2.5, {{"shift", "night"}, {"line", "3"}}},
      {"sim/s0/e0/u1", "output", 3.5, {{"note", "a \"quoted\" word"}}},
      {"sim/s0/e0/u1", "output", 4.5, {}},  // after a byte order mark
      {"sim/s0/e0/u1", "output", 5.5, {}},  // columns in the order of the header before it
      {"sim/s0/e0/u0", "output", 1.5, {}},
      {"sim/s0/e0/u1", "energy", -2, {{"shift", "day"}}},
      {"sim/s0/e0/u1", "output", 7.5, {}},  // after a byte order mark
  };
  for (size_t i = 0; i < want.size(); ++i) {
    SCOPED_TRACE(got[i].ShortDebugString());
    EXPECT_EQ(got[i].node(), want[i].node);
    EXPECT_EQ(got[i].indicator(), want[i].indicator);
    EXPECT_EQ(got[i].value(), want[i].value);
    EXPECT_EQ(got[i].event_time_ms(), kStart);
    const std::map<std::string, std::string> labels(got[i].labels().begin(), got[i].labels().end());
    EXPECT_EQ(labels, want[i].labels);
  }
  (*g)->Stop();
}

pid_t Spawn(const std::vector<std::string>& args, const std::string& log) {
  return testing::SpawnLogged(args, log);
}

uint64_t BufferedBatches(const std::string& dir) {
  RocksDbOptions ro;
  ro.path = dir;
  auto store = RocksDbStore::Open(ro);
  if (!store.ok()) return 0;
  uint64_t n = 0;
  (void)(*store)->Scan("b/", [&](absl::string_view, absl::string_view) { return ++n, true; });
  return n;
}

// Issue 20 (4): buffer writes are not fsynced, so a power cut loses the tail of the buffer's
// write-ahead log, the next sequence number with it. A gateway fed by a live input (nothing to
// re-read) must then not hand out numbers that the lost writes had already sent to Kafka: the
// aggregator would drop its new records as duplicates, silently. The cut: a restart from a copy
// of the buffer directory taken before the last writes.
TEST_F(IngestKafkaTest, APowerCutInWalModeNeverReusesSequenceNumbers) {
  GatewayOptions o;
  o.config = MakeConfig("gw-power");
  o.buffer_dir = dir_ + "/buffer";
  o.buffer_wal = BufferWal::kOn;
  constexpr uint64_t kEach = 2'000;
  // A simulator run without an identity: it cannot be re-read, like stdin or gRPC pushes.
  auto live = [&](Gateway& g, int run) {
    SimulatorOptions so = *SimulatorPreset("bench");
    so.seed = 17 + run;
    so.start_ms = kStart + run * 3'600'000;
    so.max_records = kEach;
    auto src = SimulatorSource(g.config(), so, "", &g.validator(), Clock::Real());
    ASSERT_TRUE(src.ok()) << src.status();
    auto summary = g.Run(**src, {});
    ASSERT_TRUE(summary.ok()) << summary.status();
    ASSERT_TRUE(g.Drain(absl::Seconds(60)).ok());
  };
  const std::string at_the_cut = dir_ + "/buffer-at-the-cut";
  {
    auto g = Gateway::Start(o);
    ASSERT_TRUE(g.ok()) << g.status();
    ASSERT_TRUE((*g)->buffer_wal());
    live(**g, 0);
    absl::SleepFor(absl::Milliseconds(200));  // the deletes of confirmed batches are written
    std::filesystem::copy(o.buffer_dir, at_the_cut, std::filesystem::copy_options::recursive);
    live(**g, 1);  // in Kafka, but not in what the disk kept
    (*g)->Stop();
  }
  o.buffer_dir = at_the_cut;
  auto g = Gateway::Start(o);
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_GT((*g)->stats().next_sequence, 2 * kEach) << "numbers the lost writes sent are reused";
  live(**g, 2);
  auto back =
      testing::ReadRecords({kafka_.bootstrap, {}}, (*g)->topic(), 3 * kEach, absl::Seconds(30));
  EXPECT_EQ(back.unique.size(), 3 * kEach);
  EXPECT_EQ(testing::HighWaterMarkDedup(back).size(), 3 * kEach)
      << "the aggregator would drop records sent after the restart as duplicates";
  (*g)->Stop();
  EXPECT_FALSE(std::filesystem::exists(RunMarkerPath(at_the_cut))) << "a clean stop keeps it";
}

TEST_F(IngestKafkaTest, KillNineOfTheGatewayProcessLosesNothing) {
  const std::string config_path = dir_ + "/gateway.yaml";
  std::ofstream(config_path) << ConfigYaml("gw-kill");
  const std::string buffer = dir_ + "/buffer";
  const std::string log = dir_ + "/gateway.log";
  const uint64_t count = 60'000;
  // The real binary; CYBERSYN_TEST_GATEWAY_BINARY may point at another build of it.
  const char* bin_env = std::getenv("CYBERSYN_TEST_GATEWAY_BINARY");
  const std::string bin = bin_env != nullptr ? bin_env : CYBERSYN_BINARY_DIR "/cli/cybersyn";
  // Paced runs keep the buffer's WAL anyway (auto); pinned, as this is the kill -9 test of the WAL
  // mode. The unpaced restart runs without it (WithoutTheWal* below test that mode's kills).
  auto args = [&](const std::string& brokers, bool paced) {
    std::vector<std::string> a = {bin,
                                  "gateway",
                                  "--config",
                                  config_path,
                                  "--input",
                                  "sim:bench",
                                  "--seed",
                                  "17",
                                  "--start",
                                  std::to_string(kStart),
                                  "--count",
                                  std::to_string(count),
                                  "--buffer-dir",
                                  buffer,
                                  "--brokers",
                                  brokers};
    if (paced) a.insert(a.end(), {"--rate", "5000", "--buffer-wal", "on"});
    return a;
  };
  // 1: publishing to the real broker, killed mid-stream.
  pid_t pid = Spawn(args(kafka_.bootstrap, true), log);
  ASSERT_GT(pid, 0);
  absl::SleepFor(absl::Seconds(4));
  ASSERT_EQ(::kill(pid, SIGKILL), 0);
  int status = 0;
  ::waitpid(pid, &status, 0);
  // 2: brokers unreachable: everything goes to the disk buffer; killed holding it.
  pid = Spawn(args("127.0.0.1:1", true), log);
  ASSERT_GT(pid, 0);
  absl::SleepFor(absl::Seconds(3));
  ASSERT_EQ(::kill(pid, SIGKILL), 0);
  ::waitpid(pid, &status, 0);
  const uint64_t held = BufferedBatches(buffer);
  std::cout << "killed with " << held << " batches in the disk buffer" << std::endl;
  EXPECT_GT(held, 0u);
  // 3: restart against the broker: resend the buffer, resume the source, finish.
  pid = Spawn(args(kafka_.bootstrap, false), log);
  ASSERT_GT(pid, 0);
  ::waitpid(pid, &status, 0);
  std::ifstream in(log);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << text;
  EXPECT_THAT(text, ::testing::HasSubstr("resumed after a restart"));
  EXPECT_EQ(BufferedBatches(buffer), 0u);

  auto config = MakeConfig("gw-kill");
  GatewayOptions o;  // only for the expected records (validator + simulator)
  o.config = config;
  o.buffer_dir = dir_ + "/check-buffer";
  auto g = Gateway::Start(o);
  ASSERT_TRUE(g.ok());
  auto back = testing::ReadRecords({kafka_.bootstrap, {}}, config->kafka.Topic("records"), count,
                                   absl::Seconds(60));
  std::cout << "read back " << back.records << " records, " << back.duplicates
            << " duplicates dropped by (gateway, sequence)" << std::endl;
  ExpectExactlyTheSimulatorsRecords(**g, back, count);
}

std::string Slurp(const std::string& path) { return testing::SlurpFile(path); }

// The next sequence number the gateway buffer in `dir` holds (1 when it has none).
uint64_t BufferedNextSequence(const std::string& dir) {
  RocksDbOptions ro;
  ro.path = dir;
  auto store = RocksDbStore::Open(ro);
  if (!store.ok()) return 0;
  auto v = (*store)->Get("m/next_seq");
  uint64_t next = 1;
  if (v.ok()) {
    EXPECT_TRUE(absl::SimpleAtoi(*v, &next)) << *v;
  }
  return next;
}

// Without the buffer's WAL (buffer_wal.h): a `cybersyn gateway` over a simulator run is killed -9
// mid-stream while Kafka holds records whose sequence numbers never reached the buffer's disk
// (checked), then started again. It returns to the position of the buffer's last flush and
// re-reads with the same numbers; the output is the simulator's records, each once.
class WithoutTheWal : public IngestKafkaTest {
 protected:
  std::vector<std::string> Args(uint64_t seed, int64_t start, uint64_t count,
                                const std::vector<std::string>& extra) {
    const char* bin_env = std::getenv("CYBERSYN_TEST_GATEWAY_BINARY");
    std::vector<std::string> a = {
        bin_env != nullptr ? bin_env : CYBERSYN_BINARY_DIR "/cli/cybersyn",
        "gateway",
        "--config",
        config_path_,
        "--input",
        "sim:bench",
        "--seed",
        std::to_string(seed),
        "--start",
        std::to_string(start),
        "--count",
        std::to_string(count),
        "--buffer-dir",
        buffer_,
        "--brokers",
        kafka_.bootstrap};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  }
  void WriteConfig(const std::string& id) {
    config_path_ = dir_ + "/gateway.yaml";
    std::ofstream(config_path_) << ConfigYaml(id);
    buffer_ = dir_ + "/buffer";
    log_ = dir_ + "/gateway.log";
  }
  // Runs the first gateway (forced WAL-less: it is paced so that it can be killed mid-stream)
  // and kills it once Kafka holds numbers the buffer lost. Returns the records it got to Kafka.
  uint64_t RunAndKillMidStream(uint64_t count) {
    const std::string topic = MakeConfig(id_)->kafka.Topic("records");
    EXPECT_TRUE(EnsureTopics({kafka_.bootstrap, {}}, {{topic, 4, 1, {}}}).ok());
    pid_t pid = Spawn(Args(17, kStart, count, {"--rate", "20000", "--buffer-wal", "off"}), log_);
    EXPECT_GT(pid, 0);
    absl::SleepFor(absl::Seconds(3));
    EXPECT_EQ(::kill(pid, SIGKILL), 0);
    int status = 0;
    ::waitpid(pid, &status, 0);
    EXPECT_TRUE(WIFSIGNALED(status)) << Slurp(log_);
    EXPECT_THAT(Slurp(log_), ::testing::HasSubstr("write-ahead log off"));
    EXPECT_TRUE(std::filesystem::exists(RunMarkerPath(buffer_)));
    const auto first = testing::ReadRecords({kafka_.bootstrap, {}}, topic, count, absl::Seconds(5));
    const uint64_t in_kafka = first.unique.empty() ? 0 : first.unique.rbegin()->first.second;
    const uint64_t on_disk = BufferedNextSequence(buffer_);
    std::cout << "killed: Kafka holds sequence numbers up to " << in_kafka
              << ", the buffer's disk has next sequence " << on_disk << std::endl;
    EXPECT_GE(in_kafka, on_disk) << "no record beyond the flushed buffer reached Kafka: the "
                                    "test does not exercise the WAL-less crash";
    EXPECT_LT(in_kafka, count) << "not killed mid-stream";
    return first.unique.size();
  }
  std::string id_;
  std::string config_path_;
  std::string buffer_;
  std::string log_;
};

TEST_F(WithoutTheWal, KillNineMidStreamThenTheSameInputDeliversEveryRecordOnce) {
  id_ = "gw-walless";
  WriteConfig(id_);
  const uint64_t count = 150'000;
  RunAndKillMidStream(count);
  // The same input, unpaced: auto keeps the buffer WAL-less.
  const size_t restart_at = Slurp(log_).size();
  pid_t pid = Spawn(Args(17, kStart, count, {}), log_);
  ASSERT_GT(pid, 0);
  int status = 0;
  ::waitpid(pid, &status, 0);
  const std::string text = Slurp(log_).substr(restart_at);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << text;
  EXPECT_THAT(text, ::testing::HasSubstr("write-ahead log off"));
  EXPECT_THAT(text, ::testing::HasSubstr("did not stop cleanly; it is re-read from the position"));
  EXPECT_FALSE(std::filesystem::exists(RunMarkerPath(buffer_))) << "clean stop keeps marker";
  EXPECT_EQ(BufferedBatches(buffer_), 0u);

  auto config = MakeConfig(id_);
  GatewayOptions o;  // only for the expected records (validator + simulator)
  o.config = config;
  o.buffer_dir = dir_ + "/check-buffer";
  auto g = Gateway::Start(o);
  ASSERT_TRUE(g.ok());
  auto back = testing::ReadRecords({kafka_.bootstrap, {}}, config->kafka.Topic("records"), count,
                                   absl::Seconds(60));
  std::cout << "read back " << back.records << " records, " << back.duplicates
            << " duplicates dropped by (gateway, sequence)" << std::endl;
  ExpectExactlyTheSimulatorsRecords(**g, back, count);  // sequences 1..count, the sim's records
  // What an aggregator counts: exactly `count`.
  EXPECT_EQ(testing::HighWaterMarkDedup(back).size(), count);
}

// The hazard: after the WAL-less kill -9 the next run reads a DIFFERENT input. Without the jump
// its records would get the numbers the killed run had already sent (and an aggregator would drop
// them as duplicates); with it, every record of both runs that reached Kafka is counted.
TEST_F(WithoutTheWal, KillNineThenADifferentInputLosesNoRecordToSequenceDedup) {
  id_ = "gw-walless-other";
  WriteConfig(id_);
  const uint64_t first = RunAndKillMidStream(150'000);
  ASSERT_GT(first, 0u);
  const int64_t other_start = kStart + int64_t{30} * 24 * 3600 * 1000;  // tells the runs apart
  const uint64_t count = 20'000;
  const size_t restart_at = Slurp(log_).size();
  pid_t pid = Spawn(Args(18, other_start, count, {}), log_);
  ASSERT_GT(pid, 0);
  int status = 0;
  ::waitpid(pid, &status, 0);
  const std::string text = Slurp(log_).substr(restart_at);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << text;
  EXPECT_THAT(text, ::testing::HasSubstr("did not stop cleanly, so sequence numbers it sent"));
  EXPECT_THAT(text, ::testing::HasSubstr("moved 4294967296 forward"));

  auto config = MakeConfig(id_);
  auto back = testing::ReadRecords({kafka_.bootstrap, {}}, config->kafka.Topic("records"),
                                   first + count, absl::Seconds(60));
  ASSERT_EQ(back.unique.size(), first + count);
  uint64_t kept_first = 0, kept_other = 0;
  for (const v1::Record& r : testing::HighWaterMarkDedup(back)) {
    (r.event_time_ms() >= other_start ? kept_other : kept_first) += 1;
  }
  std::cout << "after sequence dedup: " << kept_first << " of " << first
            << " records of the killed run, " << kept_other << " of " << count
            << " of the other input" << std::endl;
  EXPECT_EQ(kept_first, first);
  EXPECT_EQ(kept_other, count) << "records of the second input dropped as duplicates";
}

// Waits for the line "gateway: gRPC Ingest on HOST:PORT" in `log`; "" after `timeout`.
std::string GrpcAddress(const std::string& log, size_t from, absl::Duration timeout) {
  const std::string kLine = "gateway: gRPC Ingest on ";
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    const std::string text = Slurp(log);
    if (const size_t at = text.find(kLine, from); at != std::string::npos) {
      const size_t start = at + kLine.size();
      const size_t end = text.find('\n', start);
      if (end != std::string::npos) return text.substr(start, end - start);
    }
    absl::SleepFor(absl::Milliseconds(50));
  }
  return "";
}

// Issue 3, "never lose a record": a gRPC OK means the records are on the gateway's disk. The
// gateway's broker is unreachable and its linger is 30 s, so the records could only be in an
// open in-memory batch when the OK comes, unless the call made them durable; it is killed -9
// right after the OK and restarted against the real broker, which must get every record once.
TEST_F(IngestKafkaTest, GrpcAcknowledgedRecordsSurviveKillNineRightAfterTheOk) {
  const std::string config_path = dir_ + "/gateway.yaml";
  std::string yaml = ConfigYaml("gw-grpc-kill");
  yaml = absl::StrReplaceAll(yaml, {{"batch: {max_records: 500, linger: 20ms}",
                                     "batch: {max_records: 100000, linger: 30s}"}});
  std::ofstream(config_path) << yaml;
  const std::string buffer = dir_ + "/buffer";
  const std::string log = dir_ + "/gateway.log";
  const char* bin_env = std::getenv("CYBERSYN_TEST_GATEWAY_BINARY");
  const std::string bin = bin_env != nullptr ? bin_env : CYBERSYN_BINARY_DIR "/cli/cybersyn";
  auto args = [&](const std::string& brokers) {
    return std::vector<std::string>{
        bin,           "gateway",      "--config", config_path, "--listen-grpc",
        "127.0.0.1:0", "--buffer-dir", buffer,     "--brokers", brokers};
  };
  pid_t pid = Spawn(args("127.0.0.1:1"), log);  // nothing listens there
  ASSERT_GT(pid, 0);
  const std::string address = GrpcAddress(log, 0, absl::Seconds(20));
  ASSERT_FALSE(address.empty()) << Slurp(log);

  // Two calls (the second after the first was acknowledged), 3 x 1,000 records each.
  constexpr int kCalls = 2, kBatches = 3, kPerBatch = 1000;
  constexpr int kRecords = kCalls * kBatches * kPerBatch;
  const int64_t now_ms = absl::ToUnixMillis(absl::Now());
  std::vector<v1::Record> sent;
  auto stub = v1::Ingest::NewStub(grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  for (int call = 0; call < kCalls; ++call) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    v1::PublishSummary summary;
    auto writer = stub->Publish(&ctx, &summary);
    for (int b = 0; b < kBatches; ++b) {
      v1::RecordBatch batch;
      for (int i = 0; i < kPerBatch; ++i) {
        v1::Record* r = batch.add_records();
        const int n = static_cast<int>(sent.size());
        r->set_node(absl::StrCat("sim/s", n % 2, "/e", n / 2 % 3, "/u", n / 6 % 4));
        r->set_indicator(n % 3 == 0 ? "energy" : "output");
        r->set_value(0.5 + n);
        r->set_event_time_ms(now_ms - 60'000 + n);
        sent.push_back(*r);
      }
      ASSERT_TRUE(writer->Write(batch));
    }
    ASSERT_TRUE(writer->WritesDone());
    const grpc::Status status = writer->Finish();
    if (call == kCalls - 1 && status.ok()) {
      ASSERT_EQ(::kill(pid, SIGKILL), 0);  // at once: no time for a linger or a clean stop
    }
    ASSERT_TRUE(status.ok()) << status.error_code() << ": " << status.error_message();
    EXPECT_EQ(summary.accepted(), static_cast<uint64_t>(kBatches * kPerBatch));
    EXPECT_EQ(summary.rejected(), 0u);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(status)) << "the gateway was not killed: " << Slurp(log);
  // On disk, not just acknowledged.
  EXPECT_GT(BufferedBatches(buffer), 0u) << "nothing in the disk buffer after the OK";

  // Restart against the real broker: the buffer is resent, every record once. (The topic is
  // made first so that the reader below sees all its partitions.)
  auto config = MakeConfig("gw-grpc-kill");
  const std::string topic = config->kafka.Topic("records");
  ASSERT_TRUE(EnsureTopics({kafka_.bootstrap, {}}, {{topic, 4, 1, {}}}).ok());
  const size_t restart_at = Slurp(log).size();
  pid = Spawn(args(kafka_.bootstrap), log);
  ASSERT_GT(pid, 0);
  ASSERT_FALSE(GrpcAddress(log, restart_at, absl::Seconds(20)).empty()) << Slurp(log);
  EXPECT_THAT(Slurp(log).substr(restart_at),
              ::testing::HasSubstr(absl::StrCat("(", kRecords, " records, ")));
  auto back = testing::ReadRecords({kafka_.bootstrap, {}}, topic, kRecords, absl::Seconds(30));
  ASSERT_EQ(::kill(pid, SIGTERM), 0);
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << Slurp(log);
  EXPECT_EQ(BufferedBatches(buffer), 0u) << "the buffer drained";
  // Read again once the gateway is gone, past the last record: no late duplicates either.
  const auto all =
      testing::ReadRecords({kafka_.bootstrap, {}}, topic, kRecords + 1, absl::Seconds(3));
  std::cout << "read back " << back.unique.size() << " of " << kRecords << " acknowledged records; "
            << all.records << " in the topic" << std::endl;
  EXPECT_EQ(all.records, static_cast<uint64_t>(kRecords));  // none twice
  EXPECT_EQ(all.duplicates, 0u);
  EXPECT_TRUE(all.keys_match);
  EXPECT_TRUE(all.order_ok);
  ASSERT_EQ(all.unique.size(), static_cast<size_t>(kRecords));  // none lost
  size_t i = 0;
  for (const auto& [key, r] : all.unique) {  // in sequence order = the order they were sent
    EXPECT_EQ(key.first, "gw-grpc-kill");
    ASSERT_EQ(r.node(), sent[i].node()) << i;
    ASSERT_EQ(r.indicator(), sent[i].indicator()) << i;
    ASSERT_EQ(r.value(), sent[i].value()) << i;
    ASSERT_EQ(r.event_time_ms(), sent[i].event_time_ms()) << i;
    ++i;
  }
}

}  // namespace
}  // namespace cybersyn::ingest
