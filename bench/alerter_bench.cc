// Alerter end to end against the real broker, in one run:
//  1. throughput: aggregates/s through the whole alerter role (consume, detect, exactly-once
//     transaction with changelog, RocksDB), from readiness to the last commit, with a baseline
//     that only consumes and parses the same topic (same fetch sizes), the ratio, and process
//     CPU per aggregate of both (target: >= 300,000 aggregates/s at 10,000 series);
//  2. latency: from the aggregator's commit of a window (an in-process aggregator closes it from
//     records) to the RAISED signal it causes reaching a gRPC Watch client, p50/p99 over
//     sequential probes (target p99 <= 250 ms);
//  3. persisted state bytes per series (the latest changelog value of each "d/" key: detector and
//     series bookkeeping; target <= 512), and RocksDB directory bytes per series.
// Input: a hierarchy of `--enterprises` x `--units` unit series (one indicator), `--windows`
// windows of stationary noise each, produced before the alerter starts. The probes are 100 more
// unit series under bench/probe, warmed up with 40 windows after the throughput phase.
//
//   deploy/local/kafka.sh start --dir /tmp/bench-kafka        # prints 127.0.0.1:PORT
//   build/bench/alerter_bench --brokers 127.0.0.1:PORT [--enterprises 20] [--units 50]
//                             [--windows 100] [--probes 100]
//   deploy/local/kafka.sh stop --dir /tmp/bench-kafka
// Without --brokers it uses $CYBERSYN_TEST_KAFKA_DIR/bootstrap.
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "aggregator/aggregator.h"
#include "alerter/alerter_service.h"
#include "common/config.h"
#include "common/kafka_admin.h"
#include "common/kafka_consumer.h"
#include "common/kafka_producer.h"
#include "common/logging.h"
#include "cybersyn/v1/aggregate.pb.h"
#include "cybersyn/v1/record.pb.h"
#include "cybersyn/v1/services.grpc.pb.h"
#include "grpcpp/grpcpp.h"

