// Incremental rebalancing of the aggregator against the real broker (issue 19 item 4): 2 -> 3
// instances, then 3 -> 2, under a steady input over a synthetic hierarchy (100,000 unit series by
// default). For each change it prints, per records partition, whether it moved, and the longest
// gap between advances of the group's committed offset in the phase after the change (the
// processing pause; a partition commits every ~0.1-1 s when nothing happens, the "before" column
// is the same gap in the phase before), the new owner's restore time for the moved ones, and
// the records/s committed by all instances during the phase against the rate produced.
//
// 3 -> 2 stops an instance cleanly. A static member does not leave the group when it stops (a
// restart would take its partitions back at once), so its partitions move only after
// session.timeout.ms (6 s): their gap counts that wait, then the restore.
//
//   rebalance_bench [--brokers HOST:PORT] [--units N] [--rate RECORDS_PER_S] [--phase-s S]
// --units: units per enterprise (sim: 5 sectors x 10 enterprises x N units x 4 indicators;
// default 500: 100,000 series). Without --brokers it uses $CYBERSYN_TEST_KAFKA_DIR/bootstrap.
// REBALANCE_BENCH_INFO=1 keeps the roles' info logs (assignments, restores, revokes). At the end
// it prints how each instance's run ended: an instance whose run failed (a transaction refused
// during a rebalance, then ...) is not restarted here, as `cybersyn aggregator` would.
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "aggregator/aggregator.h"
#include "bench/aggregator_bench_config.h"
#include "common/config.h"
#include "common/kafka_admin.h"
#include "common/kafka_consumer.h"
#include "common/kafka_producer.h"
#include "cybersyn/v1/record.pb.h"
#include "ingest/simulator.h"
#include "spdlog/spdlog.h"

namespace cybersyn {
namespace {

constexpr int kPartitions = 6;

struct Args {
  std::string brokers;
  int units = 500;
  int rate = 40000;
  int phase_s = 25;
};

std::shared_ptr<Config> MakeConfig(const Args& a, const std::string& prefix) {
  return AggregatorBenchConfig(a.units, a.brokers, prefix, kPartitions);
}

// Produces the simulator's records at `rate` records/s until `stop`, batched per enterprise.
void Produce(const KafkaClientOptions& client, const Config& config, const std::string& topic,
             int rate, const std::atomic<bool>& stop, std::atomic<uint64_t>* produced) {
  auto opts = ingest::SimulatorPreset("bench");
  opts->start_ms = absl::ToUnixMillis(absl::Now()) - 48 * 3'600'000;
  auto sim = ingest::Simulator::Create(config, *opts);
  ProducerOptions po;
  po.client = client;
  po.overrides = {{"linger.ms", "20"}, {"compression.type", "lz4"}};
  auto p = KafkaProducer::Create(po);
  if (!sim.ok() || !p.ok()) {
    std::fprintf(stderr, "producer setup failed\n");
    std::exit(1);
  }
  std::map<std::string, v1::RecordBatch> open;
  std::string value;
  uint64_t seq = 0;
  const absl::Time start = absl::Now();
  v1::Record r;
  while (!stop.load() && (*sim)->Next(&r)) {
    const std::string& ent = config.hierarchy->Find(r.node())->enterprise->path;
    v1::RecordBatch& b = open[ent];
    r.set_sequence(++seq);
    *b.add_records() = r;
    if (b.records_size() < 200) continue;
    b.set_enterprise(ent);
    b.set_gateway_id("bench");
    b.SerializeToString(&value);
    (void)(*p)->Produce(topic, -1, ent, value);
    (*p)->Poll(absl::ZeroDuration());
    produced->fetch_add(b.records_size());
    b.Clear();
    const absl::Time due = start + absl::Seconds(static_cast<double>(seq) / rate);
    if (due > absl::Now()) absl::SleepFor(due - absl::Now());
  }
  (void)(*p)->Flush(absl::Seconds(30));
}

// The group's committed offsets of the records partitions, sampled every 50 ms: when each
// partition last advanced, and its longest gap since Reset.
class OffsetWatch {
 public:
  OffsetWatch(const KafkaClientOptions& client, const std::string& group, const std::string& topic)
      : topic_(topic) {
    ConsumerOptions co;
    co.client = client;
    co.group_id = group;  // (never subscribes: only reads the group's offsets)
    c_ = std::move(*KafkaConsumer::Create(co));
    thread_ = std::thread([this] { Loop(); });
  }
  ~OffsetWatch() {
    stop_.store(true);
    thread_.join();
    (void)c_->Close();
  }
  void Reset() {
    absl::MutexLock l(&mu_);
    for (auto& p : parts_) p.max_gap = absl::ZeroDuration();
  }
  std::vector<absl::Duration> MaxGaps() {
    absl::MutexLock l(&mu_);
    std::vector<absl::Duration> out;
    const absl::Time now = absl::Now();
    for (auto& p : parts_) out.push_back(std::max(p.max_gap, now - p.advanced));
    return out;
  }

