// Simulator: synthetic plants for demos, tests and benchmarks. Every leaf (unit) of the config's
// hierarchy reports every configured indicator once per `interval` of event time. Each series has
// its own level, a daily cycle (phase shared by the units of one enterprise), noise that is partly
// common to the units of an enterprise (correlated units) and, at seeded random times, labelled
// faults: step (level shift for a while), slope (linear drift), transient (one-sample spike) and
// outage (no data). What was injected is kept as ground truth (WriteTruthCsv).
//
// Deterministic: the same hierarchy, indicators and options give the same samples, bit for bit.
// Noise and faults draw from separate random streams, so a run with faults disabled yields the
// fault-free baseline of the same seed (tests use this to check the truth exactly).
//
// Pacing (wall-clock speed) is not done here: `speedup` is a hint for the live source that pulls
// from the simulator. Per-gateway sequence numbers are not assigned here either.
//
// Thread-safety: a Simulator is used by one thread at a time.
#ifndef CYBERSYN_INGEST_SIMULATOR_H_
#define CYBERSYN_INGEST_SIMULATOR_H_

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/config.h"
#include "common/hierarchy.h"
#include "cybersyn/v1/record.pb.h"

namespace cybersyn::ingest {

enum class FaultKind { kStep = 0, kSlope = 1, kTransient = 2, kOutage = 3 };
// "step", "slope", "transient", "outage".
std::string_view FaultKindName(FaultKind kind);

// One injected fault. Samples with start_ms <= time < end_ms are affected: step adds `size`,
// slope adds size * (time - start) / (end - start), transient adds `size` (end = start +
// interval: exactly one sample), outage emits nothing (size 0). `size` is in the indicator's unit.
struct InjectedFault {
  std::string node;
  std::string indicator;
  FaultKind kind = FaultKind::kStep;
  int64_t start_ms = 0;
  int64_t end_ms = 0;
  double size = 0;
  bool operator==(const InjectedFault&) const = default;
};

struct SimulatorOptions {
  uint64_t seed = 1;
  // Event time of the first sample; 0 means "now" (the live source fills it in from its clock).
  int64_t start_ms = 0;
  absl::Duration interval = absl::Seconds(1);  // event time between two samples of one series
  // Wall-clock pacing for live sources: event time runs `speedup` times faster than wall time;
  // 0 = as fast as possible.
  double speedup = 0;
  // From this event time on, a paced source runs in real time (speedup 1): one simulation, the
  // same plants, replayed quickly up to here and live after it (the demo). 0: `speedup` throughout.
  int64_t realtime_from_ms = 0;
  uint64_t max_records = 0;                        // stop after this many samples; 0 = no limit
  absl::Duration duration = absl::ZeroDuration();  // stop at start + duration; 0 = no limit
  // Empty = every indicator of the config, in config order.
  std::vector<std::string> indicators;

  // Series shape, relative to each series' level.
  double noise = 0.02;            // standard deviation of the noise
  double daily_amplitude = 0.15;  // amplitude of the daily cycle
  double correlation = 0.6;       // share of noise common to the units of an enterprise, 0..1

  // Faults. Each series starts faults as a Poisson process with this rate (0 disables them).
  double faults_per_series_per_day = 2;
  std::array<double, 4> fault_weights = {0.4, 0.2, 0.3, 0.1};  // indexed by FaultKind
  double fault_size_min = 4;  // |size| in noise standard deviations (level * noise)
  double fault_size_max = 8;
  absl::Duration fault_min_duration = absl::Minutes(5);  // step, slope and outage
  absl::Duration fault_max_duration = absl::Minutes(30);
};

// Presets: "small" (the demo: real-time pacing, 1 s interval, a fault per series every ~20 min
// lasting 30 s..3 min, so signals show up within a minute or two) and "bench" (unpaced, no limit,
// faults at the default rate). InvalidArgument names the valid presets.
absl::StatusOr<SimulatorOptions> SimulatorPreset(std::string_view name);

// A preset name, or a YAML file of overrides on top of a preset:
//   preset: small            # base (default small)
//   seed: 7
//   start: 2024-05-01T00:00:00Z   # or epoch milliseconds
//   interval: 1s
//   speedup: 60
//   count: 100000            # max_records
//   duration: 1h
//   indicators: [output, energy]
//   noise: 0.02
//   daily_amplitude: 0.15
//   correlation: 0.6
//   faults: {per_series_per_day: 2, step: 0.4, slope: 0.2, transient: 0.3, outage: 0.1,
//            size_min: 4, size_max: 8, min_duration: 5m, max_duration: 30m}
// Errors are InvalidArgument "<file>: <key>: <problem>".
absl::StatusOr<SimulatorOptions> LoadSimulatorOptions(const std::string& preset_or_path);

// A generated configuration for benchmarks and tests: nation "sim" with `sectors` sectors of
// `enterprises` enterprises of `units` units each, indicators output/capacity/potential/energy,
// Kafka bootstrap `bootstrap`. Valid input for LoadConfigString.
std::string SyntheticConfigYaml(int sectors, int enterprises, int units,
                                std::string_view bootstrap = "embedded");

class Simulator {
 public:
  struct Series {
    const Hierarchy::Node* unit = nullptr;
    const Hierarchy::Node* enterprise = nullptr;  // the unit's enterprise (or its parent)
    std::string indicator;
    double level = 0;
  };
  // One generated sample: series index into series(), event time and value.
  struct Sample {
    uint32_t series = 0;
    int64_t time_ms = 0;
    double value = 0;
  };

