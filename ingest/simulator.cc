#include "ingest/simulator.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <numbers>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/duration.h"
#include "common/time_grammar.h"
#include "yaml-cpp/yaml.h"

namespace cybersyn::ingest {
namespace {

constexpr int64_t kDayMs = 86'400'000;

absl::string_view Av(std::string_view s) { return absl::string_view(s.data(), s.size()); }

uint64_t SplitMix64(uint64_t& x) {
  uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

uint64_t Rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

// A stable hash of a string (FNV-1a), so a series' level depends on its name and the seed only.
uint64_t Fnv1a(std::string_view s) {
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return h;
}

}  // namespace

std::string_view FaultKindName(FaultKind kind) {
  switch (kind) {
    case FaultKind::kStep:
      return "step";
    case FaultKind::kSlope:
      return "slope";
    case FaultKind::kTransient:
      return "transient";
    case FaultKind::kOutage:
      return "outage";
  }
  return "unknown";
}

void Simulator::Rng::Seed(uint64_t seed) {
  uint64_t x = seed;
  for (uint64_t& v : s) v = SplitMix64(x);
}

uint64_t Simulator::Rng::Next() {  // xoshiro256**
  const uint64_t result = Rotl(s[1] * 5, 7) * 9;
  const uint64_t t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = Rotl(s[3], 45);
  return result;
}

double Simulator::Rng::Uniform() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }

namespace {

// Ziggurat tables (Marsaglia & Tsang 2000, 128 layers, in Doornik's formulation): x[i] are the
// layer edges, ratio[i] = x[i+1] / x[i] the share of layer i that lies fully under the density.
// About 98% of draws take one 64-bit random number, a compare and a multiply: Box-Muller's log,
// sqrt and sincos per pair cost as much as encoding the record.
struct Ziggurat {
  static constexpr int kLayers = 128;
  static constexpr double kR = 3.442619855899;       // start of the tail
  static constexpr double kV = 9.91256303526217e-3;  // area of each layer
  double x[kLayers + 1];
  double ratio[kLayers];
  Ziggurat() {
    double f = std::exp(-0.5 * kR * kR);
    x[0] = kV / f;
    x[1] = kR;
    x[kLayers] = 0;
    for (int i = 2; i < kLayers; ++i) {
      x[i] = std::sqrt(-2 * std::log(kV / x[i - 1] + f));
      f = std::exp(-0.5 * x[i] * x[i]);
    }
    for (int i = 0; i < kLayers; ++i) ratio[i] = x[i + 1] / x[i];
  }
};

const Ziggurat& ZigguratTables() {
  static const Ziggurat z;
  return z;
}

// Rng::Normal's common case, inline for BeginTick's loop over every series (a call per draw and
// the tables' guard check were a third of the tick's time).
template <typename Rng>
inline double FastNormal(Rng& rng, const Ziggurat& z) {
  const uint64_t bits = rng.Next();
  const int i = static_cast<int>(bits & (Ziggurat::kLayers - 1));
  const double u = 2.0 * (static_cast<double>(bits >> 11) * 0x1.0p-53) - 1.0;  // (-1, 1)
  if (std::abs(u) < z.ratio[i]) [[likely]] {
    return u * z.x[i];  // inside the layer's rectangle
  }
  return rng.NormalSlow(bits);
}

}  // namespace

double Simulator::Rng::Normal() { return FastNormal(*this, ZigguratTables()); }

double Simulator::Rng::NormalSlow(uint64_t bits) {
  const Ziggurat& z = ZigguratTables();
  while (true) {
    const int i = static_cast<int>(bits & (Ziggurat::kLayers - 1));
    const double u = 2.0 * (static_cast<double>(bits >> 11) * 0x1.0p-53) - 1.0;  // (-1, 1)
    if (std::abs(u) < z.ratio[i]) return u * z.x[i];  // inside the layer's rectangle
    if (i == 0) {                                     // the tail beyond kR (Marsaglia's method)
      double t, y;
      do {
        double u1 = Uniform();
        double u2 = Uniform();
        if (u1 < 1e-300) u1 = 1e-300;
        if (u2 < 1e-300) u2 = 1e-300;
        t = std::log(u1) / Ziggurat::kR;
        y = std::log(u2);
      } while (-2 * y < t * t);
      return u < 0 ? t - Ziggurat::kR : Ziggurat::kR - t;
    }
    // The wedge between the rectangle and the density.
    const double xv = u * z.x[i];
    const double f0 = std::exp(-0.5 * (z.x[i] * z.x[i] - xv * xv));
    const double f1 = std::exp(-0.5 * (z.x[i + 1] * z.x[i + 1] - xv * xv));
    if (f1 + Uniform() * (f0 - f1) < 1.0) return xv;
    bits = Next();
  }
}

absl::StatusOr<SimulatorOptions> SimulatorPreset(std::string_view name) {
  SimulatorOptions o;
  if (name == "small") {
    o.speedup = 1;
    o.interval = absl::Seconds(1);
    o.faults_per_series_per_day = 72;  // one every ~20 minutes per series
    o.fault_min_duration = absl::Seconds(30);
    o.fault_max_duration = absl::Minutes(3);
    return o;
  }
  if (name == "bench") {
    o.speedup = 0;
    o.interval = absl::Seconds(1);
    return o;
  }
  return absl::InvalidArgumentError(absl::StrCat("unknown simulator preset \"", Av(name),
                                                 "\": expected small or bench, or a "
                                                 "path to a YAML file"));
}

absl::StatusOr<SimulatorOptions> LoadSimulatorOptions(const std::string& preset_or_path) {
  if (preset_or_path == "small" || preset_or_path == "bench")
    return SimulatorPreset(preset_or_path);
  std::ifstream in(preset_or_path);
  if (!in) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", preset_or_path,
                     "\" is neither a simulator preset (small, bench) nor a readable file"));
  }
  YAML::Node root;
  try {
    root = YAML::LoadFile(preset_or_path);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(preset_or_path, ": ", e.what()));
  }
  auto err = [&](absl::string_view key, absl::string_view problem) {
    return absl::InvalidArgumentError(absl::StrCat(preset_or_path, ": ", key, ": ", problem));
  };
  if (!root.IsMap()) return err("(top)", "expected a mapping of simulator options");
  std::string preset = "small";
  if (root["preset"]) preset = root["preset"].as<std::string>();
  absl::StatusOr<SimulatorOptions> base = SimulatorPreset(preset);
  if (!base.ok()) return err("preset", base.status().message());
  SimulatorOptions o = *base;
  try {
    auto dur = [&](const YAML::Node& n, absl::string_view key,
                   absl::Duration* out) -> absl::Status {
      absl::StatusOr<absl::Duration> d = ParseDuration(n.as<std::string>());
      if (!d.ok()) return err(key, d.status().message());
      *out = *d;
      return absl::OkStatus();
    };
    for (const auto& kv : root) {
      const std::string key = kv.first.as<std::string>();
      const YAML::Node& v = kv.second;
      absl::Status s;
      if (key == "preset") {
      } else if (key == "seed") {
        o.seed = v.as<uint64_t>();
      } else if (key == "start") {
        absl::StatusOr<EventTime> t = ParseEventTime(v.as<std::string>());
        if (!t.ok()) return err(key, t.status().message());
        o.start_ms = t->ms;
      } else if (key == "interval") {
        s = dur(v, key, &o.interval);
      } else if (key == "speedup") {
        o.speedup = v.as<double>();
      } else if (key == "count") {
        o.max_records = v.as<uint64_t>();
      } else if (key == "duration") {
        s = dur(v, key, &o.duration);
      } else if (key == "indicators") {
        o.indicators = v.as<std::vector<std::string>>();
      } else if (key == "noise") {
        o.noise = v.as<double>();
      } else if (key == "daily_amplitude") {
        o.daily_amplitude = v.as<double>();
      } else if (key == "correlation") {
        o.correlation = v.as<double>();
      } else if (key == "faults") {
        if (!v.IsMap()) return err(key, "expected a mapping");
        for (const auto& f : v) {
          const std::string fk = f.first.as<std::string>();
          const std::string path = absl::StrCat("faults.", fk);
          if (fk == "per_series_per_day") {
            o.faults_per_series_per_day = f.second.as<double>();
          } else if (fk == "step") {
            o.fault_weights[0] = f.second.as<double>();
          } else if (fk == "slope") {
            o.fault_weights[1] = f.second.as<double>();
          } else if (fk == "transient") {
            o.fault_weights[2] = f.second.as<double>();
          } else if (fk == "outage") {
            o.fault_weights[3] = f.second.as<double>();
          } else if (fk == "size_min") {
            o.fault_size_min = f.second.as<double>();
          } else if (fk == "size_max") {
            o.fault_size_max = f.second.as<double>();
          } else if (fk == "min_duration") {
            s = dur(f.second, path, &o.fault_min_duration);
          } else if (fk == "max_duration") {
            s = dur(f.second, path, &o.fault_max_duration);
          } else {
            return err(path, "unknown key");
          }
          if (!s.ok()) return s;
        }
      } else {
        return err(key, "unknown key");
      }
      if (!s.ok()) return s;
    }
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(preset_or_path, ": ", e.what()));
  }
  return o;
}