 private:
  struct Part {
    int64_t offset = -1;
    absl::Time advanced = absl::Now();
    absl::Duration max_gap;
  };
  void Loop() {
    while (!stop_.load()) {
      // One partition per request: a partition whose offsets a transaction holds pending fails
      // its own read only.
      for (int32_t p = 0; p < kPartitions; ++p) {
        auto c = c_->Committed({{topic_, p}}, absl::Seconds(5));
        const absl::Time now = absl::Now();
        if (!c.ok() || c->empty()) continue;
        absl::MutexLock l(&mu_);
        Part& part = parts_[p];
        if ((*c)[0].offset > part.offset) {
          if (part.offset >= 0) part.max_gap = std::max(part.max_gap, now - part.advanced);
          part.offset = (*c)[0].offset;
          part.advanced = now;
        }
      }
      absl::SleepFor(absl::Milliseconds(50));
    }
  }

  const std::string topic_;
  std::unique_ptr<KafkaConsumer> c_;
  absl::Mutex mu_;
  std::vector<Part> parts_ = std::vector<Part>(kPartitions);
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

struct Instance {
  std::unique_ptr<aggregator::Aggregator> a;
  uint64_t final_records = 0;  // once stopped
};

std::unique_ptr<aggregator::Aggregator> StartInstance(const KafkaClientOptions& client,
                                                      std::shared_ptr<Config> config, int i,
                                                      const std::string& dir) {
  aggregator::AggregatorOptions o;
  o.config = config;
  o.client = client;
  o.instance_id = absl::StrCat("rb-", i);
  o.state_dir = absl::StrCat(dir, "/", i);
  auto a = aggregator::Aggregator::Create(o);
  if (!a.ok() || !(*a)->Start().ok()) {
    std::fprintf(stderr, "aggregator %d did not start\n", i);
    std::exit(1);
  }
  return std::move(*a);
}

// partition -> owning instance (-1: none).
std::vector<int> Owners(const std::vector<Instance>& in) {
  std::vector<int> owner(kPartitions, -1);
  for (size_t i = 0; i < in.size(); ++i) {
    if (!in[i].a) continue;
    for (int32_t p : in[i].a->counters().partitions) owner[p] = static_cast<int>(i);
  }
  return owner;
}

uint64_t Records(const std::vector<Instance>& in) {
  uint64_t n = 0;
  for (const Instance& i : in) n += i.a ? i.a->counters().records : i.final_records;
  return n;
}

// Runs one phase after a change made at `changed` and prints its figures.
void Report(const char* name, std::vector<Instance>& in, const std::vector<int>& before,
            const std::vector<absl::Duration>& gaps_before, OffsetWatch& watch,
            const std::atomic<uint64_t>& produced, int phase_s) {
  const uint64_t r0 = Records(in), p0 = produced.load();
  const absl::Time t0 = absl::Now();
  absl::SleepFor(absl::Seconds(phase_s));
  const double secs = absl::ToDoubleSeconds(absl::Now() - t0);
  const std::vector<int> after = Owners(in);
  const std::vector<absl::Duration> gaps = watch.MaxGaps();
  std::printf("\n%s: records/s committed %.0f (produced %.0f/s)\n", name, (Records(in) - r0) / secs,
              (produced.load() - p0) / secs);
  std::printf("  partition  owner     longest commit gap (before -> after)  restore\n");
  absl::Duration unmoved_max, moved_max;
  for (int p = 0; p < kPartitions; ++p) {
    const bool moved = before[p] != after[p];
    std::string restore = "-";
    if (moved && after[p] >= 0) {
      restore = absl::StrFormat("%.2f s", in[after[p]].a->counters().last_restore_seconds);
    }
    std::printf("  %9d  %d -> %-2d  %8.2f s -> %8.2f s %s     %s\n", p, before[p], after[p],
                absl::ToDoubleSeconds(gaps_before[p]), absl::ToDoubleSeconds(gaps[p]),
                moved ? "moved" : "     ", restore.c_str());
    (moved ? moved_max : unmoved_max) = std::max(moved ? moved_max : unmoved_max, gaps[p]);
  }
  std::printf("  longest gap: partitions that did not move %.2f s, that moved %.2f s\n",
              absl::ToDoubleSeconds(unmoved_max), absl::ToDoubleSeconds(moved_max));
}

int Main(int argc, char** argv) {
  Args a;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--brokers") {
      a.brokers = v;
    } else if (k == "--units" && absl::SimpleAtoi(v, &a.units)) {
    } else if (k == "--rate" && absl::SimpleAtoi(v, &a.rate)) {
    } else if (k == "--phase-s" && absl::SimpleAtoi(v, &a.phase_s)) {
    } else {
      std::fprintf(stderr,
                   "usage: rebalance_bench [--brokers HOST:PORT] [--units N] [--rate R] "
                   "[--phase-s S]\n");
      return 2;
    }
  }
  if (a.brokers.empty()) {
    const char* dir = std::getenv("CYBERSYN_TEST_KAFKA_DIR");
    std::ifstream in(absl::StrCat(dir ? dir : "build/test-kafka", "/bootstrap"));
    std::getline(in, a.brokers);
  }
  spdlog::set_level(std::getenv("REBALANCE_BENCH_INFO") ? spdlog::level::info
                                                        : spdlog::level::warn);
  const KafkaClientOptions client{a.brokers, {}};
  const std::string prefix = absl::StrCat("rb", absl::ToUnixMillis(absl::Now()));
  auto config = MakeConfig(a, prefix);
  const TopicNames topics(prefix);
  const std::string dir = absl::StrCat("/tmp/", prefix);
  std::printf("rebalance_bench: %d series, %d records/s, %d partitions, phases of %d s\n",
              5 * 10 * a.units * 4, a.rate, kPartitions, a.phase_s);