namespace cybersyn {
namespace {

constexpr int kPartitions = 4;
constexpr int64_t kWindowMs = 60000;
constexpr int64_t kStartMs = 1'700'000'000'000;
constexpr int kMaxProbes = 100;   // probe series (bench/probe/pNNN)
constexpr int kProbeWarmup = 40;  // their windows before the probes

std::string ConfigYaml(const std::string& bootstrap, const std::string& prefix,
                       const std::string& state_dir, int enterprises, int units) {
  std::string h;
  for (int e = 0; e < enterprises; ++e) {
    absl::StrAppendFormat(&h, "      e%03d: {children: {", e);
    for (int u = 0; u < units; ++u) absl::StrAppendFormat(&h, "%su%03d: {}", u ? ", " : "", u);
    h += "}}\n";
  }
  h += "      probe: {children: {";
  for (int p = 0; p < kMaxProbes; ++p) absl::StrAppendFormat(&h, "%sp%03d: {}", p ? ", " : "", p);
  h += "}}\n";
  return absl::StrCat(R"(kafka: {bootstrap: ")", bootstrap, R"(", topic_prefix: )", prefix,
                      ", partitions: ", kPartitions, R"(}
levels:
  - {name: sector, ack_within: 1h, resolve_within: 4h}
  - {name: enterprise, ack_within: 15m, resolve_within: 2h}
  - {name: unit, ack_within: 5m, resolve_within: 1h}
hierarchy:
  bench:
    children:
)",
                      h, R"(indicators:
  - {name: output, unit: t, rollup: sum, role: actuality}
  - {name: tick, unit: "1", rollup: none, detector: {kind: none}}
operators:
  - {name: ops, subtree: bench, token: tok-ops}
aggregator: {windows: [1m], allowed_lateness: 0s, grace: 0s, idle_advance: 1h, state_dir: ")",
                      state_dir, R"(-aggregator"}
alerter: {state_dir: ")",
                      state_dir, R"(", warmup: 5, auto_resolve_after: 3}
)");
}

std::string Node(int e, int u) { return absl::StrFormat("bench/e%03d/u%03d", e, u); }
std::string ProbeNode(int p) { return absl::StrFormat("bench/probe/p%03d", p); }

v1::WindowAggregate Aggregate(const std::string& node, int64_t window, double value) {
  v1::WindowAggregate a;
  a.mutable_series()->set_node(node);
  a.mutable_series()->set_indicator("output");
  a.mutable_series()->set_window_ms(kWindowMs);
  a.set_window_start_ms(kStartMs + window * kWindowMs);
  a.set_window_end_ms(kStartMs + (window + 1) * kWindowMs);
  a.set_value(value);
  a.set_count(1);
  a.set_closed_at_ms(absl::ToUnixMillis(absl::Now()));
  return a;
}

void Die(const absl::Status& st, const char* what) {
  if (st.ok()) return;
  std::fprintf(stderr, "%s: %s\n", what, st.ToString().c_str());
  std::exit(1);
}

// CPU seconds this process used so far (all threads).
double ProcessCpuSeconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_utime.tv_sec + u.ru_stime.tv_sec + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

// Consumes and parses every aggregate of `topic`: the floor any consumer of it pays.
double ParseOnly(const KafkaClientOptions& client, const std::string& topic, uint64_t total) {
  ConsumerOptions co;
  co.client = client;
  co.group_id = topic + "-parse";
  // The alerter's fetch sizes (alerter.cc), so that the two read the topic alike.
  co.overrides = {{"fetch.max.bytes", std::to_string(64 << 20)},
                  {"max.partition.fetch.bytes", std::to_string(8 << 20)}};
  auto c = KafkaConsumer::Create(co);
  Die(c.status(), "parse-only consumer");
  Die((*c)->Subscribe({topic}), "subscribe");
  uint64_t n = 0;
  absl::Time start;
  bool started = false;
  v1::WindowAggregate a;
  const absl::Time give_up = absl::Now() + absl::Seconds(120);
  while (n < total && absl::Now() < give_up) {
    auto msgs = (*c)->ConsumeBatch(2000, absl::Milliseconds(200));
    if (!msgs.ok()) break;
    if (!msgs->empty() && !started) {
      start = absl::Now();
      started = true;
    }
    for (const auto& m : *msgs) {
      n += a.ParseFromArray(m.value().data(), static_cast<int>(m.value().size()));
    }
  }
  const double secs = absl::ToDoubleSeconds(absl::Now() - start);
  (void)(*c)->Close();
  return n / secs;
}

// Watches the whole hierarchy; records when each origin node's first RAISED arrived.
class Watcher {
 public:
  struct Raised {
    int64_t window_start_ms;
    absl::Time at;
  };
  explicit Watcher(const std::string& address) {
    stub_ = v1::Alerts::NewStub(grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
    ctx_.AddMetadata("authorization", "Bearer tok-ops");
    v1::WatchRequest req;
    req.set_subtree("bench");
    reader_ = stub_->Watch(&ctx_, req);
    thread_ = std::thread([this] {
      v1::WatchEvent e;
      while (reader_->Read(&e)) {
        if (e.heartbeat()) {
          absl::MutexLock l(&mu_);
          connected_ = true;
          continue;
        }
        if (e.event().transition().kind() != v1::TRANSITION_KIND_RAISED) continue;
        const absl::Time now = absl::Now();
        absl::MutexLock l(&mu_);
        raised_.try_emplace(e.event().signal().origin_node(),
                            Raised{e.event().signal().window_start_ms(), now});
      }
    });
  }
  ~Watcher() {
    ctx_.TryCancel();
    thread_.join();
  }
  bool WaitConnected(absl::Duration timeout) {
    absl::MutexLock l(&mu_);
    return mu_.AwaitWithTimeout(absl::Condition(&connected_), timeout);
  }
  std::optional<Raised> Wait(const std::string& node, absl::Duration timeout) {
    absl::MutexLock l(&mu_);
    auto has = [&] { return raised_.contains(node); };
    mu_.AwaitWithTimeout(absl::Condition(&has), timeout);
    auto it = raised_.find(node);
    if (it == raised_.end()) return std::nullopt;
    return it->second;
  }
  void Forget() {
    absl::MutexLock l(&mu_);
    raised_.clear();
  }

 private:
  std::unique_ptr<v1::Alerts::Stub> stub_;
  grpc::ClientContext ctx_;
  std::unique_ptr<grpc::ClientReader<v1::WatchEvent>> reader_;
  std::thread thread_;
  absl::Mutex mu_;
  bool connected_ ABSL_GUARDED_BY(mu_) = false;
  std::map<std::string, Raised> raised_ ABSL_GUARDED_BY(mu_);
};

// Latest changelog value size of every "d/" (series) key.
std::vector<size_t> SeriesStateSizes(const KafkaClientOptions& client, const std::string& topic) {
  ConsumerOptions co;
  co.client = client;
  auto c = KafkaConsumer::Create(co);
  Die(c.status(), "changelog consumer");
  std::map<std::string, size_t> latest;
  for (int p = 0; p < kPartitions; ++p) {
    auto marks = (*c)->Watermarks(topic, p, absl::Seconds(30));
    Die(marks.status(), "changelog watermarks");
    if (marks->second <= marks->first) continue;
    Die((*c)->Assign({{topic, p, marks->first}}), "assign");
    int64_t next = marks->first;
    const absl::Time give_up = absl::Now() + absl::Seconds(60);
    // The last offset below `high` may be a transaction marker: stop one short of it too.
    while (next < marks->second - 1 && absl::Now() < give_up) {
      auto msgs = (*c)->ConsumeBatch(5000, absl::Milliseconds(500));
      Die(msgs.status(), "changelog read");
      for (const auto& m : *msgs) {
        next = m.offset() + 1;
        const std::string key(m.key());
        if (key.rfind("d/", 0) != 0) continue;
        if (m.value().empty()) {
          latest.erase(key);
        } else {
          latest[key] = m.value().size();
        }
      }
    }
  }
  std::vector<size_t> sizes;
  for (const auto& [k, v] : latest) sizes.push_back(v);
  return sizes;
}

uint64_t DirBytes(const std::string& dir) {
  uint64_t total = 0;
  std::error_code ec;
  for (const auto& f : std::filesystem::recursive_directory_iterator(dir, ec)) {
    if (f.is_regular_file(ec)) total += f.file_size(ec);
  }
  return total;
}

double Percentile(std::vector<double> v, double q) {
  if (v.empty()) return NAN;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(q * (v.size() - 1) + 0.5))];
}

