#include "bench/hierarchy_mode.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <random>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "bench/hierarchy_run.h"
#include "bench/hierarchy_score.h"
#include "common/logging.h"

namespace cybersyn::embedded {
std::string_view DemoConfigYaml();
}

namespace cybersyn::bench {
namespace {

int64_t Ms(absl::Duration d) { return absl::ToInt64Milliseconds(d); }

// Base indicators a pattern may move: detected (cyberstride only, for parent-only drifts),
// rolled up by sum or mean.
std::vector<const IndicatorConfig*> PatternIndicators(const Config& c, bool cyberstride_only) {
  std::vector<const IndicatorConfig*> out;
  for (const IndicatorConfig& i : c.indicators) {
    if (i.detector.kind == DetectorKind::kNone ||
        (cyberstride_only && i.detector.kind != DetectorKind::kCyberstride)) {
      continue;
    }
    if (i.rollup == Rollup::kSum || i.rollup == Rollup::kMean) out.push_back(&i);
  }
  return out;
}

std::vector<std::string> UnitsBelow(const Hierarchy::Node* n) {
  if (n->is_leaf()) return {n->path};
  std::vector<std::string> out;
  for (const Hierarchy::Node* c : n->children) {
    for (std::string& u : UnitsBelow(c)) out.push_back(std::move(u));
  }
  return out;
}

// The unfavourable direction of an indicator (down for Beer's roles, whose rises are rewards;
// either way for the others).
double Unfavourable(const IndicatorConfig& i, std::mt19937_64& rng) {
  if (i.role != Role::kNone) return -1;
  return rng() % 2 ? 1 : -1;
}

struct Plan {
  ingest::SimulatorOptions sim;
  std::vector<Pattern> patterns;
  int64_t from_ms = 0, to_ms = 0;  // scored window starts
};

Plan BasePlan(const Config& c, uint64_t seed, absl::Duration measured, const HierarchyArgs& a) {
  Plan p;
  p.sim = *ingest::SimulatorPreset("small");
  p.sim.seed = seed;
  p.sim.speedup = 0;
  const int64_t w = Ms(c.aggregator.windows.back());
  p.sim.start_ms = (absl::ToUnixMillis(absl::Now()) - Ms(absl::Hours(24 * 30))) / w * w;
  p.sim.duration = a.warmup + measured + a.tail;
  p.from_ms = p.sim.start_ms + Ms(a.warmup);
  p.to_ms = p.from_ms + Ms(measured) + 2 * w;
  return p;
}

// Alternating parent-only drifts and common causes, one every `pattern_every`. The units' noise
// is independent here (simulator correlation 0): "four children drifting 1.5 sigma make the
// parent signal" holds for independent children, whose sum's sigma is twice a child's.
Plan PatternPlan(const Config& c, uint64_t seed, const HierarchyArgs& a) {
  Plan p = BasePlan(c, seed, a.patterns_for, a);
  p.sim.faults_per_series_per_day = 0;
  p.sim.correlation = 0;
  std::mt19937_64 rng(seed * 7919 + 17);
  // Sigma in the largest window: a sustained shift shows most there.
  const absl::Duration widest = c.aggregator.windows.back();
  const auto sigmas = WindowSigmas(c, p.sim, widest, absl::Hours(3));
  const auto drift_inds = PatternIndicators(c, true);
  const auto step_inds = PatternIndicators(c, false);
  auto sim = ingest::Simulator::Create(c, p.sim);
  if (!sim.ok() || drift_inds.empty() || step_inds.empty()) return p;
  std::map<std::string, double> sample_sigma;  // "<unit>|<indicator>" -> level * noise
  for (const auto& s : (*sim)->series()) {
    sample_sigma[absl::StrCat(s.unit->path, "|", s.indicator)] = s.level * p.sim.noise;
  }
  std::vector<const Hierarchy::Node*> four, parents;  // nodes with >= 4 units; any non-unit
  for (const Hierarchy::Node* n : c.hierarchy->nodes()) {
    if (n->is_leaf()) continue;
    parents.push_back(n);
    if (UnitsBelow(n).size() >= 4) four.push_back(n);
  }
  const int64_t samples = Ms(widest) / Ms(p.sim.interval);
  bool parent_only = true;
  for (int64_t t = p.from_ms; t + Ms(a.pattern_every) <= p.to_ms; t += Ms(a.pattern_every)) {
    const auto& inds = parent_only && !four.empty() ? drift_inds : step_inds;
    const IndicatorConfig& ind = *inds[rng() % inds.size()];
    Pattern pat;
    pat.truth.indicator = ind.name;
    pat.truth.start_ms = t;
    const double dir = Unfavourable(ind, rng);
    if (parent_only && !four.empty()) {
      const Hierarchy::Node* n = four[rng() % four.size()];
      std::vector<std::string> units = UnitsBelow(n);
      std::shuffle(units.begin(), units.end(), rng);
      units.resize(4);
      pat.truth.kind = TruthEvent::Kind::kParentOnly;
      pat.truth.what = "drift";
      pat.truth.node = n->path;
      pat.truth.end_ms = t + Ms(absl::Minutes(12));
      pat.shape = Pattern::Shape::kDrift;
      for (const std::string& u : units) {
        const std::string key = absl::StrCat(u, "|", ind.name);
        const double sw = sigmas.count(key) ? sigmas.at(key) : 0;
        pat.per_sample[u] = dir * 1.5 * (ind.rollup == Rollup::kSum ? sw / samples : sw);
      }
      pat.truth.units = units;
    } else {
      const Hierarchy::Node* n = parents[rng() % parents.size()];
      std::vector<std::string> units = UnitsBelow(n);
      std::shuffle(units.begin(), units.end(), rng);
      units.resize(std::max<size_t>(2, (3 * units.size() + 3) / 4));
      pat.truth.kind = TruthEvent::Kind::kCommonCause;
      pat.truth.what = "common step";
      pat.truth.node = n->path;
      pat.truth.end_ms = t + Ms(absl::Minutes(3));
      pat.shape = Pattern::Shape::kStep;
      const double size = 4 + 4 * std::uniform_real_distribution<double>(0, 1)(rng);
      for (const std::string& u : units) {
        pat.per_sample[u] = dir * size * sample_sigma[absl::StrCat(u, "|", ind.name)];
      }
      pat.truth.units = units;
    }
    std::sort(pat.truth.units.begin(), pat.truth.units.end());
    p.patterns.push_back(std::move(pat));
    parent_only = !parent_only;
  }
  return p;
}

std::vector<TruthEvent> FaultTruth(const std::vector<ingest::InjectedFault>& faults,
                                   int64_t from_ms, int64_t to_ms) {
  std::vector<TruthEvent> out;
  for (const ingest::InjectedFault& f : faults) {
    TruthEvent e;
    e.kind = TruthEvent::Kind::kFault;
    e.node = f.node;
    e.indicator = f.indicator;
    e.units = {f.node};
    e.what = std::string(ingest::FaultKindName(f.kind));
    e.start_ms = f.start_ms;
    e.end_ms = f.end_ms;
    e.scored = f.start_ms >= from_ms && f.start_ms <= to_ms;
    out.push_back(std::move(e));
  }
  return out;
}

void WriteCsvs(const std::string& dir, const std::string& name,
               const std::vector<TruthEvent>& truth, const std::vector<RaisedSignal>& signals) {
  std::ofstream t(absl::StrCat(dir, "/", name, "-truth.csv"));
  t << "kind,what,node,indicator,start_ms,end_ms,units,scored\n";
  for (const TruthEvent& e : truth) {
    t << KindName(e.kind) << ',' << e.what << ',' << e.node << ',' << e.indicator << ','
      << e.start_ms << ',' << e.end_ms << ',' << absl::StrJoin(e.units, ";") << ',' << e.scored
      << '\n';
  }
  std::ofstream s(absl::StrCat(dir, "/", name, "-signals.csv"));
  s << "id,node,indicator,window_ms,window_start_ms,kind,severity\n";
  for (const RaisedSignal& r : signals) {
    s << r.id << ',' << r.node << ',' << r.indicator << ',' << r.window_ms << ','
      << r.window_start_ms << ',' << v1::SignalKind_Name(r.kind) << ','
      << v1::Severity_Name(r.severity) << '\n';
  }
}

struct SeedResult {
  uint64_t seed = 0;
  Score::Totals faults, faults_no_outage, parent_only, common;
  int false_faults = 0, false_patterns = 0, rewards = 0;
  int counted = 0, echoes = 0,
      derived = 0;  // fault runs: counted signals, parent echoes, on indices
  double hours_faults = 0, hours_patterns = 0;
  uint64_t records = 0, aggregator_records = 0, aggregates = 0, late = 0;
  int attributed = 0;  // ALSO_VISIBLE transitions (series attributed to another's signal)
  double seconds = 0;
};

void Add(Score::Totals& to, const Score::Totals& t) {
  to.events += t.events;
  to.caught += t.caught;
  to.signals += t.signals;
  to.at_node += t.at_node;
  to.at_units += t.at_units;
}

void AddRun(SeedResult& r, const RunOutput& run) {
  r.records += run.records;
  for (const v1::SignalEvent& e : run.events) {
    r.attributed += e.transition().kind() == v1::TRANSITION_KIND_ALSO_VISIBLE;
  }
  r.aggregator_records += run.aggregator_records;
  r.aggregates += run.aggregates;
  r.late += run.late;
  r.seconds += absl::ToDoubleSeconds(run.took);
}

void PrintRow(const std::string& label, const SeedResult& r) {
  std::printf(
      "%-5s | %6d %6d %8.2f %6d %8.1f %7.3f %5.2f %5.2f | %3d %6.2f %8d | %3d %8.2f %8.2f | %7d "
      "%6.1f\n",
      label.c_str(), r.faults.events, r.faults.caught, r.faults.SignalsPerCaught(), r.false_faults,
      r.hours_faults > 0 ? r.false_faults / r.hours_faults : 0, r.faults_no_outage.RecallAtNode(),
      r.counted ? double(r.echoes) / r.counted : 0, r.counted ? double(r.derived) / r.counted : 0,
      r.parent_only.events, r.parent_only.RecallAtNode(), r.parent_only.at_units, r.common.events,
      r.common.SignalsPerCaught(), r.common.Recall(), r.rewards, r.seconds);
}

void ListOutcomes(const Score& score) {
  for (const EventOutcome& o : score.events) {
    if (!o.event->scored) continue;
    std::printf("    %-12s %-11s %-34s %-12s %3d signal(s)%s  %s\n", KindName(o.event->kind),
                o.event->what.c_str(), o.event->node.c_str(), o.event->indicator.c_str(), o.signals,
                o.at_node ? " (at node)" : "", absl::StrJoin(o.signal_ids, " ").c_str());
  }
  std::printf("    false: %s\n", absl::StrJoin(score.false_ids, " ").c_str());
}

}  // namespace

int RunHierarchyMode(const HierarchyArgs& a) {
  (void)InitLogging({"warn", false});
  absl::StatusOr<Config> loaded =
      a.config.empty() ? LoadConfigString(embedded::DemoConfigYaml(), "demo.yaml (built in)")
                       : LoadConfigFile(a.config);
  if (!loaded.ok()) {
    std::fprintf(stderr, "%s\n", std::string(loaded.status().message()).c_str());
    return 2;
  }
  auto config = std::make_shared<const Config>(std::move(*loaded));
  std::printf(
      "\n=== hierarchy: %s, %zu nodes, %zu units, seeds %s; per seed %s of faults and %s of "
      "patterns after %s of warm-up; attribution %s ===\n",
      config->source.c_str(), config->hierarchy->nodes().size(), config->hierarchy->leaves().size(),
      absl::StrJoin(a.seeds, ",").c_str(), absl::FormatDuration(a.faults_for).c_str(),
      absl::FormatDuration(a.patterns_for).c_str(), absl::FormatDuration(a.warmup).c_str(),
      a.attribution ? "on" : "off");
  std::printf(
      "signals counted: alerts and crises (no rewards, no no-data); sig/caught = signals raised "
      "per caught event\n");
  std::printf(
      "echo = share of counted signals at a parent within 10 s of a descendant's on the same "
      "indicator; idx = share on derived indices\n");
  std::printf("%-5s | %6s %6s %8s %6s %8s %7s %5s %5s | %3s %6s %8s | %3s %8s %8s | %7s %6s\n",
              "seed", "faults", "caught", "sig/fault", "false", "false/h", "rec@node", "echo",
              "idx", "p-o", "recall", "unit sig", "cc", "sig/cc", "cc rec", "rewards", "secs");
  std::vector<SeedResult> results;
  SeedResult all;
  all.seed = 0;
  for (uint64_t seed : a.seeds) {
    SeedResult r;
    r.seed = seed;
    // Faults.
    Plan fp = BasePlan(*config, seed, a.faults_for, a);
    auto run = RunHierarchy(
        {config, fp.sim, {}, absl::StrCat(a.work_dir, "/faults-", seed), a.attribution});
    if (!run.ok()) {
      std::fprintf(stderr, "seed %lu faults: %s\n", static_cast<unsigned long>(seed),
                   run.status().ToString().c_str());
      return 1;
    }
    std::vector<TruthEvent> truth = FaultTruth(run->faults, fp.from_ms, fp.to_ms);
    std::vector<RaisedSignal> raised = RaisedSignals(run->events);
    Score fs = ScoreSignals(*config, truth, raised, fp.from_ms, fp.to_ms);
    r.faults = fs.TotalsOf(TruthEvent::Kind::kFault);
    for (const char* k : {"step", "slope", "transient"}) {
      Add(r.faults_no_outage, fs.TotalsOf(TruthEvent::Kind::kFault, k));
    }
    r.false_faults = fs.false_signals;
    r.counted = fs.counted;
    r.echoes = fs.parent_echoes;
    r.derived = fs.derived;
    r.rewards += fs.rewards;
    r.hours_faults = absl::ToDoubleHours(a.faults_for);
    AddRun(r, *run);
    if (!a.truth_dir.empty()) WriteCsvs(a.truth_dir, absl::StrCat("faults-", seed), truth, raised);
    if (a.list) ListOutcomes(fs);
    // Patterns.
    Plan pp = PatternPlan(*config, seed, a);
    run = RunHierarchy(
        {config, pp.sim, pp.patterns, absl::StrCat(a.work_dir, "/patterns-", seed), a.attribution});
    if (!run.ok()) {
      std::fprintf(stderr, "seed %lu patterns: %s\n", static_cast<unsigned long>(seed),
                   run.status().ToString().c_str());
      return 1;
    }
    truth.clear();
    for (const Pattern& p : pp.patterns) truth.push_back(p.truth);
    raised = RaisedSignals(run->events);
    Score ps = ScoreSignals(*config, truth, raised, pp.from_ms, pp.to_ms);
    r.parent_only = ps.TotalsOf(TruthEvent::Kind::kParentOnly);
    r.common = ps.TotalsOf(TruthEvent::Kind::kCommonCause);
    r.false_patterns = ps.false_signals;
    r.rewards += ps.rewards;
    r.hours_patterns = absl::ToDoubleHours(a.patterns_for);
    AddRun(r, *run);
    if (!a.truth_dir.empty()) {
      WriteCsvs(a.truth_dir, absl::StrCat("patterns-", seed), truth, raised);
    }
    if (a.list) ListOutcomes(ps);
    PrintRow(absl::StrCat(seed), r);
    std::fflush(stdout);
    Add(all.faults, r.faults);
    Add(all.faults_no_outage, r.faults_no_outage);
    Add(all.parent_only, r.parent_only);
    Add(all.common, r.common);
    all.false_faults += r.false_faults;
    all.counted += r.counted;
    all.echoes += r.echoes;
    all.derived += r.derived;
    all.false_patterns += r.false_patterns;
    all.rewards += r.rewards;
    all.hours_faults += r.hours_faults;
    all.hours_patterns += r.hours_patterns;
    all.records += r.records;
    all.attributed += r.attributed;
    all.aggregator_records += r.aggregator_records;
    all.aggregates += r.aggregates;
    all.late += r.late;
    all.seconds += r.seconds;
  }
  PrintRow("all", all);
  std::printf(
      "\nall seeds: %d faults (%d caught), %.2f signals per caught fault, %d false signals "
      "(%.1f per hour), fault recall at the faulty node %.3f (step, slope, transient);\n"
      "parent-only patterns: %d, recall at their node %.3f, %d signals at the drifting units;\n"
      "common causes: %d, %.2f signals each (caught %d); %d false signals in the pattern runs "
      "(%.1f per hour); %d rewards raised (not counted); %lu records (the aggregator took %lu, "
      "%lu late), %lu aggregates\n",
      all.faults.events, all.faults.caught, all.faults.SignalsPerCaught(), all.false_faults,
      all.hours_faults > 0 ? all.false_faults / all.hours_faults : 0,
      all.faults_no_outage.RecallAtNode(), all.parent_only.events, all.parent_only.RecallAtNode(),
      all.parent_only.at_units, all.common.events, all.common.SignalsPerCaught(), all.common.caught,
      all.false_patterns, all.hours_patterns > 0 ? all.false_patterns / all.hours_patterns : 0,
      all.rewards, static_cast<unsigned long>(all.records),
      static_cast<unsigned long>(all.aggregator_records), static_cast<unsigned long>(all.late),
      static_cast<unsigned long>(all.aggregates));
  auto share = [](int n, int of) { return of ? double(n) / of : 0.0; };
  std::printf(
      "fault runs: %d counted signals, %d (%.2f) at a parent within 10 s of a descendant's on the "
      "same indicator, %d (%.2f) on derived indices; %d series attributed to another's signal "
      "(ALSO_VISIBLE, both runs)\n",
      all.counted, all.echoes, share(all.echoes, all.counted), all.derived,
      share(all.derived, all.counted), all.attributed);
  return 0;
}

}  // namespace cybersyn::bench