std::string SyntheticConfigYaml(int sectors, int enterprises, int units,
                                std::string_view bootstrap) {
  std::string y = absl::StrCat("kafka:\n  bootstrap: \"", Av(bootstrap),
                               "\"\n  partitions: 8\n"
                               "levels:\n"
                               "  - {name: nation, ack_within: 60s, resolve_within: 5m}\n"
                               "  - {name: sector, ack_within: 40s, resolve_within: 2m}\n"
                               "  - {name: enterprise, ack_within: 20s, resolve_within: 1m}\n"
                               "  - {name: unit, ack_within: 10s, resolve_within: 30s}\n"
                               "hierarchy:\n  sim:\n    children:\n");
  for (int s = 0; s < sectors; ++s) {
    absl::StrAppend(&y, "      s", s, ":\n        children:\n");
    for (int e = 0; e < enterprises; ++e) {
      absl::StrAppend(&y, "          e", e, ":\n            children:\n");
      for (int u = 0; u < units; ++u) absl::StrAppend(&y, "              u", u, ": {}\n");
    }
  }
  absl::StrAppend(&y,
                  "indicators:\n"
                  "  - {name: output, unit: t, rollup: sum, role: actuality}\n"
                  "  - {name: capacity, unit: t, rollup: sum, role: capability}\n"
                  "  - {name: potential, unit: t, rollup: sum, role: potentiality}\n"
                  "  - {name: energy, unit: MWh, rollup: sum}\n");
  return y;
}

