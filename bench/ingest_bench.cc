// Gateway throughput against a real Kafka broker, with a bare librdkafka producer as baseline.
//
//   deploy/local/kafka.sh start --dir /tmp/bench-kafka        # prints 127.0.0.1:PORT
//   build/bench/ingest_bench --brokers 127.0.0.1:PORT [--records 5000000] [--pairs 5]
//
// 1. gateway: the `bench` simulator preset (4 sectors x 5 enterprises x 10 units x 4 indicators)
//    through ingest::Gateway (validation, batching per enterprise, RocksDB store-and-forward
//    buffer, idempotent acks=all producer) until every record is confirmed by the broker.
// 2. baseline: the exact messages the gateway wrote (read back from Kafka, so the same
//    pre-encoded bytes and keys) produced by a bare KafkaProducer with the gateway's producer
//    settings to a fresh topic, until flushed.
// The gateway's disk buffer runs as `cybersyn gateway --input sim:bench --start T` would
// (--buffer-wal auto: a resumable unpaced input, so no RocksDB write-ahead log); --buffer-wal on
// measures it with one. --rate caps the source (CPU per record when the broker keeps up).
// Prints records/s of both and their ratio, the ratio of CPU seconds per record, the CPU of the
// thread running the source (simulate, validate, encode) and the CPU of every thread.
// The machine is shared and a broker's speed drifts (page cache, GC, log segments), so the two are
// measured in interleaved pairs (--pairs, gateway then baseline, each to fresh topics), and the
// verdict is the median of the pairs' ratios.
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/cleanup/cleanup.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/kafka_admin.h"
#include "common/kafka_consumer.h"
#include "common/kafka_producer.h"
#include "ingest/gateway.h"
#include "ingest/publisher.h"

