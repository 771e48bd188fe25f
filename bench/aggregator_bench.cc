// Aggregator throughput against the real broker, in one run: exactly-once, at-least-once, and a
// baseline that only consumes and parses the same input. Input: the ingest simulator's "bench"
// preset over a synthetic hierarchy of 10,000 unit series (2,500 units x 4 indicators), two window
// sizes. Prints records/s of each mode, the ratios, process CPU per record of each mode (steadier
// than wall-clock ratios on a shared machine, and independent of how many threads the aggregator
// processes on), peak RSS and state bytes per series. The baseline consumes and parses on one
// thread with the aggregator's consumer settings; the aggregator parses and windows on
// processing_threads (2 by default), so the wall-clock ratio counts the second core and the CPU
// ratio does not.
//
//   aggregator_bench [--brokers HOST:PORT] [--records N] [--batch-ms MS] [--batch-messages N]
//                    [--threads N]
// --batch-ms/--batch-messages set the transaction size, --threads the processing threads
// (default: the production defaults; --threads 0 processes on the consuming thread).
// Without --brokers it uses $CYBERSYN_TEST_KAFKA_DIR/bootstrap (deploy/local/kafka.sh start).
#include <sys/resource.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <string>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "aggregator/aggregator.h"
#include "bench/aggregator_bench_config.h"
#include "common/config.h"
#include "common/kafka_admin.h"
#include "common/kafka_consumer.h"
#include "common/kafka_producer.h"
#include "common/logging.h"
#include "cybersyn/v1/record.pb.h"
#include "ingest/simulator.h"