absl::StatusOr<std::unique_ptr<Simulator>> Simulator::Create(const Config& config,
                                                             SimulatorOptions options) {
  std::vector<std::string> indicators;
  for (const IndicatorConfig& ind : config.indicators) indicators.push_back(ind.name);
  if (!options.indicators.empty()) {
    for (const std::string& name : options.indicators) {
      if (config.FindIndicator(name) == nullptr) {
        return absl::InvalidArgumentError(
            absl::StrCat("simulator: indicator \"", name, "\" is not in the config"));
      }
    }
    indicators = options.indicators;
  }
  return Create(config.hierarchy, std::move(indicators), std::move(options));
}

absl::StatusOr<std::unique_ptr<Simulator>> Simulator::Create(
    std::shared_ptr<const Hierarchy> hierarchy, std::vector<std::string> indicators,
    SimulatorOptions options) {
  std::unique_ptr<Simulator> sim(new Simulator());
  sim->hierarchy_ = std::move(hierarchy);
  sim->indicators_ = std::move(indicators);
  sim->options_ = std::move(options);
  if (absl::Status s = sim->Init(); !s.ok()) return s;
  return sim;
}

absl::Status Simulator::Init() {
  const SimulatorOptions& o = options_;
  if (hierarchy_ == nullptr || hierarchy_->leaves().empty()) {
    return absl::InvalidArgumentError("simulator: the hierarchy has no units");
  }
  if (indicators_.empty()) return absl::InvalidArgumentError("simulator: no indicators");
  interval_ms_ = absl::ToInt64Milliseconds(o.interval);
  if (interval_ms_ <= 0) {
    return absl::InvalidArgumentError("simulator: interval must be at least 1ms");
  }
  if (o.noise < 0 || o.daily_amplitude < 0 || o.correlation < 0 || o.correlation > 1 ||
      o.faults_per_series_per_day < 0 || o.fault_size_min < 0 ||
      o.fault_size_max < o.fault_size_min || o.fault_min_duration <= absl::ZeroDuration() ||
      o.fault_max_duration < o.fault_min_duration || o.speedup < 0) {
    return absl::InvalidArgumentError(
        "simulator: noise, daily_amplitude, fault rates and sizes must be >= 0, correlation in "
        "0..1, fault durations positive and min <= max");
  }
  for (double v : {o.noise, o.daily_amplitude, o.faults_per_series_per_day, o.fault_size_min,
                   o.fault_size_max, o.speedup}) {
    if (!std::isfinite(v)) {
      return absl::InvalidArgumentError(
          "simulator: noise, daily_amplitude, fault rate and sizes and speedup must be finite");
    }
  }
  double weights = 0;
  for (double w : o.fault_weights) {
    if (w < 0) return absl::InvalidArgumentError("simulator: fault weights must be >= 0");
    weights += w;
  }
  if (o.faults_per_series_per_day > 0 && weights <= 0) {
    return absl::InvalidArgumentError("simulator: faults enabled but every fault weight is 0");
  }
  if (series_.size() > UINT32_MAX) return absl::InvalidArgumentError("simulator: too many series");

  std::vector<const Hierarchy::Node*> enterprises;
  for (const Hierarchy::Node* leaf : hierarchy_->leaves()) {
    const Hierarchy::Node* ent = leaf->enterprise != nullptr ? leaf->enterprise : leaf->parent;
    if (ent == nullptr) ent = leaf;
    int ent_index = static_cast<int>(std::find(enterprises.begin(), enterprises.end(), ent) -
                                     enterprises.begin());
    if (ent_index == static_cast<int>(enterprises.size())) enterprises.push_back(ent);
    for (const std::string& ind : indicators_) {
      Series s;
      s.unit = leaf;
      s.enterprise = ent;
      s.indicator = ind;
      // Level: log-normal around 100, stable per (seed, node, indicator).
      uint64_t x = o.seed ^ Fnv1a(leaf->path) ^ (Fnv1a(ind) * 31);
      Rng r;
      r.Seed(x);
      s.level = 100.0 * std::exp(0.6 * r.Normal());
      SeriesState st;
      st.enterprise_index = ent_index;
      st.sigma = s.level * o.noise;
      series_.push_back(std::move(s));
      state_.push_back(st);
    }
  }
  noise_rng_.Seed(o.seed * 2 + 1);
  fault_rng_.Seed(o.seed * 2 + 2);
  Rng phase_rng;
  phase_rng.Seed(o.seed ^ 0x5eed);
  enterprise_common_.assign(enterprises.size(), 0.0);
  enterprise_daily_.assign(enterprises.size(), 0.0);
  for (size_t i = 0; i < enterprises.size(); ++i) {
    enterprise_phase_.push_back(2 * std::numbers::pi * phase_rng.Uniform());
    enterprise_common_[i] = phase_rng.Normal();
  }
  // Computed once: a square root per sample was a quarter of NextSample's time.
  own_share_ = std::sqrt(1 - o.correlation * o.correlation);
  tick_ms_ = o.start_ms;
  end_ms_ =
      o.duration > absl::ZeroDuration() ? o.start_ms + absl::ToInt64Milliseconds(o.duration) : 0;
  if (o.faults_per_series_per_day > 0) {
    fault_mean_gap_ms_ = static_cast<double>(kDayMs) / o.faults_per_series_per_day;
    for (SeriesState& st : state_) ScheduleNextFault(st, tick_ms_);
  }
  tick_values_.assign(series_.size(), 0.0);
  calm_until_.assign(series_.size(), 0);
  for (uint32_t i = 0; i < series_.size(); ++i) UpdateCalm(i);
  limit_ = o.max_records > 0 ? o.max_records : UINT64_MAX;
  return absl::OkStatus();
}