  // Series are the hierarchy's leaves x indicators. InvalidArgument for an unknown indicator in
  // options.indicators, a config without leaves or indicators, or out-of-range options.
  static absl::StatusOr<std::unique_ptr<Simulator>> Create(const Config& config,
                                                           SimulatorOptions options);
  static absl::StatusOr<std::unique_ptr<Simulator>> Create(
      std::shared_ptr<const Hierarchy> hierarchy, std::vector<std::string> indicators,
      SimulatorOptions options);

  // The next sample; false when max_records or duration is reached. Fast (no allocation): the
  // values of a whole tick are computed when it starts (BeginTick), so a sample of a series with
  // no fault active or due is an array read, inline here; the rest takes NextSampleSlow.
  bool NextSample(Sample* out) {
    const uint32_t i = next_series_;
    if (tick_started_ && i + 1 < tick_values_.size() && emitted_ < limit_ &&
        tick_ms_ < calm_until_[i]) {
      out->series = i;
      out->time_ms = tick_ms_;
      out->value = tick_values_[i];
      next_series_ = i + 1;
      ++emitted_;
      return true;
    }
    return NextSampleSlow(out);
  }
  // The next sample as a Record (node, indicator, value, event time; no gateway id/sequence).
  bool Next(v1::Record* out);
  // Generates and discards samples until `records` were produced in total (resume after a
  // restart). Returns how many were produced in total (less when the run ended first).
  uint64_t SkipTo(uint64_t records);

  const std::vector<Series>& series() const { return series_; }
  const SimulatorOptions& options() const { return options_; }
  // Faults that started so far (start_ms <= current tick), in start order.
  const std::vector<InjectedFault>& faults() const { return faults_; }
  uint64_t records_emitted() const { return emitted_; }
  // Event time of the tick being emitted (the next sample's time, or the last one's).
  int64_t tick_ms() const { return tick_ms_; }
  bool done() const { return done_; }

  // CSV "node,indicator,kind,start,end,size" (header first; start/end in epoch ms).
  static std::string TruthCsv(const std::vector<InjectedFault>& faults);
  static absl::Status WriteTruthCsv(const std::vector<InjectedFault>& faults,
                                    const std::string& path);

 private:
  struct Rng {
    uint64_t s[4];
    void Seed(uint64_t seed);
    uint64_t Next();
    double Uniform();                  // [0, 1)
    double Normal();                   // standard normal (ziggurat)
    double NormalSlow(uint64_t bits);  // Normal's rare cases (tail, wedge), from its first draw
  };
  struct SeriesState {
    int enterprise_index = 0;
    double sigma = 0;  // level * noise, in value units
    int64_t next_fault_ms = 0;
    int active_fault = -1;  // index into faults_, or -1
  };

  Simulator() = default;
  absl::Status Init();
  // Starts the tick: the enterprises' common noise and daily cycle, then every series' fault-free
  // value (noise drawn in series order, so the stream is the one a per-sample draw gives).
  void BeginTick();
  bool NextSampleSlow(Sample* out);
  // calm_until_[i] for series i after its fault state changed.
  void UpdateCalm(uint32_t i);
  void ScheduleNextFault(SeriesState& st, int64_t after_ms);
  void StartFault(uint32_t series, SeriesState& st);

  SimulatorOptions options_;
  std::shared_ptr<const Hierarchy> hierarchy_;
  std::vector<std::string> indicators_;
  std::vector<Series> series_;
  std::vector<SeriesState> state_;
  std::vector<double> enterprise_common_;  // AR(1) per enterprise
  std::vector<double> enterprise_daily_;   // daily-cycle factor at this tick
  std::vector<double> enterprise_phase_;
  std::vector<InjectedFault> faults_;
  Rng noise_rng_;
  Rng fault_rng_;
  int64_t interval_ms_ = 1000;
  int64_t end_ms_ = 0;  // 0 = unbounded
  int64_t tick_ms_ = 0;
  uint32_t next_series_ = 0;
  bool tick_started_ = false;
  // Per series, indexed like series_: the value of the current tick without faults, and the
  // event time from which the series needs NextSampleSlow (a fault active: INT64_MIN; else its
  // next fault's start).
  std::vector<double> tick_values_;
  std::vector<int64_t> calm_until_;
  uint64_t limit_ = UINT64_MAX;  // max_records, or no limit
  uint64_t emitted_ = 0;
  bool done_ = false;
  double fault_mean_gap_ms_ = 0;
  double own_share_ = 1;  // sqrt(1 - correlation^2): the share of a series' own noise
};

}  // namespace cybersyn::ingest

#endif  // CYBERSYN_INGEST_SIMULATOR_H_