namespace cybersyn {
namespace {

// CPU seconds (user + system) of this process so far: on a shared machine wall time is noisy, the
// CPU a phase burns is not.
double CpuSeconds() {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
         (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

// CPU seconds of the calling thread: Gateway::Run runs the source (simulate, validate, encode,
// seal) on the caller's thread, so this is the source path's cost without the background threads.
double ThreadCpuSeconds() {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

// User + system CPU seconds from a /proc/.../stat file (fields 14 and 15), 0 if unreadable.
double StatCpuSeconds(const std::string& path) {
  std::ifstream stat(path);
  std::string line;
  std::getline(stat, line);
  const size_t close = line.rfind(')');  // the command name may contain spaces
  if (close == std::string::npos) return 0;
  std::istringstream rest(line.substr(close + 2));
  std::string field;
  double utime = 0, stime = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14) utime = std::stod(field);
    if (i == 15) stime = std::stod(field);
  }
  return (utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// CPU seconds (user + system) of every live thread of this process, by thread name, with the
// writer and delivery threads of the publisher named by their order ("ingest_bench" threads).
std::map<std::string, double> ThreadCpu() {
  std::map<std::string, double> out;
  for (const auto& e : std::filesystem::directory_iterator("/proc/self/task")) {
    std::ifstream comm(e.path() / "comm");
    std::string name;
    std::getline(comm, name);
    if (e.path().filename() == std::to_string(::getpid())) name = "main";
    out[name] += StatCpuSeconds((e.path() / "stat").string());
  }
  return out;
}

// Per-thread CPU used since `before` (threads that started since count fully), as
// "name 0.12, ...", listing threads above 10 ms.
std::string ThreadSplit(const std::map<std::string, double>& before) {
  std::string split;
  for (const auto& [name, total] : ThreadCpu()) {
    const auto b = before.find(name);
    const double used = total - (b == before.end() ? 0.0 : b->second);
    if (used >= 0.01) {
      absl::StrAppend(&split, split.empty() ? "" : ", ", name, " ", absl::StrFormat("%.2f", used));
    }
  }
  return split;
}

// CPU seconds (user + system) the process `pid` has used, 0 if unknown (e.g. pid 0).
double ProcessCpuSeconds(int pid) {
  return pid <= 0 ? 0 : StatCpuSeconds(absl::StrCat("/proc/", pid, "/stat"));
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n == 0 ? 0 : (n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2);
}

struct Settings {
  std::string brokers;
  uint64_t records = 0;
  int partitions = 0;
  std::string buffer_wal;
  double rate = 0;
  std::map<std::string, std::string> producer_overrides;
  int broker_pid = 0;  // the broker's CPU per phase is printed when set
};

struct Measured {
  double rps = 0;
  double cpu = 0;         // CPU s of the process during the run
  double source_cpu = 0;  // the gateway's source thread
  double broker_cpu = 0;  // the broker's process (--broker-pid)
  std::string topic;
};

// One gateway run to the topics of `prefix`, with a fresh buffer, until every record is confirmed.
absl::StatusOr<Measured> RunGateway(const Settings& st, const std::string& prefix) {
  std::string yaml = ingest::SyntheticConfigYaml(4, 5, 10, st.brokers);
  yaml = absl::StrReplaceAll(
      yaml, {{"  partitions: 8\n",
              absl::StrCat("  partitions: ", st.partitions, "\n  topic_prefix: ", prefix, "\n")}});
  absl::StrAppend(&yaml, "gateway:\n  id: bench\n  batch: {max_records: 1000, linger: 50ms}\n");
  auto loaded = LoadConfigString(yaml, "bench.yaml");
  if (!loaded.ok()) return loaded.status();
  auto config = std::make_shared<const Config>(*std::move(loaded));
  const std::string buffer =
      absl::StrCat(std::filesystem::temp_directory_path().string(), "/", prefix, "-buffer");
  absl::Cleanup remove_buffer = [&buffer] { std::filesystem::remove_all(buffer); };
  ingest::GatewayOptions o;
  o.config = config;
  o.buffer_dir = buffer;
  o.buffer_wal = *ingest::ParseBufferWal(st.buffer_wal);
  o.producer_overrides = st.producer_overrides;
  const std::string identity =
      absl::StrCat("sim:bench:seed=", ingest::SimulatorPreset("bench")->seed);
  o.input.identity = identity;
  auto g = ingest::Gateway::Start(o);
  if (!g.ok()) return g.status();
  Measured m;
  m.topic = (*g)->topic();
  std::cout << "gateway buffer write-ahead log " << ((*g)->buffer_wal() ? "on" : "off") << " ("
            << (*g)->buffer_wal_reason() << ")\n";
  ingest::SimulatorOptions so = *ingest::SimulatorPreset("bench");
  so.max_records = st.records;
  // A resumable source as `cybersyn gateway --input sim:bench` runs it: every seal also stores
  // the source position.
  auto src = ingest::SimulatorSource(*config, so, identity, &(*g)->validator(), Clock::Real());
  if (!src.ok()) return src.status();
  // Topic creation and the first metadata round trip are not part of the measurement.
  if (absl::Status s = EnsureTopics({st.brokers, {}}, {{m.topic, st.partitions, 1, {}}}); !s.ok()) {
    return s;
  }
  const std::map<std::string, double> threads0 = ThreadCpu();
  const double broker0 = ProcessCpuSeconds(st.broker_pid);
  const absl::Time t0 = absl::Now();
  const double cpu0 = CpuSeconds();
  const double thread_cpu0 = ThreadCpuSeconds();
  ingest::RunOptions ro;
  ro.rate = st.rate;
  ro.report = [n = 0](const ingest::RecordError& e) mutable {
    if (n++ < 3) std::cerr << e.ToString() << "\n";
  };
  auto summary = (*g)->Run(**src, ro);
  const double run_secs = absl::ToDoubleSeconds(absl::Now() - t0);
  m.source_cpu = ThreadCpuSeconds() - thread_cpu0;
  if (!summary.ok()) return summary.status();
  if (absl::Status s = (*g)->Drain(absl::Minutes(10)); !s.ok()) return s;
  if (summary->rejected > 0 || summary->accepted < st.records) {
    for (const auto& [reason, n] : summary->rejected_by_reason) {
      std::cerr << "gateway rejected " << n << " records: " << reason << "\n";
    }
    return absl::InternalError(
        absl::StrCat("gateway accepted only ", summary->accepted, " of ", st.records, " records"));
  }
  const double secs = absl::ToDoubleSeconds(absl::Now() - t0);
  m.cpu = CpuSeconds() - cpu0;
  m.broker_cpu = ProcessCpuSeconds(st.broker_pid) - broker0;
  // Where the CPU went, per thread (the unnamed "ingest_bench" ones are the publisher's writer,
  // delivery and monitor threads; "main" runs the source).
  std::cout << "          CPU s by thread: " << ThreadSplit(threads0)
            << (st.broker_pid > 0 ? absl::StrFormat("; broker process %.2f", m.broker_cpu) : "")
            << "\n";
  m.rps = summary->accepted / secs;
  std::cout << absl::StrFormat(
      "gateway:  %llu records in %.2f s = %.0f records/s (source done after %.2f s; %.2f CPU "
      "s, of which the source thread %.2f s = %.0f ns/record)\n",
      static_cast<unsigned long long>(summary->accepted), secs, m.rps, run_secs, m.cpu,
      m.source_cpu, m.source_cpu / summary->accepted * 1e9);
  (*g)->Stop();
  return m;
}

// Reads back exactly the messages the gateway sent to `topic`.
absl::StatusOr<std::vector<std::pair<std::string, std::string>>> ReadBack(const Settings& st,
                                                                          const std::string& topic,
                                                                          uint64_t* records) {
  std::vector<std::pair<std::string, std::string>> messages;
  uint64_t total = 0, bytes = 0;
  auto consumer = KafkaConsumer::Create({{st.brokers, {}}});
  if (!consumer.ok()) return consumer.status();
  std::vector<TopicPartitionOffset> tps;
  for (int p = 0; p < st.partitions; ++p) tps.push_back({topic, p, 0});
  (void)(*consumer)->Assign(tps);
  const absl::Time deadline = absl::Now() + absl::Minutes(2);
  while (total < st.records && absl::Now() < deadline) {
    auto msgs = (*consumer)->ConsumeBatch(1000, absl::Milliseconds(500));
    if (!msgs.ok()) break;
    for (const auto& m : *msgs) {
      v1::RecordBatch b;
      b.ParseFromArray(m.value().data(), static_cast<int>(m.value().size()));
      total += b.records_size();
      bytes += m.value().size();
      messages.emplace_back(std::string(m.key()), std::string(m.value()));
    }
  }
  (void)(*consumer)->Close();
  if (total < st.records) {
    return absl::DeadlineExceededError(
        absl::StrCat("read back only ", total, " of ", st.records, " records from ", topic));
  }
  std::cout << absl::StrFormat("          %zu messages, %.1f MB, %.1f records/message\n",
                               messages.size(), bytes / 1e6,
                               static_cast<double>(total) / messages.size());
  *records = total;
  return messages;
}

// The baseline: the same bytes with the gateway's producer settings and no gateway, to a fresh
// topic, until flushed.
absl::StatusOr<Measured> RunBaseline(const Settings& st, const std::string& prefix,
                                     const std::vector<std::pair<std::string, std::string>>& msgs,
                                     uint64_t records) {
  Measured m;
  m.topic = absl::StrCat(prefix, ".baseline");
  if (absl::Status s = EnsureTopics({st.brokers, {}}, {{m.topic, st.partitions, 1, {}}}); !s.ok()) {
    return s;
  }
  ProducerOptions po;
  po.client = {st.brokers, {}};
  po.idempotent = true;
  // The gateway's producer settings, with the same --producer overrides.
  ingest::PublisherOptions gateway;
  gateway.producer_overrides = st.producer_overrides;
  po.overrides = ingest::Publisher::ProducerSettings(gateway);
  uint64_t failed = 0;
  po.on_delivery = [&](const DeliveryReport& r) { failed += !r.status.ok(); };
  auto p = KafkaProducer::Create(po);
  if (!p.ok()) return p.status();
  (void)(*p)->Produce(m.topic, -1, "warmup", "x");
  (void)(*p)->Flush(absl::Seconds(30));
  const std::map<std::string, double> threads0 = ThreadCpu();
  const double broker0 = ProcessCpuSeconds(st.broker_pid);
  const absl::Time t0 = absl::Now();
  const double cpu0 = CpuSeconds();
  for (const auto& [k, v] : msgs) {
    if (absl::Status s = (*p)->Produce(m.topic, -1, k, v); !s.ok()) return s;
    (*p)->Poll(absl::ZeroDuration());
  }
  if (absl::Status s = (*p)->Flush(absl::Minutes(5)); !s.ok()) return s;
  const double secs = absl::ToDoubleSeconds(absl::Now() - t0);
  m.rps = records / secs;
  m.cpu = CpuSeconds() - cpu0;
  m.broker_cpu = ProcessCpuSeconds(st.broker_pid) - broker0;
  std::cout << "          CPU s by thread: " << ThreadSplit(threads0)
            << (st.broker_pid > 0 ? absl::StrFormat("; broker process %.2f", m.broker_cpu) : "")
            << "\n";
  std::cout << absl::StrFormat(
      "baseline: %llu records in %.2f s = %.0f records/s (%llu failed; %.2f CPU s)\n",
      static_cast<unsigned long long>(records), secs, m.rps,
      static_cast<unsigned long long>(failed), m.cpu);
  if (failed > 0) return absl::InternalError(absl::StrCat(failed, " baseline messages failed"));
  return m;
}

int Main(int argc, char** argv) {
  CLI::App app{"ingest_bench: gateway records/s vs a bare librdkafka producer"};
  Settings st;
  // 5M: a 3M run lasts about half a second, and the baseline's start-up (metadata, the first
  // batches) then weighs enough to make it look 35% slower than at 5M (6.7M vs 10.5M records/s).
  st.records = 5'000'000;
  st.partitions = 4;
  int pairs = 5;
  app.add_option("--brokers", st.brokers, "Kafka bootstrap (deploy/local/kafka.sh start)")
      ->required();
  app.add_option("--records", st.records, "simulated records to publish per run");
  app.add_option("--partitions", st.partitions, "partitions of the bench topics");
  app.add_option("--pairs", pairs,
                 "interleaved gateway+baseline pairs; the verdict is the median of their ratios")
      ->check(CLI::Range(1, 100));
  bool gateway_only = false;
  app.add_flag("--gateway-only", gateway_only, "measure only the gateway (for profiling)");
  st.buffer_wal = "auto";
  app.add_option("--buffer-wal", st.buffer_wal, "the gateway buffer's write-ahead log: auto|on|off")
      ->check(CLI::IsMember({"auto", "on", "off"}));
  app.add_option("--rate", st.rate,
                 "cap the gateway's source at this many records/s (0: unpaced), to compare CPU per "
                 "record at a rate the broker keeps up with");
  bool deadlock_detection = false;
  app.add_flag("--deadlock-detection", deadlock_detection,
               "keep abseil's lock-order checks on every Lock (as in tests; the cybersyn binary "
               "turns them off)");
  bool keep_topics = false;
  app.add_flag("--keep-topics", keep_topics,
               "leave the run's topics on the broker (by default they are deleted at the end: "
               "each run writes several times the records' bytes to the broker's disk)");
  app.add_option("--broker-pid", st.broker_pid,
                 "the local broker's process id: prints the CPU it used in each phase (both share "
                 "the machine's cores with it)");
  std::vector<std::string> producer_settings;
  app.add_option("--producer", producer_settings,
                 "KEY=VALUE librdkafka producer setting for both the gateway and the baseline "
                 "(repeatable), e.g. --producer linger.ms=10");
  CLI11_PARSE(app, argc, argv);
  for (const std::string& kv : producer_settings) {
    const size_t eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) {
      std::cerr << "ingest_bench: --producer " << kv << ": expected KEY=VALUE\n";
      return 2;
    }
    st.producer_overrides[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  // As in the cybersyn binary (cli/main.cc): no lock-order graph on every absl::Mutex::Lock.
  if (!deadlock_detection) absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  // The machine is shared: say how busy it was.
  double load[3] = {0, 0, 0};
  if (getloadavg(load, 3) == 3) {
    std::cout << absl::StrFormat("load average %.2f %.2f %.2f; abseil deadlock detection %s\n",
                                 load[0], load[1], load[2], deadlock_detection ? "on" : "off");
  }

  const std::string prefix =
      absl::StrCat("bench-", ::getpid(), "-", absl::ToUnixSeconds(absl::Now()));
  // Each pair writes several times the records' bytes to the broker's disk. Its topics are
  // deleted right after it, so that the page cache drops their dirty pages (the local broker
  // deletes files after 1 s) instead of writing GBs back while later pairs run.
  const auto delete_topics = [&](const std::string& run_prefix) {
    if (keep_topics) return;
    std::vector<std::string> ours;
    if (auto info = DescribeCluster({st.brokers, {}}); info.ok()) {
      for (const auto& [name, partitions] : info->topics) {
        if (absl::StartsWith(name, run_prefix)) ours.push_back(name);
      }
    }
    if (absl::Status s = DeleteTopics({st.brokers, {}}, ours); !s.ok()) {
      std::cerr << "ingest_bench: could not delete the bench topics: " << s << "\n";
    }
  };
  absl::Cleanup delete_all = [&] { delete_topics(prefix); };

  std::vector<double> ratios, cpu_ratios, gateway_rps, baseline_rps;
  std::vector<std::pair<std::string, std::string>> messages;
  uint64_t total_records = 0;
  for (int i = 0; i < pairs; ++i) {
    const std::string run = pairs == 1 ? prefix : absl::StrCat(prefix, "-", i + 1);
    if (pairs > 1) std::cout << "pair " << i + 1 << " of " << pairs << "\n";
    absl::StatusOr<Measured> g = RunGateway(st, run);
    if (!g.ok()) {
      std::cerr << "ingest_bench: gateway: " << g.status() << "\n";
      return 1;
    }
    if (gateway_only) {
      delete_topics(absl::StrCat(run, "."));
      continue;
    }
    if (messages.empty()) {
      auto read = ReadBack(st, g->topic, &total_records);
      if (!read.ok()) {
        std::cerr << "ingest_bench: " << read.status() << "\n";
        return 1;
      }
      messages = *std::move(read);
    }
    absl::StatusOr<Measured> b = RunBaseline(st, run, messages, total_records);
    if (!b.ok()) {
      std::cerr << "ingest_bench: baseline: " << b.status() << "\n";
      return 1;
    }
    ratios.push_back(g->rps / b->rps);
    cpu_ratios.push_back(g->cpu / b->cpu);
    gateway_rps.push_back(g->rps);
    baseline_rps.push_back(b->rps);
    std::cout << absl::StrFormat("ratio gateway/baseline: %.2f\n", ratios.back());
    // On a shared machine the wall-time ratio swings with the load; CPU per record does not.
    std::cout << absl::StrFormat("CPU per record gateway/baseline: %.2f (%.0f / %.0f ns)\n",
                                 cpu_ratios.back(), g->cpu / st.records * 1e9,
                                 b->cpu / total_records * 1e9);
    delete_topics(absl::StrCat(run, "."));  // the baseline's messages are in memory
  }
  if (gateway_only || pairs == 1) return 0;
  std::string all;
  for (double r : ratios) absl::StrAppend(&all, all.empty() ? "" : " ", absl::StrFormat("%.2f", r));
  std::cout << absl::StrFormat(
      "median of %d pairs: ratio gateway/baseline %.2f (pairs: %s); gateway %.0f records/s, "
      "baseline %.0f records/s; CPU per record gateway/baseline %.2f\n",
      pairs, Median(ratios), all, Median(gateway_rps), Median(baseline_rps), Median(cpu_ratios));
  return 0;
}

}  // namespace
}  // namespace cybersyn

int main(int argc, char** argv) { return cybersyn::Main(argc, argv); }