void Simulator::ScheduleNextFault(SeriesState& st, int64_t after_ms) {
  double u = fault_rng_.Uniform();
  if (u < 1e-12) u = 1e-12;
  const double gap = -std::log(u) * fault_mean_gap_ms_;
  st.next_fault_ms = after_ms + static_cast<int64_t>(std::min(gap, 1e15));
}

void Simulator::StartFault(uint32_t index, SeriesState& st) {
  const SimulatorOptions& o = options_;
  double total = 0;
  for (double w : o.fault_weights) total += w;
  double pick = fault_rng_.Uniform() * total;
  int kind = 0;
  for (; kind < 3; ++kind) {
    if (pick < o.fault_weights[kind]) break;
    pick -= o.fault_weights[kind];
  }
  while (o.fault_weights[kind] <= 0 && kind > 0) --kind;  // rounding at the top end
  const int64_t min_ms = absl::ToInt64Milliseconds(o.fault_min_duration);
  const int64_t max_ms = absl::ToInt64Milliseconds(o.fault_max_duration);
  int64_t dur = min_ms + static_cast<int64_t>(fault_rng_.Uniform() * (max_ms - min_ms));
  dur = std::max<int64_t>(interval_ms_, (dur + interval_ms_ - 1) / interval_ms_ * interval_ms_);
  const double magnitude =
      o.fault_size_min + fault_rng_.Uniform() * (o.fault_size_max - o.fault_size_min);
  const double sign = fault_rng_.Uniform() < 0.5 ? -1.0 : 1.0;
  InjectedFault f;
  f.node = series_[index].unit->path;
  f.indicator = series_[index].indicator;
  f.kind = static_cast<FaultKind>(kind);
  f.start_ms = tick_ms_;
  f.end_ms = tick_ms_ + (f.kind == FaultKind::kTransient ? interval_ms_ : dur);
  f.size = f.kind == FaultKind::kOutage ? 0.0 : sign * magnitude * st.sigma;
  st.active_fault = static_cast<int>(faults_.size());
  faults_.push_back(std::move(f));
}