std::string ReadLine(const std::string& path) {
  std::ifstream in(path);
  std::string s;
  std::getline(in, s);
  return s;
}

// When the aggregator committed each window of the probe series: (node, window start) -> time.
class CommitTimes {
 public:
  void Record(const std::vector<std::string>& aggregates) {
    const absl::Time now = absl::Now();
    v1::WindowAggregate a;
    absl::MutexLock l(&mu_);
    for (const std::string& v : aggregates) {
      if (!a.ParseFromString(v) || !absl::StartsWith(a.series().node(), "bench/probe/")) continue;
      if (a.series().indicator() != "output") continue;
      at_.try_emplace({a.series().node(), a.window_start_ms()}, now);
    }
  }
  std::optional<absl::Time> Get(const std::string& node, int64_t window_start_ms) {
    absl::MutexLock l(&mu_);
    auto it = at_.find({node, window_start_ms});
    if (it == at_.end()) return std::nullopt;
    return it->second;
  }

 private:
  absl::Mutex mu_;
  std::map<std::pair<std::string, int64_t>, absl::Time> at_ ABSL_GUARDED_BY(mu_);
};

// Window close -> watcher, per probe series: an in-process aggregator closes the probe windows
// from records (one batch per round: every probe's record of the window, then a record of the
// next window that moves the watermark past it); the probe under test steps up by 50 s.d. until
// its signal arrives. Latency: from the aggregator's commit of the window the signal names to
// the RAISED event at the watcher.
std::vector<double> Latency(const KafkaClientOptions& client, std::shared_ptr<const Config> config,
                            const TopicNames& names, alerter::AlerterService& svc,
                            KafkaProducer* producer, uint64_t applied_before, int probes,
                            std::mt19937_64& rng, int* missed) {
  std::normal_distribution<double> noise(0, 1);
  // The probe series are new to the detectors: warm them up first.
  for (int w = 0; w < kProbeWarmup; ++w) {
    for (int p = 0; p < probes; ++p) {
      Die(producer->Produce(names.aggregates, -1, ProbeNode(p),
                            Aggregate(ProbeNode(p), w, 100 + noise(rng)).SerializeAsString()),
          "produce");
    }
  }
  Die(producer->Flush(absl::Seconds(60)), "flush");
  const uint64_t warmed = applied_before + static_cast<uint64_t>(probes) * kProbeWarmup;
  const absl::Time give_up = absl::Now() + absl::Seconds(120);
  while (svc.alerter()->stats().aggregates < warmed && absl::Now() < give_up) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  CommitTimes commits;
  aggregator::AggregatorOptions ao;
  ao.config = config;
  ao.client = client;
  ao.instance_id = "bench";
  ao.on_committed = [&](const std::vector<std::string>& aggs) { commits.Record(aggs); };
  auto agg = aggregator::Aggregator::Create(ao);
  Die(agg.status(), "aggregator");
  Die((*agg)->Start(), "aggregator start");
  const absl::Time ready_by = absl::Now() + absl::Seconds(60);
  while (!(*agg)->ready() && absl::Now() < ready_by) absl::SleepFor(absl::Milliseconds(20));
  Watcher watcher(svc.grpc_address());
  if (!watcher.WaitConnected(absl::Seconds(30))) Die(absl::UnavailableError("no watch"), "watch");
  watcher.Forget();  // noise signals of the throughput phase

  uint64_t seq = 0;
  int round = 0;
  std::vector<bool> stepped(probes, false);
  auto produce_round = [&] {
    const int64_t start = kStartMs + (kProbeWarmup + round++) * kWindowMs;
    v1::RecordBatch b;
    b.set_enterprise("bench/probe");
    b.set_gateway_id("bench-probe");
    for (int p = 0; p < probes; ++p) {
      v1::Record* r = b.add_records();
      r->set_node(ProbeNode(p));
      r->set_indicator("output");
      r->set_value((stepped[p] ? 150 : 100) + noise(rng));
      r->set_event_time_ms(start + 1000);
      r->set_sequence(++seq);
    }
    v1::Record* tick = b.add_records();  // the next window: the watermark passes this one
    tick->set_node(ProbeNode(0));
    tick->set_indicator("tick");
    tick->set_value(1);
    tick->set_event_time_ms(start + kWindowMs);
    tick->set_sequence(++seq);
    Die(producer->Produce(names.records, -1, "bench/probe", b.SerializeAsString()), "produce");
    Die(producer->Flush(absl::Seconds(30)), "flush");
  };
  std::vector<double> latencies_ms;
  for (int p = 0; p < probes; ++p) {
    const std::string node = ProbeNode(p);
    stepped[p] = true;
    std::optional<Watcher::Raised> got;
    for (int k = 0; k < 4 && !got; ++k) {
      produce_round();
      got = watcher.Wait(node, absl::Milliseconds(k < 3 ? 400 : 10000));
    }
    std::optional<absl::Time> committed;
    if (got) committed = commits.Get(node, got->window_start_ms);
    if (!committed) {
      ++*missed;
      continue;
    }
    latencies_ms.push_back(absl::ToDoubleMilliseconds(got->at - *committed));
  }
  Die((*agg)->Stop(), "aggregator stop");
  return latencies_ms;
}

}  // namespace
}  // namespace cybersyn