namespace cybersyn {
namespace {

constexpr int kPartitions = 4;

std::shared_ptr<Config> MakeConfig(const std::string& bootstrap, const std::string& prefix) {
  return AggregatorBenchConfig(50, bootstrap, prefix, kPartitions);
}

// Produces `records` simulator records, batched per enterprise (1000 per batch).
uint64_t ProduceInput(const KafkaClientOptions& client, const Config& config,
                      const std::string& topic, uint64_t records) {
  auto opts = ingest::SimulatorPreset("bench");
  opts->start_ms = absl::ToUnixMillis(absl::Now()) - 48 * 3'600'000;
  opts->max_records = records;
  auto sim = ingest::Simulator::Create(config, *opts);
  if (!sim.ok()) {
    std::fprintf(stderr, "simulator: %s\n", sim.status().ToString().c_str());
    std::exit(1);
  }
  ProducerOptions po;
  po.client = client;
  po.overrides = {{"linger.ms", "20"}, {"compression.type", "lz4"}, {"batch.size", "1000000"}};
  auto p = KafkaProducer::Create(po);
  std::map<std::string, v1::RecordBatch> open;
  uint64_t seq = 0, n = 0;
  std::string value;
  auto send = [&](v1::RecordBatch& b, const std::string& ent) {
    b.set_enterprise(ent);
    b.set_gateway_id("bench");
    b.SerializeToString(&value);
    (void)(*p)->Produce(topic, -1, ent, value);
    (*p)->Poll(absl::ZeroDuration());
    b.Clear();
  };
  v1::Record r;
  while ((*sim)->Next(&r)) {
    const std::string& ent = config.hierarchy->Find(r.node())->enterprise->path;
    v1::RecordBatch& b = open[ent];
    r.set_sequence(++seq);
    *b.add_records() = r;
    ++n;
    if (b.records_size() >= 1000) send(b, ent);
  }
  for (auto& [ent, b] : open) {
    if (b.records_size() > 0) send(b, ent);
  }
  (void)(*p)->Flush(absl::Seconds(120));
  return n;
}

// Records the first assignment, where the aggregator runs' clock starts too (at ready(), right
// after their assignment), so that the first fetch counts the same on both sides.
class AssignedAt : public RebalanceListener {
 public:
  void OnAssigned(std::vector<TopicPartitionOffset>&) override {
    if (!assigned) at = absl::Now();
    assigned = true;
  }
  void OnRevoked(const std::vector<TopicPartitionOffset>&, bool) override {}
  bool assigned = false;
  absl::Time at;
};

// CPU seconds this process used so far (all threads: librdkafka's, RocksDB's, the committer).
// On a shared machine wall-clock ratios move with the load; CPU per record does much less.
double ProcessCpuSeconds() {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
         (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

struct ParseResult {
  double from_assignment = 0;     // records/s, timed like the aggregator runs
  double from_first_message = 0;  // records/s, without the first fetch
  double cpu_us_per_record = 0;   // process CPU from subscribing to the end
};

ParseResult ParseOnly(const KafkaClientOptions& client, const std::string& topic, uint64_t total) {
  AssignedAt assigned;
  ConsumerOptions co;
  co.client = client;
  co.group_id = cybersyn::aggregator::RollupTopic(topic) + "-parse";
  co.listener = &assigned;
  co.overrides = {{"fetch.max.bytes", std::to_string(64 << 20)},
                  {"max.partition.fetch.bytes", std::to_string(1 << 20)}};  // as the aggregator
  auto c = KafkaConsumer::Create(co);
  const double cpu0 = ProcessCpuSeconds();
  (void)(*c)->Subscribe({topic});
  uint64_t n = 0;
  absl::Time start;
  bool started = false;
  v1::RecordBatch b;
  while (n < total) {
    auto msgs = (*c)->ConsumeBatch(2000, absl::Milliseconds(200));
    if (!msgs.ok()) break;
    if (!msgs->empty() && !started) {
      start = absl::Now();
      started = true;
    }
    for (const auto& m : *msgs) {
      if (b.ParseFromArray(m.value().data(), static_cast<int>(m.value().size()))) {
        n += b.records_size();
      }
    }
  }
  const absl::Time end = absl::Now();
  ParseResult r;
  r.cpu_us_per_record = (ProcessCpuSeconds() - cpu0) * 1e6 / std::max<uint64_t>(n, 1);
  (void)(*c)->Close();
  r.from_first_message = n / absl::ToDoubleSeconds(end - start);
  r.from_assignment = n / absl::ToDoubleSeconds(end - (assigned.assigned ? assigned.at : start));
  return r;
}

struct RunResult {
  double records_per_s = 0;
  double cpu_us_per_record = 0;  // process CPU from Start to the last record committed
  uint64_t transactions = 0;
  uint64_t state_bytes = 0;
};

RunResult RunAggregator(const KafkaClientOptions& client, std::shared_ptr<Config> config,
                        bool exactly_once, uint64_t total, const std::string& state_dir,
                        const aggregator::AggregatorOptions& batching) {
  aggregator::AggregatorOptions o;
  o.max_batch_time = batching.max_batch_time;
  o.max_batch_messages = batching.max_batch_messages;
  o.processing_threads = batching.processing_threads;
  o.config = config;
  o.client = client;
  o.instance_id = exactly_once ? "bench-eos" : "bench-alo";
  o.state_dir = state_dir;
  o.exactly_once = exactly_once;
  auto a = aggregator::Aggregator::Create(o);
  const double cpu0 = ProcessCpuSeconds();
  (void)(*a)->Start();
  absl::Time start = absl::Now();
  const absl::Time wait_until = start + absl::Seconds(60);
  bool started = false;
  while (true) {
    const auto c = (*a)->counters();
    if (!started && (*a)->ready()) {
      start = absl::Now();
      started = true;
    }
    if (c.records >= total) break;
    if (!started && absl::Now() > wait_until) {
      std::fprintf(stderr, "aggregator made no progress in 60 s\n");
      break;
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  RunResult r;
  r.records_per_s = total / absl::ToDoubleSeconds(absl::Now() - start);
  r.cpu_us_per_record = (ProcessCpuSeconds() - cpu0) * 1e6 / static_cast<double>(total);
  r.transactions = (*a)->counters().transactions;
  absl::SleepFor(absl::Seconds(2));  // let the state-bytes gauge sample
  r.state_bytes = (*a)->counters().state_bytes;
  (void)(*a)->Stop();
  return r;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::string s;
  std::getline(in, s);
  return s;
}

}  // namespace
}  // namespace cybersyn

int main(int argc, char** argv) {
  // As in the cybersyn binary (cli/main.cc): no lock-order graph on every absl::Mutex::Lock.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  using namespace cybersyn;
  std::string brokers;
  // 8M: at 2M each exactly-once phase took about a second, so its fixed costs (transactional
  // producer start, first fetch, the final commit's round trips) made half of it and the ratio
  // swung 0.33-0.45 on an idle machine; at 8M it measures the steady state (0.70-0.76).
  uint64_t records = 8'000'000;
  aggregator::AggregatorOptions batching;  // the production defaults unless overridden
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::string(argv[i]) == "--batch-ms") {
      int64_t ms = 0;
      if (absl::SimpleAtoi(argv[i + 1], &ms)) batching.max_batch_time = absl::Milliseconds(ms);
    }
    if (std::string(argv[i]) == "--batch-messages")
      (void)absl::SimpleAtoi(argv[i + 1], &batching.max_batch_messages);
    if (std::string(argv[i]) == "--threads")
      (void)absl::SimpleAtoi(argv[i + 1], &batching.processing_threads);
    if (std::string(argv[i]) == "--brokers") brokers = argv[i + 1];
    if (std::string(argv[i]) == "--records") (void)absl::SimpleAtoi(argv[i + 1], &records);
  }
  if (brokers.empty()) {
    const char* dir = std::getenv("CYBERSYN_TEST_KAFKA_DIR");
    if (dir != nullptr) brokers = ReadFile(std::string(dir) + "/bootstrap");
  }
  if (brokers.empty()) {
    std::fprintf(stderr, "usage: aggregator_bench --brokers HOST:PORT [--records N]\n");
    return 2;
  }
  (void)InitLogging({"warn", false});
  KafkaClientOptions client{brokers, {}};
  const std::string run =
      absl::StrCat("aggbench-", getpid(), "-", absl::ToUnixSeconds(absl::Now()));
  auto eos_cfg = MakeConfig(brokers, run + "-eos");
  auto alo_cfg = MakeConfig(brokers, run + "-alo");
  const std::string eos_topic = TopicNames(eos_cfg->kafka.topic_prefix).records;
  const std::string alo_topic = TopicNames(alo_cfg->kafka.topic_prefix).records;
  // Every topic of the run (input, aggregates, changelogs, ...) goes at the end: each run writes
  // gigabytes to the broker's disk. CYBERSYN_BENCH_KEEP_TOPICS=1 keeps them.
  absl::Cleanup delete_topics = [&] {
    if (std::getenv("CYBERSYN_BENCH_KEEP_TOPICS") != nullptr) return;
    std::vector<std::string> ours;
    if (auto info = DescribeCluster(client); info.ok()) {
      for (const auto& [name, partitions] : info->topics) {
        if (absl::StartsWith(name, run)) ours.push_back(name);
      }
    }
    if (absl::Status s = DeleteTopics(client, ours); !s.ok()) {
      std::fprintf(stderr, "aggregator_bench: could not delete the bench topics: %s\n",
                   s.ToString().c_str());
    }
  };
  for (const auto& t : {eos_topic, alo_topic}) {
    (void)EnsureTopics(client, {{t, kPartitions, 1, {}}});
  }
  const size_t series = eos_cfg->hierarchy->leaves().size() * eos_cfg->indicators.size();
  std::printf(
      "input: %llu simulator records (bench preset), %zu unit series, windows 1m+10m, "
      "%d partitions\n",
      static_cast<unsigned long long>(records), series, kPartitions);
  std::fflush(stdout);
  const uint64_t n = ProduceInput(client, *eos_cfg, eos_topic, records);
  (void)ProduceInput(client, *alo_cfg, alo_topic, records);
  std::fprintf(stderr, "produced %llu records twice\n", static_cast<unsigned long long>(n));

  const ParseResult parse_result = ParseOnly(client, eos_topic, n);
  const double parse = parse_result.from_assignment;
  std::fprintf(stderr, "parse-only: %.0f records/s\n", parse);
  const std::string dir = (std::filesystem::temp_directory_path() / run).string();
  const auto eos = RunAggregator(client, eos_cfg, true, n, dir + "/eos", batching);
  std::fprintf(stderr, "exactly-once: %.0f records/s\n", eos.records_per_s);
  const auto alo = RunAggregator(client, alo_cfg, false, n, dir + "/alo", batching);
  std::filesystem::remove_all(dir);
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  // Series stage 1 aggregates: unit series plus their enterprise series (2 window sizes each).
  // Only the units' windows are persisted (enterprises are built at close); the denominator
  // stays the same so that figures compare across versions.
  const size_t state_series =
      series + eos_cfg->hierarchy->NodesAtDepth(2).size() * eos_cfg->indicators.size();
  std::printf(
      "parse-only baseline : %12.0f records/s  (one thread; timed from assignment, as below)\n",
      parse);
  std::printf(
      "  from 1st message  : %12.0f records/s  (first fetch excluded; exactly-once %.2fx)\n",
      parse_result.from_first_message, eos.records_per_s / parse_result.from_first_message);
  std::printf("at-least-once       : %12.0f records/s  (%.2fx baseline)\n", alo.records_per_s,
              alo.records_per_s / parse);
  std::printf("exactly-once        : %12.0f records/s  (%.2fx baseline, %.2fx at-least-once)\n",
              eos.records_per_s, eos.records_per_s / parse, eos.records_per_s / alo.records_per_s);
  std::printf(
      "CPU per record      : %12.3f us parse-only, %.3f at-least-once, %.3f exactly-once "
      "(process CPU; parse-only / exactly-once = %.2f)\n",
      parse_result.cpu_us_per_record, alo.cpu_us_per_record, eos.cpu_us_per_record,
      parse_result.cpu_us_per_record / eos.cpu_us_per_record);
  std::printf("commits             : %12llu exactly-once, %llu at-least-once\n",
              static_cast<unsigned long long>(eos.transactions),
              static_cast<unsigned long long>(alo.transactions));
  const aggregator::AggregatorOptions defaults;
  std::printf(
      "transactions        : %zu messages or %s, or %s quiet (production defaults: %zu or %s)\n",
      batching.max_batch_messages, absl::FormatDuration(batching.max_batch_time).c_str(),
      absl::FormatDuration(batching.commit_when_quiet_for).c_str(), defaults.max_batch_messages,
      absl::FormatDuration(defaults.max_batch_time).c_str());
  std::printf("processing threads  : %12d (production default %d)\n", batching.processing_threads,
              defaults.processing_threads);
  std::printf("peak RSS            : %12.1f MiB\n", ru.ru_maxrss / 1024.0);
  std::printf("state bytes/series  : %12.1f (RocksDB approx. %llu bytes / %zu series)\n",
              static_cast<double>(eos.state_bytes) / state_series,
              static_cast<unsigned long long>(eos.state_bytes), state_series);
  return 0;
}