void Simulator::UpdateCalm(uint32_t i) {
  const SeriesState& st = state_[i];
  calm_until_[i] = st.active_fault >= 0     ? INT64_MIN
                   : fault_mean_gap_ms_ > 0 ? st.next_fault_ms
                                            : INT64_MAX;
}

void Simulator::BeginTick() {
  const double phi = 0.95;
  const double innovation = std::sqrt(1 - phi * phi);
  const double frac = static_cast<double>(((tick_ms_ % kDayMs) + kDayMs) % kDayMs) / kDayMs;
  for (size_t e = 0; e < enterprise_common_.size(); ++e) {
    enterprise_common_[e] = phi * enterprise_common_[e] + innovation * noise_rng_.Normal();
    enterprise_daily_[e] =
        options_.daily_amplitude * std::sin(2 * std::numbers::pi * frac + enterprise_phase_[e]);
  }
  // Noise is drawn for every series at every tick, also during outages, so that the noise stream
  // does not depend on faults.
  const double rho = options_.correlation;
  const double own_share = own_share_;
  const Ziggurat& zig = ZigguratTables();
  for (size_t i = 0; i < series_.size(); ++i) {
    const SeriesState& st = state_[i];
    const double z =
        rho * enterprise_common_[st.enterprise_index] + own_share * FastNormal(noise_rng_, zig);
    tick_values_[i] =
        series_[i].level * (1.0 + enterprise_daily_[st.enterprise_index]) + st.sigma * z;
  }
  tick_started_ = true;
}