  // The topics first: the producer below would otherwise auto-create records with the
  // broker's default partition count while the instances create theirs.
  if (absl::Status s = EnsureTopics(client, DeploymentTopics(topics, kPartitions, 1)); !s.ok()) {
    std::fprintf(stderr, "creating topics: %s\n", s.ToString().c_str());
    return 1;
  }
  std::vector<Instance> in(3);
  in[0].a = StartInstance(client, config, 0, dir);
  in[1].a = StartInstance(client, config, 1, dir);
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> produced{0};
  std::thread producer([&] { Produce(client, *config, topics.records, a.rate, stop, &produced); });
  OffsetWatch watch(client, absl::StrCat(prefix, ".aggregator"), topics.records);
  absl::SleepFor(absl::Seconds(a.phase_s));  // warm-up: every series has state
  watch.Reset();
  absl::SleepFor(absl::Seconds(a.phase_s / 2));
  std::vector<absl::Duration> gaps = watch.MaxGaps();
  std::vector<int> owners = Owners(in);

  watch.Reset();
  in[2].a = StartInstance(client, config, 2, dir);
  Report("2 -> 3 aggregators", in, owners, gaps, watch, produced, a.phase_s);

  watch.Reset();
  absl::SleepFor(absl::Seconds(a.phase_s / 2));
  gaps = watch.MaxGaps();
  owners = Owners(in);
  watch.Reset();
  std::printf("\ninstance 2 stopped: %s\n", in[2].a->Stop().ToString().c_str());
  in[2].final_records = in[2].a->counters().records;
  in[2].a.reset();
  Report("3 -> 2 aggregators", in, owners, gaps, watch, produced, a.phase_s);

  stop.store(true);
  producer.join();
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i].a) std::printf("instance %zu stopped: %s\n", i, in[i].a->Stop().ToString().c_str());
  }
  std::filesystem::remove_all(dir);
  return 0;
}

}  // namespace
}  // namespace cybersyn

int main(int argc, char** argv) { return cybersyn::Main(argc, argv); }