int main(int argc, char** argv) {
  // As in the cybersyn binary (cli/main.cc): no lock-order graph on every absl::Mutex::Lock.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  using namespace cybersyn;
  std::string brokers;
  int enterprises = 20, units = 50, windows = 100, probes = 100;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    bool ok = true;
    if (a == "--brokers") {
      brokers = argv[i + 1];
    } else if (a == "--enterprises") {
      ok = absl::SimpleAtoi(argv[i + 1], &enterprises);
    } else if (a == "--units") {
      ok = absl::SimpleAtoi(argv[i + 1], &units);
    } else if (a == "--windows") {
      ok = absl::SimpleAtoi(argv[i + 1], &windows);
    } else if (a == "--probes") {
      ok = absl::SimpleAtoi(argv[i + 1], &probes);
    } else {
      ok = false;
    }
    if (!ok) {
      std::fprintf(stderr, "bad argument %s %s\n", argv[i], argv[i + 1]);
      return 2;
    }
  }
  if (brokers.empty()) {
    const char* dir = std::getenv("CYBERSYN_TEST_KAFKA_DIR");
    if (dir != nullptr) brokers = ReadLine(std::string(dir) + "/bootstrap");
  }
  if (brokers.empty() || enterprises < 1 || units < 1 || windows < 40 || probes < 1 ||
      probes > kMaxProbes) {
    std::fprintf(stderr,
                 "usage: alerter_bench --brokers HOST:PORT [--enterprises N] [--units N] "
                 "[--windows N>=40] [--probes 1..100]\n");
    return 2;
  }
  (void)InitLogging({"warn", false});
  KafkaClientOptions client{brokers, {}};
  const std::string prefix =
      absl::StrCat("alrtbench-", getpid(), "-", absl::ToUnixSeconds(absl::Now()));
  const std::string dir = (std::filesystem::temp_directory_path() / prefix).string();
  const std::string state_dir = dir + "/state";
  auto cfg = LoadConfigString(ConfigYaml(brokers, prefix, state_dir, enterprises, units), "bench");
  Die(cfg.status(), "config");
  auto config = std::make_shared<const Config>(std::move(*cfg));
  const TopicNames names(prefix);
  Die(EnsureTopics(client, DeploymentTopics(names, kPartitions, 1)), "topics");
  const int series = enterprises * units;

  // 1. Throughput.
  auto producer = KafkaProducer::Create({client});
  Die(producer.status(), "producer");
  std::mt19937_64 rng(7);
  std::normal_distribution<double> noise(0, 1);
  for (int w = 0; w < windows; ++w) {
    for (int e = 0; e < enterprises; ++e) {
      for (int u = 0; u < units; ++u) {
        const std::string node = Node(e, u);
        Die((*producer)->Produce(names.aggregates, -1, node,
                                 Aggregate(node, w, 100 + noise(rng)).SerializeAsString()),
            "produce");
      }
    }
  }
  Die((*producer)->Flush(absl::Seconds(120)), "flush");
  const uint64_t total = static_cast<uint64_t>(series) * windows;
  std::printf("input: %llu aggregates (%d series x %d windows), %d partitions\n",
              static_cast<unsigned long long>(total), series, windows, kPartitions);
  std::fflush(stdout);
  const double cpu_before_parse = ProcessCpuSeconds();
  const double parse = ParseOnly(client, names.aggregates, total);
  // Process CPU per aggregate: steadier than the rates on a shared machine.
  const double parse_cpu_us = (ProcessCpuSeconds() - cpu_before_parse) / total * 1e6;

  alerter::AlerterServiceOptions o;
  o.config = config;
  o.client = client;
  o.state_dir = state_dir;
  o.listen_grpc = "127.0.0.1:0";
  o.heartbeat = absl::Milliseconds(200);
  const absl::Time t0 = absl::Now();
  const double cpu_before_alerter = ProcessCpuSeconds();
  auto svc = alerter::AlerterService::Start(o);
  Die(svc.status(), "alerter");
  // Timed from readiness (the first assignment restored) to the last aggregate committed: topic
  // checks, group join, restore and transaction initialisation are startup, reported separately.
  // (Not from the first committed aggregate: a batch can hold the whole input.)
  const absl::Time give_up = t0 + absl::Seconds(600);
  while (!(*svc)->alerter()->ready() && absl::Now() < give_up) {
    Die((*svc)->status(), "alerter failed");
    absl::SleepFor(absl::Milliseconds(1));
  }
  const absl::Time first_at = absl::Now();
  const uint64_t first_n = (*svc)->alerter()->stats().aggregates;
  while ((*svc)->alerter()->stats().aggregates < total && absl::Now() < give_up) {
    Die((*svc)->status(), "alerter failed");
    absl::SleepFor(absl::Milliseconds(5));
  }
  const absl::Time done = absl::Now();
  const double alerter_cpu_us = (ProcessCpuSeconds() - cpu_before_alerter) / total * 1e6;
  const auto stats = (*svc)->alerter()->stats();
  int missed = 0;
  const double rate = (stats.aggregates - first_n) / absl::ToDoubleSeconds(done - first_at);
  const double startup_s = absl::ToDoubleSeconds(first_at - t0);

  // 2. Latency, from the aggregator's commit of a window to the watcher.
  const std::vector<double> latencies_ms =
      Latency(client, config, names, **svc, producer->get(), total, probes, rng, &missed);
  (*svc)->Stop();
  // 3. State.
  const auto sizes = SeriesStateSizes(client, names.Changelog("alerter"));
  double mean = 0;
  for (size_t s : sizes) mean += s;
  mean = sizes.empty() ? NAN : mean / sizes.size();
  const size_t max_size = sizes.empty() ? 0 : *std::max_element(sizes.begin(), sizes.end());
  const uint64_t disk = DirBytes(state_dir);
  std::filesystem::remove_all(dir);

  std::printf("parse-only baseline      : %12.0f aggregates/s\n", parse);
  std::printf(
      "alerter (exactly-once)   : %12.0f aggregates/s  (%.3fx baseline; %llu events, %llu "
      "transactions; startup %.1f s not counted)\n",
      rate, rate / parse, static_cast<unsigned long long>(stats.events),
      static_cast<unsigned long long>(stats.transactions), startup_s);
  std::printf(
      "CPU per aggregate        : %.2f us parse-only, %.2f us alerter (process CPU, all threads, "
      "startup included; parse-only / alerter = %.2f)\n",
      parse_cpu_us, alerter_cpu_us, parse_cpu_us / alerter_cpu_us);
  std::printf(
      "window commit -> watcher : p50 %.1f ms, p99 %.1f ms, max %.1f ms over %zu probes "
      "(%d missed); p99 / 250 ms target = %.2f\n",
      Percentile(latencies_ms, 0.5), Percentile(latencies_ms, 0.99), Percentile(latencies_ms, 1.0),
      latencies_ms.size(), missed, Percentile(latencies_ms, 0.99) / 250.0);
  std::printf(
      "persisted state/series   : %.1f bytes mean, %zu max (changelog value, %zu series); "
      "mean / 512 target = %.2f\n",
      mean, max_size, sizes.size(), mean / 512.0);
  std::printf("RocksDB dir bytes/series : %.1f (%llu bytes, incl. WAL and signals)\n",
              static_cast<double>(disk) / series, static_cast<unsigned long long>(disk));
  return 0;
}