bool Simulator::NextSampleSlow(Sample* out) {
  while (!done_) {
    if (emitted_ >= limit_) {
      done_ = true;
      break;
    }
    if (end_ms_ > 0 && tick_ms_ >= end_ms_) {
      done_ = true;
      break;
    }
    if (!tick_started_) BeginTick();
    const uint32_t i = next_series_;
    SeriesState& st = state_[i];
    double value = tick_values_[i];
    if (++next_series_ == series_.size()) {
      next_series_ = 0;
      tick_started_ = false;
    }
    const int64_t t = tick_ms_;
    if (!tick_started_) tick_ms_ += interval_ms_;  // the tick is complete after this sample

    if (t >= calm_until_[i]) {
      if (st.active_fault >= 0 && t >= faults_[st.active_fault].end_ms) {
        ScheduleNextFault(st, faults_[st.active_fault].end_ms);
        st.active_fault = -1;
      }
      if (st.active_fault < 0 && fault_mean_gap_ms_ > 0 && t >= st.next_fault_ms) {
        const int64_t saved = tick_ms_;
        tick_ms_ = t;
        StartFault(i, st);
        tick_ms_ = saved;
      }
      UpdateCalm(i);
    }
    if (st.active_fault >= 0) {
      const InjectedFault& f = faults_[st.active_fault];
      switch (f.kind) {
        case FaultKind::kStep:
        case FaultKind::kTransient:
          value += f.size;
          break;
        case FaultKind::kSlope:
          value += f.size * static_cast<double>(t - f.start_ms) /
                   static_cast<double>(f.end_ms - f.start_ms);
          break;
        case FaultKind::kOutage:
          continue;  // no data
      }
    }
    out->series = i;
    out->time_ms = t;
    out->value = value;
    ++emitted_;
    return true;
  }
  return false;
}

bool Simulator::Next(v1::Record* out) {
  Sample s;
  if (!NextSample(&s)) return false;
  const Series& series = series_[s.series];
  out->set_node(series.unit->path);
  out->set_indicator(series.indicator);
  out->set_value(s.value);
  out->set_event_time_ms(s.time_ms);
  return true;
}

uint64_t Simulator::SkipTo(uint64_t records) {
  Sample s;
  while (emitted_ < records && NextSample(&s)) {
  }
  return emitted_;
}

std::string Simulator::TruthCsv(const std::vector<InjectedFault>& faults) {
  std::string out = "node,indicator,kind,start,end,size\n";
  for (const InjectedFault& f : faults) {
    absl::StrAppend(&out, f.node, ",", f.indicator, ",", Av(FaultKindName(f.kind)), ",", f.start_ms,
                    ",", f.end_ms, ",", absl::StrFormat("%.6g", f.size), "\n");
  }
  return out;
}

absl::Status Simulator::WriteTruthCsv(const std::vector<InjectedFault>& faults,
                                      const std::string& path) {
  std::ofstream out(path, std::ios::trunc);
  if (!out) return absl::InvalidArgumentError(absl::StrCat("cannot write truth file ", path));
  out << TruthCsv(faults);
  out.close();
  if (!out) return absl::InternalError(absl::StrCat("writing truth file ", path, " failed"));
  return absl::OkStatus();
}

}  // namespace cybersyn::ingest
