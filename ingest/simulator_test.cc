#include "ingest/simulator.h"

#include <cmath>
#include <fstream>
#include <limits>
#include <map>
#include <set>
#include <string>
#include <tuple>

#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace cybersyn::ingest {
namespace {

using ::testing::HasSubstr;

Config TestConfig(int sectors = 2, int enterprises = 2, int units = 3) {
  absl::StatusOr<Config> c =
      LoadConfigString(SyntheticConfigYaml(sectors, enterprises, units), "synthetic.yaml");
  EXPECT_TRUE(c.ok()) << c.status();
  return *std::move(c);
}

SimulatorOptions Opts(uint64_t seed) {
  SimulatorOptions o = *SimulatorPreset("bench");
  o.seed = seed;
  o.start_ms = 1'714'521'600'000;  // 2024-05-01T00:00:00Z
  o.interval = absl::Seconds(10);
  o.faults_per_series_per_day = 20;
  o.fault_min_duration = absl::Minutes(1);
  o.fault_max_duration = absl::Minutes(10);
  return o;
}

std::string RunBytes(const Config& config, SimulatorOptions o, std::string* truth = nullptr) {
  auto sim = Simulator::Create(config, o);
  EXPECT_TRUE(sim.ok()) << sim.status();
  std::string bytes;
  v1::Record r;
  while ((*sim)->Next(&r)) bytes += r.SerializeAsString();
  if (truth != nullptr) *truth = Simulator::TruthCsv((*sim)->faults());
  return bytes;
}

TEST(SimulatorTest, SameSeedSameBytesDifferentSeedDifferentBytes) {
  const Config config = TestConfig();
  SimulatorOptions o = Opts(42);
  o.max_records = 50'000;
  std::string truth1, truth2, truth3;
  const std::string a = RunBytes(config, o, &truth1);
  const std::string b = RunBytes(config, o, &truth2);
  EXPECT_FALSE(a.empty());
  EXPECT_EQ(a, b);
  EXPECT_EQ(truth1, truth2);
  o.seed = 43;
  const std::string c = RunBytes(config, o, &truth3);
  EXPECT_NE(a, c);
  EXPECT_NE(truth1, truth3);
}

TEST(SimulatorTest, SeriesAreLeavesTimesIndicatorsAndTicksAdvance) {
  const Config config = TestConfig(1, 2, 2);
  SimulatorOptions o = Opts(1);
  o.faults_per_series_per_day = 0;
  o.duration = absl::Seconds(30);  // 3 ticks of 10 s
  auto sim = Simulator::Create(config, o);
  ASSERT_TRUE(sim.ok()) << sim.status();
  EXPECT_EQ((*sim)->series().size(), 4u * 4u);
  EXPECT_EQ((*sim)->series()[0].enterprise->path, "sim/s0/e0");
  v1::Record r;
  std::map<int64_t, int> per_tick;
  while ((*sim)->Next(&r)) {
    ++per_tick[r.event_time_ms()];
    EXPECT_TRUE(std::isfinite(r.value()));
    EXPECT_NE(config.hierarchy->Find(r.node()), nullptr);
  }
  EXPECT_EQ(per_tick.size(), 3u);
  for (const auto& [t, n] : per_tick) EXPECT_EQ(n, 16) << t;
  EXPECT_EQ(per_tick.begin()->first, o.start_ms);
  EXPECT_EQ((*sim)->records_emitted(), 48u);
}

// The noise generator (a ziggurat) must be a standard normal: moments, the share beyond 2
// sigma and the far tail (beyond the ziggurat's base layer at 3.44, drawn by a separate method).
TEST(SimulatorTest, NoiseIsStandardNormal) {
  const Config config = TestConfig(1, 2, 2);
  SimulatorOptions o = Opts(5);
  o.faults_per_series_per_day = 0;
  o.daily_amplitude = 0;
  o.correlation = 0;  // the noise is the series' own draw only
  o.max_records = 400'000;
  auto sim = Simulator::Create(config, o);
  ASSERT_TRUE(sim.ok());
  double n = 0, sum = 0, sum2 = 0, sum4 = 0, beyond2 = 0, beyond35 = 0;
  Simulator::Sample s;
  while ((*sim)->NextSample(&s)) {
    const auto& series = (*sim)->series()[s.series];
    const double z = (s.value - series.level) / (series.level * o.noise);
    n += 1;
    sum += z;
    sum2 += z * z;
    sum4 += z * z * z * z;
    beyond2 += std::abs(z) > 2;
    beyond35 += std::abs(z) > 3.5;
  }
  ASSERT_EQ(n, 400'000);
  EXPECT_NEAR(sum / n, 0, 0.01);
  EXPECT_NEAR(sum2 / n, 1, 0.015);
  EXPECT_NEAR(sum4 / n, 3, 0.1);
  EXPECT_NEAR(beyond2 / n, 0.0455, 0.002);
  EXPECT_NEAR(beyond35 / n, 4.65e-4, 1.2e-4);  // 186 expected, sd 14
}

TEST(SimulatorTest, UnitsOfOneEnterpriseAreCorrelated) {
  const Config config = TestConfig(1, 2, 2);
  SimulatorOptions o = Opts(3);
  o.faults_per_series_per_day = 0;
  o.daily_amplitude = 0;
  o.correlation = 0.8;
  o.indicators = {"output"};
  o.max_records = 4 * 5000;
  auto sim = Simulator::Create(config, o);
  ASSERT_TRUE(sim.ok());
  std::vector<std::vector<double>> z(4);
  Simulator::Sample s;
  while ((*sim)->NextSample(&s)) {
    const auto& series = (*sim)->series()[s.series];
    z[s.series].push_back((s.value - series.level) / (series.level * o.noise));
  }
  auto corr = [&](int a, int b) {
    double sab = 0, saa = 0, sbb = 0;
    for (size_t i = 0; i < z[a].size(); ++i) {
      sab += z[a][i] * z[b][i];
      saa += z[a][i] * z[a][i];
      sbb += z[b][i] * z[b][i];
    }
    return sab / std::sqrt(saa * sbb);
  };
  // Same enterprise (0,1): rho^2 = 0.64; different enterprises (0,2): about 0.
  EXPECT_NEAR(corr(0, 1), 0.64, 0.1);
  EXPECT_NEAR(corr(0, 2), 0.0, 0.15);
}

// Faults draw from their own random stream: a run with faults and the same seed without them
// differ exactly by what the ground truth says.
TEST(SimulatorTest, GroundTruthMatchesInjectedDeviations) {
  const Config config = TestConfig(1, 2, 2);
  SimulatorOptions with = Opts(7);
  with.duration = absl::Hours(12);
  with.fault_weights = {1, 1, 1, 1};
  SimulatorOptions without = with;
  without.faults_per_series_per_day = 0;

  auto a = Simulator::Create(config, with);
  auto b = Simulator::Create(config, without);
  ASSERT_TRUE(a.ok() && b.ok());
  using Key = std::tuple<uint32_t, int64_t>;
  std::map<Key, double> base, faulty;
  Simulator::Sample s;
  while ((*b)->NextSample(&s)) base[{s.series, s.time_ms}] = s.value;
  while ((*a)->NextSample(&s)) faulty[{s.series, s.time_ms}] = s.value;
  const auto& faults = (*a)->faults();
  std::set<FaultKind> kinds;
  for (const auto& f : faults) kinds.insert(f.kind);
  EXPECT_EQ(kinds.size(), 4u) << "every kind injected in 12 h";

  // Expected deviation per (series, time) from the truth.
  std::map<std::string, uint32_t> index;
  for (uint32_t i = 0; i < (*a)->series().size(); ++i) {
    index[(*a)->series()[i].unit->path + "|" + (*a)->series()[i].indicator] = i;
  }
  std::map<Key, double> expected;
  std::set<Key> missing;
  for (const auto& f : faults) {
    const uint32_t i = index.at(f.node + "|" + f.indicator);
    for (int64_t t = f.start_ms; t < f.end_ms; t += 10'000) {
      if (!base.contains({i, t})) continue;  // past the end of the run
      switch (f.kind) {
        case FaultKind::kOutage:
          missing.insert({i, t});
          break;
        case FaultKind::kSlope:
          expected[{i, t}] = f.size * (t - f.start_ms) / double(f.end_ms - f.start_ms);
          break;
        default:
          expected[{i, t}] = f.size;
      }
    }
  }
  int checked = 0;
  for (const auto& [key, v] : base) {
    if (missing.contains(key)) {
      EXPECT_FALSE(faulty.contains(key));
      continue;
    }
    ASSERT_TRUE(faulty.contains(key));
    const double want = expected.contains(key) ? expected[key] : 0.0;
    EXPECT_NEAR(faulty[key] - v, want, 1e-3 * (1 + std::abs(want)));
    ++checked;
  }
  EXPECT_EQ(faulty.size() + missing.size(), base.size());
  EXPECT_GT(checked, 10000);

  // The CSV carries the same facts.
  const std::string csv = Simulator::TruthCsv(faults);
  std::vector<std::string> lines = absl::StrSplit(csv, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), faults.size() + 1);
  EXPECT_EQ(lines[0], "node,indicator,kind,start,end,size");
  std::vector<std::string> f0 = absl::StrSplit(lines[1], ',');
  ASSERT_EQ(f0.size(), 6u);
  EXPECT_EQ(f0[0], faults[0].node);
  EXPECT_EQ(f0[2], FaultKindName(faults[0].kind));
  EXPECT_EQ(f0[3], std::to_string(faults[0].start_ms));
}

TEST(SimulatorTest, SkipToResumesTheSameStream) {
  const Config config = TestConfig();
  SimulatorOptions o = Opts(9);
  o.max_records = 20'000;
  auto full = Simulator::Create(config, o);
  auto resumed = Simulator::Create(config, o);
  ASSERT_TRUE(full.ok() && resumed.ok());
  v1::Record r1, r2;
  for (int i = 0; i < 12'345; ++i) ASSERT_TRUE((*full)->Next(&r1));
  EXPECT_EQ((*resumed)->SkipTo(12'345), 12'345u);
  while ((*full)->Next(&r1)) {
    ASSERT_TRUE((*resumed)->Next(&r2));
    ASSERT_EQ(r1.SerializeAsString(), r2.SerializeAsString());
  }
  EXPECT_FALSE((*resumed)->Next(&r2));
}

// The stream is part of the contract: a gateway restarted with a newer binary resumes a sim:
// source at its stored position (SkipTo), so the samples after it must be the ones the old
// binary would have produced. FNV-1a of the serialized records and the truth CSV of a fixed run
// (faults of every kind, outages included).
TEST(SimulatorTest, StreamIsStableAcrossVersions) {
  const Config config = TestConfig();
  SimulatorOptions o = Opts(21);
  o.max_records = 100'000;
  o.fault_weights = {1, 1, 1, 1};
  std::string truth;
  const std::string bytes = RunBytes(config, o, &truth);
  auto fnv = [](const std::string& s) {
    uint64_t h = 1469598103934665603ULL;
    for (unsigned char c : s) h = (h ^ c) * 1099511628211ULL;
    return h;
  };
  EXPECT_EQ(fnv(bytes), 17843225055050661412ULL);
  EXPECT_EQ(fnv(truth), 5058184976560001598ULL);
}

TEST(SimulatorTest, PresetsAndOptionErrors) {
  EXPECT_TRUE(SimulatorPreset("small").ok());
  EXPECT_TRUE(SimulatorPreset("bench").ok());
  EXPECT_THAT(LoadSimulatorOptions("nosuch").status().message(),
              HasSubstr("neither a simulator preset (small, bench) nor a readable file"));
  const Config config = TestConfig();
  SimulatorOptions o = Opts(1);
  o.indicators = {"nope"};
  EXPECT_THAT(Simulator::Create(config, o).status().message(),
              HasSubstr("indicator \"nope\" is not in the config"));
  o = Opts(1);
  o.noise = std::numeric_limits<double>::infinity();
  EXPECT_THAT(Simulator::Create(config, o).status().message(), HasSubstr("must be finite"));
}

TEST(SimulatorTest, OptionsFileOverridesPreset) {
  const std::string path = ::testing::TempDir() + "/sim.yaml";
  {
    std::ofstream out(path);
    out << "preset: bench\nseed: 11\nstart: 2024-05-01T00:00:00Z\ninterval: 5s\ncount: 100\n"
           "faults: {per_series_per_day: 3, outage: 0, max_duration: 1h}\n";
  }
  auto o = LoadSimulatorOptions(path);
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->seed, 11u);
  EXPECT_EQ(o->start_ms, 1'714'521'600'000);
  EXPECT_EQ(o->interval, absl::Seconds(5));
  EXPECT_EQ(o->max_records, 100u);
  EXPECT_EQ(o->faults_per_series_per_day, 3);
  EXPECT_EQ(o->fault_weights[3], 0);
  EXPECT_EQ(o->fault_max_duration, absl::Hours(1));
  {
    std::ofstream out(path);
    out << "sede: 1\n";
  }
  EXPECT_EQ(LoadSimulatorOptions(path).status().message(), path + ": sede: unknown key");
}

}  // namespace
}  // namespace cybersyn::ingest
