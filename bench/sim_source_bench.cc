// The gateway's source path without the publisher: CPU ns per record of the `bench` simulator
// preset (4 sectors x 5 enterprises x 10 units x 4 indicators) through SimSource::NextRef
// (simulate and validate), and as the baseline measured in the same run, one tick of its records
// replayed from memory (cache-resident) through the same virtual interface: the cost of a source
// that has its records already. Each reports ns_per_record (thread CPU); BM_SimSource also
// vs_replay (its cost over the replay's). For profiling the source thread without a broker.
#include <time.h>

#include <memory>
#include <string>
#include <vector>

#include "benchmark/benchmark.h"
#include "common/clock.h"
#include "ingest/record_source.h"

namespace cybersyn::ingest {
namespace {

constexpr uint64_t kRecords = 1'000'000;

double ThreadCpuSeconds() {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

const Config& BenchConfig() {
  static const Config* c = new Config(*LoadConfigString(SyntheticConfigYaml(4, 5, 10), "b.yaml"));
  return *c;
}

SimulatorOptions BenchOptions() {
  SimulatorOptions o = *SimulatorPreset("bench");
  o.max_records = kRecords;
  return o;
}

// The baseline: pre-made records, one after the other, through RecordSource::NextRef.
class ReplaySource : public RecordSource {
 public:
  ReplaySource(std::vector<RecordRef> refs, std::vector<const Hierarchy::Node*> ents)
      : refs_(std::move(refs)), ents_(std::move(ents)) {}
  Result Next(v1::Record*, const Hierarchy::Node**, RecordError*) override { return Result::kEnd; }
  Result NextRef(RecordRef* out, const Hierarchy::Node** enterprise, RecordError*) override {
    if (n_ == kRecords) return Result::kEnd;
    ++n_;
    *out = refs_[i_];
    *enterprise = ents_[i_];
    if (++i_ == refs_.size()) i_ = 0;
    return Result::kRecord;
  }
  std::string Identity() const override { return ""; }
  std::string Position() const override { return ""; }
  absl::Status Seek(absl::string_view) override { return absl::OkStatus(); }
  void Rewind() { i_ = n_ = 0; }

 private:
  std::vector<RecordRef> refs_;
  std::vector<const Hierarchy::Node*> ents_;
  size_t i_ = 0;
  uint64_t n_ = 0;
};

// Drains `src`, touching every field as an encoder would; returns records and a checksum.
uint64_t Drain(RecordSource& src, double* sum) {
  RecordRef ref;
  const Hierarchy::Node* ent = nullptr;
  RecordError err;
  uint64_t n = 0;
  while (true) {
    const RecordSource::Result r = src.NextRef(&ref, &ent, &err);
    if (r == RecordSource::Result::kEnd) break;
    if (r == RecordSource::Result::kError) continue;
    *sum += ref.value + static_cast<double>(ref.event_time_ms & 1) +
            static_cast<double>(ref.node.size() + ref.indicator.size() + ent->path.size());
    ++n;
  }
  return n;
}

double replay_ns = 0;

void BM_Replay(benchmark::State& state) {
  const Config& config = BenchConfig();
  RecordValidator v(config, Clock::Real());
  SimulatorOptions o = BenchOptions();
  o.max_records = 4 * 5 * 10 * 4;  // one tick
  auto sim = SimulatorSource(config, o, "sim:bench", &v, Clock::Real());
  std::vector<RecordRef> refs;
  std::vector<const Hierarchy::Node*> ents;
  // The refs point into `sim`'s strings, alive until the end of this function.
  {
    RecordRef ref;
    const Hierarchy::Node* ent = nullptr;
    RecordError err;
    while ((*sim)->NextRef(&ref, &ent, &err) == RecordSource::Result::kRecord) {
      refs.push_back(ref);
      ents.push_back(ent);
    }
  }
  ReplaySource replay(std::move(refs), std::move(ents));
  double sum = 0;
  uint64_t n = 0;
  const double t0 = ThreadCpuSeconds();
  for (auto _ : state) {
    replay.Rewind();
    n += Drain(replay, &sum);
  }
  const double ns = (ThreadCpuSeconds() - t0) * 1e9 / static_cast<double>(n);
  replay_ns = ns;
  benchmark::DoNotOptimize(sum);
  state.counters["ns_per_record"] = ns;
}
BENCHMARK(BM_Replay)->Unit(benchmark::kMillisecond)->MinTime(1.0);

void BM_SimSource(benchmark::State& state) {
  const Config& config = BenchConfig();
  RecordValidator v(config, Clock::Real());
  double sum = 0;
  uint64_t n = 0;
  double secs = 0;
  for (auto _ : state) {
    state.PauseTiming();
    auto src = SimulatorSource(config, BenchOptions(), "sim:bench", &v, Clock::Real());
    state.ResumeTiming();
    const double t0 = ThreadCpuSeconds();
    n += Drain(**src, &sum);
    secs += ThreadCpuSeconds() - t0;
  }
  benchmark::DoNotOptimize(sum);
  const double ns = secs * 1e9 / static_cast<double>(n);
  state.counters["ns_per_record"] = ns;
  if (replay_ns > 0) state.counters["vs_replay"] = ns / replay_ns;
}
BENCHMARK(BM_SimSource)->Unit(benchmark::kMillisecond)->MinTime(2.0);

}  // namespace
}  // namespace cybersyn::ingest

BENCHMARK_MAIN();
